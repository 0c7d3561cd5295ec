"""What a tuning run leaves beside its adapters: ``train_log.json`` and the checkpoints' embedding cards."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from zoo_tupate.core.errors import ZooError
from zoo_tupate.embedding.space import normalize_base_model
from zoo_tupate.tuning.data import TaskData
from zoo_tupate.tuning.device import resolve_device
from zoo_tupate.tuning.recipes import RECORDED_KEYS

if TYPE_CHECKING:
    from zoo_tupate.tuning.config import RunResult, TuneConfig, TuneResult


def write_log(result: TuneResult, task: TaskData, config: TuneConfig) -> Path:
    """Write ``train_log.json`` for one method."""
    chosen = result.chosen
    log = {
        "method": result.method,
        "dataset": task.describe(),
        "base_model": config.base_model,
        "base_model_id": normalize_base_model(config.base_model, config.base_model_id),
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
        "early_metric": chosen.metric_at(None),
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
        from zoo_tupate.cards.cardfile import write_card
        from zoo_tupate.embedding.checkpoint import embed
    except ImportError as exc:  # the core or card module not installed in this build
        return f"{folder}: no embedding card written ({exc})"
    meta = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("zoo_tupate", {})
    reprs = ("raw", "delta") if run.method in ("lora", "bottleneck") else ("raw",)
    base_id = normalize_base_model(config.base_model, config.base_model_id)
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

    from zoo_tupate.core.version import __version__

    return {"zoo_tupate": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version()}
