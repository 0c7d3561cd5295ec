"""The baselines the rankers are compared with.

- ``datasize``: rank sources by their full training-set size (the catalog card's ``train_size``, else the
  rows of the task's ``train.*`` file): bigger first.
- ``textemb`` (Vu et al. 2020): the base model's last-layer hidden states, mean-pooled over tokens and
  averaged over the task's LIMITED training rows; cosine.
- ``taskemb`` (Vu et al. 2020, reduced for CPU): the diagonal empirical Fisher information (squared
  per-example gradients of the loss at the gold label) of the task's target-only fine-tuned model, over
  ``taskemb_rows`` training rows, taken for the encoder layers' parameters only; each weight matrix's
  Fisher is averaged over its input dimension (one value per output unit), biases and LayerNorm
  parameters are kept whole, and everything is concatenated over layers (≈8.4K values per MiniLM layer).
- ``random``: the exact expected metric values of a uniformly random order (computed in
  :mod:`zoo_tupate.ranking.evaluate`, not here).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo_tupate.bench.layout import model_path
from zoo_tupate.bench.scores import Scores, pair_scores

if TYPE_CHECKING:
    from zoo_tupate.bench.config import TaskSet, TransferConfig

_LAYER = re.compile(r"\.layer\.(\d+)\.")


def _vector_path(config: TransferConfig, kind: str, task: str) -> Path:
    """TextEmb depends on the data alone (probe key); TaskEmb on the target-only models (transfer key)."""
    folder = config.transfer_dir() if kind == "taskemb" else config.probe_dir()
    return folder / "baselines" / f"{kind}-{task}.npy"


def _save_vector(path: Path, vector: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, vector.astype(np.float32))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, path)


def _load_vector(path: Path) -> np.ndarray | None:
    try:
        return np.load(path).astype(np.float64)
    except (OSError, ValueError):
        return None


def train_size(config: TransferConfig, task: str) -> int:
    """The task's full training-set size: the catalog card's ``train_size``, else its train file's rows."""
    from zoo_tupate.cards.catalog import load_catalog

    for card in load_catalog().values():
        if card.short_name == task:
            return int(card.train_size)
    folder = config.tasks_dir / task
    for path in sorted(folder.glob("train.*")):
        with open(path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())
    return 0


def text_embedding(config: TransferConfig, tasks: TaskSet, task: str) -> np.ndarray:
    """Mean last-layer hidden state over the tokens and LIMITED training rows of ``task``."""
    import torch
    from transformers import AutoModel

    from zoo_tupate.tuning.encoding import collate

    data, train_enc, _ = tasks.target(task)
    device = config.recipe().device
    model = AutoModel.from_pretrained(config.base_model, dtype=torch.float32).to(device).eval()
    total, count = None, 0
    with torch.no_grad():
        for start in range(0, len(train_enc), 64):
            index = list(range(start, min(start + 64, len(train_enc))))
            batch = {k: v.to(device) for k, v in collate(train_enc, index, tasks.pad_id).items()}
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            total = pooled.sum(0) if total is None else total + pooled.sum(0)
            count += len(index)
    return (total / count).cpu().numpy().astype(np.float64)


def fisher_embedding(config: TransferConfig, tasks: TaskSet, task: str, state_path: Path) -> np.ndarray:
    """TaskEmb: the reduced diagonal Fisher of the task's target-only model (see the module docstring)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from zoo_tupate.tuning.encoding import collate
    from zoo_tupate.tuning.scoring import loss_fn

    data, train_enc, _ = tasks.target(task)
    problem_type = "regression" if data.problem == "regression" else "single_label_classification"
    device = config.recipe().device
    model = AutoModelForSequenceClassification.from_pretrained(
        config.base_model, num_labels=data.num_labels, problem_type=problem_type, dtype=torch.float32)
    model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    model.to(device).eval()  # no dropout: the Fisher of the model as it predicts
    params = [(n, p) for n, p in model.named_parameters() if _LAYER.search(n)]
    fisher = {n: torch.zeros_like(p) for n, p in params}
    rows = min(config.taskemb_rows, len(train_enc))
    for i in range(rows):
        batch = {k: v.to(device) for k, v in collate(train_enc, [i], tasks.pad_id).items()}
        model.zero_grad(set_to_none=True)
        loss_fn(model(**batch).logits, train_enc.labels[i:i + 1].to(device), data.problem).backward()
        for n, p in params:
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    parts = []
    for n, _ in params:
        f = fisher[n] / max(rows, 1)
        parts.append((f.mean(dim=1) if f.dim() == 2 else f).flatten())
    return torch.cat(parts).cpu().numpy().astype(np.float64)


def run_baseline_stage(config: TransferConfig, tasks: TaskSet, log: Callable[[str], None]) -> int:
    """Compute the missing TextEmb and TaskEmb vectors (TaskEmb needs the target-only models)."""

    computed = 0
    for task in config.tasks:
        path = _vector_path(config, "textemb", task)
        if _load_vector(path) is None:
            _save_vector(path, text_embedding(config, tasks, task))
            computed += 1
        path = _vector_path(config, "taskemb", task)
        state = model_path(config, "target", task, config.seeds[0])
        if _load_vector(path) is None and state.is_file() and config.protocol == "full":
            _save_vector(path, fisher_embedding(config, tasks, task, state))
            computed += 1
    log(f"baseline stage: {computed} vector(s) computed")
    return computed


def baseline_predictions(config: TransferConfig, tasks: TaskSet, notes: list[str],
                         log: Callable[[str], None]) -> dict[str, Scores]:
    """DataSize, TextEmb and TaskEmb scores for every (target, source) pair (computing missing vectors)."""
    run_baseline_stage(config, tasks, log)
    sizes = {t: train_size(config, t) for t in config.tasks}
    out: dict[str, Scores] = {
        "datasize": {t: {s: float(sizes[s]) for s in config.tasks if s != t} for t in config.tasks},
    }
    for kind in ("textemb", "taskemb"):
        vectors = {t: v for t in config.tasks if (v := _load_vector(_vector_path(config, kind, t))) is not None}
        missing = [t for t in config.tasks if t not in vectors]
        if missing:
            notes.append(f"{kind}: no vector for {', '.join(missing)}"
                         + (" (TaskEmb needs --protocol full and the target-only models)" if kind == "taskemb" else ""))
        if len(vectors) >= 2:
            out[kind] = pair_scores(vectors, vectors, center=False)
    return out
