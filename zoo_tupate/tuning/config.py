"""What a tuning run is asked to do (:class:`TuneConfig`) and what it gives back (:class:`RunResult`,
:class:`TuneResult`): plain dataclasses shared by the loop, its records and its callers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import TuningError
from zoo_tupate.tuning.methods import ALL_METHODS, METHOD_NAMES, MethodOptions


@dataclass
class TuneConfig:
    """Everything one ``tune`` run needs (the CLI options, in Python)."""

    dataset: str
    base_model: str
    method: str = "all"  # lora | bitfit | prefix | bottleneck | all (the first three)
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
    warmup: float = 0.0  # > 0: linear warmup over this share of all steps, then linear decay (else constant)

    def methods(self) -> list[str]:
        """The methods this config asks for."""
        return list(ALL_METHODS) if self.method == "all" else [self.method]

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
        if not 0.0 <= self.warmup < 1.0:
            raise TuningError(f"warmup must be a share of the steps in [0, 1), got {self.warmup}")
        for name in ("batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise TuningError(f"{name} must be at least 1, got {getattr(self, name)}")

    def recipe(self) -> dict[str, Any]:
        """The settings a probe must share to be comparable (recorded in every checkpoint; see recipes)."""
        return {"max_train": self.max_train, "max_eval": self.max_eval, "epochs": self.early_epochs,
                "max_length": self.max_length, "batch_size": self.batch_size, "init_seed": self.init_seed,
                "seed": self.seed, **({"warmup": self.warmup} if self.warmup else {})}

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

    def metric_at(self, epoch: int | None) -> float | None:
        """The validation metric at ``epoch`` (``None``: at the early checkpoint)."""
        for row in self.history:
            if row.get("early") if epoch is None else row["epoch"] == epoch:
                return row["metric"]
        return None


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
            "early_metric": self.chosen.metric_at(None),
            "wall_s": round(sum(r.wall_s for r in self.runs), 3),
            "rows_per_s": round(self.chosen.rows_per_s, 2),
            "cards": self.cards,
            "notes": self.notes,
        }
