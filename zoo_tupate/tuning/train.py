"""The tuning loop: train one method on one dataset, keep the early and best checkpoints, log everything.

Output layout for ``output=DIR``::

    DIR/<method>/early/        the adapter after ``early_epochs`` epochs (+ its embedding card)
    DIR/<method>/best/         the adapter of the best validation epoch (+ its embedding card)
    DIR/<method>/train_log.json  per-epoch loss and validation metrics, wall time, rows/s, config, seeds
    DIR/<method>/grid/lr-<x>/  with ``lr_grid``: each learning rate's own early/best (the winner is copied up)

The learning rate is constant (AdamW, no decay, gradients clipped at 1.0): the checkpoint after two
epochs is then the same whether a run lasts 2 or 20 epochs, so early probes of a target match the early
checkpoints of sources tuned for longer.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo_tupate.errors import TuningError, ZooError
from zoo_tupate.models import missing_weights_hint, resolve_model
from zoo_tupate.tuning.data import Split, TaskData, load_task
from zoo_tupate.tuning.methods import LR_GRIDS, METHOD_NAMES, MethodOptions, Tunable, build
from zoo_tupate.tuning.recipes import RECORDED_KEYS, calibrated_rate, search_rates

LOG_NAME = "train_log.json"


@dataclass
class TuneConfig:
    """Everything one ``tune`` run needs (the CLI options, in Python)."""

    dataset: str
    base_model: str
    method: str = "all"  # lora | bitfit | prefix | all
    base_model_id: str | None = None
    epochs: int = 20
    early_epochs: int = 2
    max_train: int | None = None
    max_eval: int | None = None
    lr: float | None = None
    lr_grid: bool = False
    batch_size: int = 32
    max_length: int = 128
    device: str = "auto"
    output: Path | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    seed: int = 0  # data order and dropout
    init_seed: int = 0  # head, LoRA A, prefixes: the same for every task on one base model
    options: MethodOptions = field(default_factory=MethodOptions)
    cards: bool = True
    save_best: bool = True
    bucket: bool = False  # batches of similar lengths (less padding; changes the batches, so off in recipes)
    init_adapter: Path | None = None  # LoRA only: start A and B from this adapter folder (a proxy transfer)

    def methods(self) -> list[str]:
        """The methods this config asks for."""
        return list(METHOD_NAMES) if self.method == "all" else [self.method]

    def check(self) -> None:
        """Raise :class:`TuningError` for settings that cannot run."""
        if self.method != "all" and self.method not in METHOD_NAMES:
            raise TuningError(f"unknown tuning method {self.method!r} (choose from {', '.join(METHOD_NAMES)}, all)")
        if self.epochs < 1:
            raise TuningError(f"--epochs must be at least 1, got {self.epochs}")
        if self.early_epochs < 1:
            raise TuningError(f"--early-epochs must be at least 1, got {self.early_epochs}")
        if self.early_epochs > self.epochs:
            raise TuningError(
                f"--early-epochs {self.early_epochs} exceeds --epochs {self.epochs}: the early checkpoint"
                " would never be reached"
            )
        if self.lr is not None and self.lr_grid:
            raise TuningError("give either --lr or --lr-grid, not both")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise TuningError(f"--lr must be a positive number, got {self.lr}")
        for name in ("batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise TuningError(f"{name} must be at least 1, got {getattr(self, name)}")

    def recipe(self) -> dict[str, Any]:
        """The settings a probe must share to be comparable (recorded in every checkpoint; see recipes)."""
        return {"max_train": self.max_train, "max_eval": self.max_eval, "epochs": self.early_epochs,
                "max_length": self.max_length, "batch_size": self.batch_size, "init_seed": self.init_seed,
                "seed": self.seed}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready settings."""
        data = asdict(self)
        data["output"] = str(self.output) if self.output else None
        data["init_adapter"] = str(self.init_adapter) if self.init_adapter else None
        return data


@dataclass
class RunResult:
    """One training run (one method, one learning rate)."""

    method: str
    lr: float
    history: list[dict[str, Any]]
    best_epoch: int
    best_metric: float
    metric: str
    early_dir: Path | None
    best_dir: Path | None
    wall_s: float
    train_s: float
    rows_per_s: float
    settings: dict[str, Any]


@dataclass
class TuneResult:
    """One method's outcome: the chosen run, every run of the grid, and where things were written."""

    method: str
    output: Path
    early_dir: Path
    best_dir: Path | None
    log_path: Path
    chosen: RunResult
    runs: list[RunResult]
    cards: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON summary (what ``tune --json`` prints)."""
        return {
            "method": self.method,
            "output": str(self.output),
            "early": str(self.early_dir),
            "best": str(self.best_dir) if self.best_dir else None,
            "train_log": str(self.log_path),
            "lr": self.chosen.lr,
            "metric": self.chosen.metric,
            "best_epoch": self.chosen.best_epoch,
            "best_metric": self.chosen.best_metric,
            "early_metric": _metric_at(self.chosen, None),
            "wall_s": round(sum(r.wall_s for r in self.runs), 3),
            "rows_per_s": round(self.chosen.rows_per_s, 2),
            "cards": self.cards,
            "notes": self.notes,
        }


def _metric_at(run: RunResult, epoch: int | None) -> float | None:
    """The validation metric at ``epoch`` (``None``: at the early checkpoint)."""
    for row in run.history:
        hit = row.get("early") if epoch is None else row["epoch"] == epoch
        if hit:
            return row["metric"]
    return None


# ------------------------------------------------------------------------------------------ helpers


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`TuningError`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TuningError("--device cuda: no CUDA device is available")
    if device not in {"cpu"} and not device.startswith("cuda"):
        raise TuningError(f"unknown device {device!r} (choose auto, cpu or cuda)")
    return torch.device(device)


def autocast_for(device: torch.device) -> tuple[Any, torch.dtype | None]:
    """(context factory, dtype): bf16 (or fp16 with loss scaling) autocast on CUDA, nothing on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype


def base_model_identity(base_model: str, base_model_id: str | None) -> str:
    """The name embedding spaces use for the base model (see :func:`zoo_tupate.space.normalize_base_model`)."""
    from zoo_tupate.space import normalize_base_model

    return normalize_base_model(base_model, base_model_id)


def load_tokenizer(base_model: str) -> Any:
    """The base model's tokenizer (a :class:`TuningError` when it cannot be loaded)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_model(base_model))
    except (OSError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuningError(f"{base_model}: cannot load the tokenizer ({first}){missing_weights_hint(base_model)}") from None


@dataclass
class Encoded:
    """A tokenised split (unpadded) and its labels."""

    features: list[dict[str, list[int]]]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


def encode(tokenizer: Any, split: Split, problem: str, max_length: int) -> Encoded:
    """Tokenise a split once (truncated to ``max_length``; padding happens per batch)."""
    out = tokenizer(split.text_a, split.text_b, truncation=True, max_length=max_length)
    accepted = set(getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in out and k in accepted]
    features = [{k: out[k][i] for k in keys} for i in range(len(split))]
    dtype = torch.float32 if problem == "regression" else torch.long
    return Encoded(features, torch.tensor(split.labels, dtype=dtype))


def collate(encoded: Encoded, index: list[int] | torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the chosen rows to their longest length."""
    rows = [encoded.features[int(i)] for i in index]
    width = max(len(r["input_ids"]) for r in rows)
    batch: dict[str, torch.Tensor] = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows], dtype=torch.long)
    return batch


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, problem: str) -> torch.Tensor:
    """Cross-entropy for classification, MSE for regression (one output)."""
    logits = logits.float()
    if problem == "regression":
        return F.mse_loss(logits.squeeze(-1), labels)
    return F.cross_entropy(logits, labels)


def _rank(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def compute_metrics(predictions: np.ndarray, labels: np.ndarray, problem: str) -> dict[str, float]:
    """Classification: accuracy (and F1 of class 1 when binary). Regression: Pearson, Spearman, their mean."""
    if problem == "regression":
        pearson = _pearson(predictions, labels)
        spearman = _pearson(_rank(predictions), _rank(labels))
        return {"pearson": pearson, "spearman": spearman, "pearson_spearman": (pearson + spearman) / 2}
    pred = predictions.argmax(-1)
    metrics = {"accuracy": float((pred == labels).mean())}
    if predictions.shape[-1] == 2:
        tp = float(((pred == 1) & (labels == 1)).sum())
        fp = float(((pred == 1) & (labels == 0)).sum())
        fn = float(((pred == 0) & (labels == 1)).sum())
        metrics["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return metrics


def primary_metric(problem: str) -> str:
    """The validation metric that picks the best epoch."""
    return "pearson_spearman" if problem == "regression" else "accuracy"


@torch.no_grad()
def evaluate(model: torch.nn.Module, encoded: Encoded, problem: str, device: torch.device, batch_size: int,
             pad_id: int, autocast: Any) -> dict[str, float]:
    """Validation loss and metrics."""
    model.eval()
    outputs, losses = [], []
    for start in range(0, len(encoded), batch_size):
        index = list(range(start, min(start + batch_size, len(encoded))))
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        labels = encoded.labels[index].to(device)
        with autocast():
            logits = model(**batch).logits
        losses.append(float(loss_fn(logits, labels, problem)) * len(index))
        outputs.append(logits.float().cpu())
    predictions = torch.cat(outputs).numpy()
    if problem == "regression":
        predictions = predictions.squeeze(-1)
    metrics = compute_metrics(predictions, encoded.labels.numpy(), problem)
    metrics["loss"] = sum(losses) / len(encoded)
    return metrics


# ------------------------------------------------------------------------------------------ training


class _Progress:
    """A rich progress bar with ETA on stderr (or nothing)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def add(self, description: str, total: int) -> Any:
        return self.bar.add_task(description, total=total) if self.bar else None

    def update(self, task: Any, advance: int = 0, description: str | None = None) -> None:
        if self.bar is not None and task is not None:
            kwargs = {"description": description} if description else {}
            self.bar.update(task, advance=advance, **kwargs)

    def log(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message, highlight=False)


def train_run(
    task: TaskData,
    train_enc: Encoded,
    val_enc: Encoded,
    pad_id: int,
    config: TuneConfig,
    method: str,
    lr: float,
    folder: Path,
    progress: _Progress,
) -> RunResult:
    """Train ``method`` at ``lr``; save ``folder/early`` and ``folder/best``; return the history."""
    device = resolve_device(config.device)
    autocast, amp_dtype = autocast_for(device)
    base_id = base_model_identity(config.base_model, config.base_model_id)
    tunable = build(method, config.base_model, task.num_labels, task.problem, base_id, config.init_seed,
                    config.options)
    tunable.extra.update({"seed": config.seed, "lr": lr, "dataset": task.display_name, **config.recipe()})
    if config.init_adapter is not None:
        from zoo_tupate.tuning.warmstart import init_from_adapter

        tunable.extra["init_adapter"] = init_from_adapter(tunable, Path(config.init_adapter))
    model = tunable.model.to(device)
    params = [p for _, p in tunable.trainable()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # dropout
    metric = primary_metric(task.problem)
    steps = math.ceil(len(train_enc) / config.batch_size)
    bar = progress.add(f"{method} lr={lr:g}", config.epochs * steps)
    history: list[dict[str, Any]] = []
    best_metric, best_epoch, step = -math.inf, 0, 0
    early_dir = folder / "early"
    best_dir = folder / "best" if config.save_best else None
    started, train_s = time.perf_counter(), 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(train_enc), generator=generator)
        total_loss = 0.0
        for index in batches(order, config.batch_size, train_enc if config.bucket else None, generator):
            batch = {k: v.to(device) for k, v in collate(train_enc, index, pad_id).items()}
            labels = train_enc.labels[index].to(device)
            with autocast():
                loss = loss_fn(model(**batch).logits, labels, task.problem)
            if not torch.isfinite(loss):
                raise TuningError(f"{task.name}: {method} loss became {float(loss)} at epoch {epoch} (lr {lr:g})")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
            total_loss += float(loss.detach()) * len(index)
            step += 1
            progress.update(bar, advance=1,
                            description=f"{method} lr={lr:g} epoch {epoch}/{config.epochs} loss {float(loss.detach()):.3f}")
        epoch_train_s = time.perf_counter() - t0
        train_s += epoch_train_s
        t1 = time.perf_counter()
        scores = evaluate(model, val_enc, task.problem, device, config.batch_size * 2, pad_id, autocast)
        row = {
            "epoch": epoch, "step": step, "train_loss": total_loss / len(train_enc),
            "validation": scores, "metric": scores[metric], "train_s": round(epoch_train_s, 3),
            "eval_s": round(time.perf_counter() - t1, 3),
            "rows_per_s": round(len(train_enc) / epoch_train_s, 2) if epoch_train_s > 0 else None,
            "early": epoch == config.early_epochs, "best": False,
        }
        if epoch == config.early_epochs:
            _save(tunable, early_dir, epoch, step, scores, len(train_enc))
        if scores[metric] > best_metric:
            best_metric, best_epoch = scores[metric], epoch
            row["best"] = True
            if best_dir is not None:
                _save(tunable, best_dir, epoch, step, scores, len(train_enc))
        history.append(row)
        progress.log(
            f"{method} lr={lr:g} epoch {epoch}/{config.epochs}: train loss {row['train_loss']:.4f}, "
            f"validation {metric} {scores[metric]:.4f}" + (" (best)" if row["best"] else "")
        )
    wall = time.perf_counter() - started
    for row in history:
        row["best"] = row["epoch"] == best_epoch
    rows_per_s = len(train_enc) * config.epochs / train_s if train_s > 0 else 0.0
    return RunResult(method, lr, history, best_epoch, float(best_metric), metric, early_dir, best_dir,
                     round(wall, 3), round(train_s, 3), rows_per_s, tunable.settings)


def batches(order: torch.Tensor, size: int, bucket_by: Encoded | None = None,
            generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Consecutive batches of ``order``; with ``bucket_by``, rows are sorted by length within windows of 50
    batches and the batches shuffled (``generator``), so that a batch pads little."""
    if bucket_by is None:
        return [order[start:start + size] for start in range(0, len(order), size)]
    window = size * 50
    out: list[torch.Tensor] = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        lengths = torch.tensor([len(bucket_by.features[int(i)]["input_ids"]) for i in chunk])
        chunk = chunk[torch.argsort(lengths, stable=True)]
        out.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
    return [out[int(i)] for i in torch.randperm(len(out), generator=generator)]


def _save(tunable: Tunable, folder: Path, epoch: int, step: int, scores: dict[str, float], rows: int) -> None:
    tunable.extra.update({"epoch": epoch, "step": step, "train_size": rows,
                          "validation": {k: round(v, 6) for k, v in scores.items()}})
    if folder.exists():
        shutil.rmtree(folder)
    model = tunable.model
    was_training = model.training
    tunable.save(folder)
    model.train(was_training)


def tune(config: TuneConfig, progress: bool = False, task: TaskData | None = None) -> list[TuneResult]:
    """Tune every method ``config`` asks for; write adapters, cards and logs under ``config.output``.

    Raises :class:`TuningError` / :class:`DatasetError` (both :class:`ZooError`) for settings or data
    that cannot be used, naming the thing at fault.
    """
    config.check()
    if config.output is None:
        raise TuningError("no output folder given (--output DIR)")
    if task is None:
        task = load_task(config.dataset, config.text_columns, config.label_column, config.max_train,
                         config.max_eval, config.seed)
    resolve_device(config.device)
    tokenizer = load_tokenizer(config.base_model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_enc = encode(tokenizer, task.train, task.problem, config.max_length)
    val_enc = encode(tokenizer, task.validation, task.problem, config.max_length)
    results = []
    with _Progress(progress) as bars:
        for method in config.methods():
            results.append(_tune_method(task, train_enc, val_enc, pad_id, config, method, bars))
    return results


def learning_rates(config: TuneConfig, method: str) -> tuple[list[float], str]:
    """The rates ``method`` is trained at, and a note saying where they come from ("" when given)."""
    if config.lr is not None:
        return [config.lr], ""
    if config.lr_grid:
        return list(LR_GRIDS[method]), f"lr grid {', '.join(f'{x:g}' for x in LR_GRIDS[method])} (the paper's)"
    base_id = base_model_identity(config.base_model, config.base_model_id)
    rate = calibrated_rate(base_id, method)
    if rate is not None:
        return [rate.lr], f"lr {rate.lr:g}: calibrated for {base_id} ({rate.evidence})"
    rates = search_rates(method)
    return list(rates), (f"lr searched over {', '.join(f'{x:g}' for x in rates)} by validation score "
                         f"(no calibrated rate for {base_id})")


def _tune_method(task: TaskData, train_enc: Encoded, val_enc: Encoded, pad_id: int, config: TuneConfig,
                 method: str, bars: _Progress) -> TuneResult:
    out = Path(config.output) / method
    lrs, origin = learning_rates(config, method)
    runs = []
    for lr in lrs:
        folder = out / "grid" / f"lr-{lr:g}" if len(lrs) > 1 else out
        runs.append(train_run(task, train_enc, val_enc, pad_id, config, method, lr, folder, bars))
    chosen = max(runs, key=lambda r: r.best_metric)  # first wins ties (the grid's order)
    early_dir, best_dir = out / "early", (out / "best" if config.save_best else None)
    if len(runs) > 1:
        for name in ("early", "best"):
            source = out / "grid" / f"lr-{chosen.lr:g}" / name
            if source.exists():
                target = out / name
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(source, target)
    result = TuneResult(method, out, early_dir, best_dir, out / LOG_NAME, chosen, runs)
    if origin:
        result.notes.append(origin)
    if config.cards:
        for folder, kind in ((early_dir, "early"), (best_dir, "best")):
            if folder is not None and folder.exists():
                note = write_embedding_card(folder, task, config, chosen, kind)
                if note:
                    result.notes.append(note)
                else:
                    result.cards.append(str(folder))
    write_log(result, task, config)
    return result


def write_log(result: TuneResult, task: TaskData, config: TuneConfig) -> Path:
    """Write ``train_log.json`` for one method."""
    chosen = result.chosen
    log = {
        "method": result.method,
        "dataset": task.describe(),
        "base_model": config.base_model,
        "base_model_id": base_model_identity(config.base_model, config.base_model_id),
        "config": config.to_json(),
        "method_config": chosen.settings,
        "seeds": {"seed": config.seed, "init_seed": config.init_seed},
        "device": str(resolve_device(config.device)),
        "lr": chosen.lr,
        "lr_grid": [r.lr for r in result.runs],
        "metric": chosen.metric,
        "early_epoch": config.early_epochs,
        "best_epoch": chosen.best_epoch,
        "best_metric": chosen.best_metric,
        "early_metric": _metric_at(chosen, None),
        "epochs": chosen.history,
        "wall_s": chosen.wall_s,
        "train_s": chosen.train_s,
        "rows_per_s": round(chosen.rows_per_s, 2),
        "runs": [
            {"lr": r.lr, "best_epoch": r.best_epoch, "best_metric": r.best_metric, "wall_s": r.wall_s,
             "train_s": r.train_s, "rows_per_s": round(r.rows_per_s, 2), "epochs": r.history}
            for r in result.runs
        ],
        "total_wall_s": round(sum(r.wall_s for r in result.runs), 3),
        "checkpoints": {"early": str(result.early_dir), "best": str(result.best_dir) if result.best_dir else None},
        "cards": result.cards,
        "notes": result.notes,
        "versions": _versions(),
    }
    result.log_path.parent.mkdir(parents=True, exist_ok=True)
    result.log_path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    return result.log_path


def write_embedding_card(folder: Path, task: TaskData, config: TuneConfig, run: RunResult, kind: str) -> str | None:
    """Embed the adapter in ``folder`` and write its embedding card there; a note instead when impossible."""
    try:
        from zoo_tupate import embed
        from zoo_tupate.cardfile import write_card
    except ImportError as exc:  # the core or card module not installed in this build
        return f"{folder}: no embedding card written ({exc})"
    meta = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("zoo_tupate", {})
    reprs = ("raw", "delta") if run.method == "lora" else ("raw",)
    base_id = base_model_identity(config.base_model, config.base_model_id)
    try:
        embeddings = [embed(folder, repr=r, base_model_id=base_id) for r in reprs]
    except ZooError as exc:
        return f"{folder}: no embedding card written ({exc})"
    tuning = {k: meta.get(k) for k in ("epoch", "step", "train_size", "validation", *RECORDED_KEYS)}
    for emb in embeddings:
        emb.metadata.update(tuning)
        emb.metadata["checkpoint_kind"] = kind
        emb.metadata["dataset"] = task.display_name
    name = task.display_name
    hub_dataset = name == task.name
    score = meta.get("validation", {}).get(run.metric)
    extra: dict[str, Any] = {
        "title": f"Task embedding: {name} ({run.method}, {kind} checkpoint)",
        "description": (f"{run.method} tuned on {name} for {meta.get('epoch')} epoch(s) "
                        f"(lr {run.lr:g}; validation {run.metric} {score})"),
        "dataset": name, "checkpoint": {"epoch": meta.get("epoch"), "step": meta.get("step")},
        "train_size": meta.get("train_size"), "checkpoint_kind": kind, "method_config": run.settings,
        "seeds": {"seed": config.seed, "init_seed": config.init_seed},
    }
    if hub_dataset:
        extra["datasets"] = [task.name.partition(":")[0]]
    try:
        write_card(folder, embeddings, extra=extra)
    except ZooError as exc:
        return f"{folder}: no embedding card written ({exc})"
    return None


def _versions() -> dict[str, str]:
    import peft
    import transformers

    import zoo_tupate

    return {"zoo_tupate": zoo_tupate.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version()}
