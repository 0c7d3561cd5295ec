"""What defines a transfer run (:class:`TransferConfig`) and its data, loaded once (:class:`TaskSet`): shared
by every stage of :mod:`zoo_tupate.bench` (the jobs, the cache layout, the predictions, the baselines)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.bench.finetune import PROTOCOLS, Recipe
from zoo_tupate.core.errors import DatasetError, TuningError

STAGES: tuple[str, ...] = ("transfer", "probes", "baselines", "report")
TARGET_ONLY = "-"
RESULT_FORMAT = "zoo-tupate/transfer-matrix/v1"


@dataclass
class TransferConfig:
    """Everything that defines a transfer run (the ``bench transfer`` options)."""

    tasks_dir: Path
    tasks: list[str]
    base_model: str
    cache: Path
    protocol: str = "full"
    train_rows: int = 1000
    source_rows: int = 2000
    source_epochs: int = 2
    target_epochs: int = 3
    val_rows: int | None = 1000
    seeds: list[int] = field(default_factory=lambda: [0])
    data_seed: int = 0  # which rows are sampled (targets, sources, probes) and the probes' order and dropout
    max_length: int = 128
    lr: float = 5e-5
    adapter_lr: float = 2e-3
    batch_size: int = 32
    base_model_id: str | None = None
    probe_methods: tuple[str, ...] = ("lora", "bitfit", "prefix")
    probe_epochs: int = 3
    probe_early_epochs: int = 2
    probe_val_rows: int = 200
    offshelf_init_seed: int = 1
    offshelf_methods: tuple[str, ...] = ("lora", "prefix")
    taskemb_rows: int = 64
    probe_lrs: dict[str, float] = field(default_factory=dict)  # method -> learning rate (default: tune's)
    device: str = "auto"
    workers: int = 1
    threads: int | None = None
    gpus_per_job: float = 1.0  # the GPU share a job declares to Ray (several small probes share one GPU)
    targets: tuple[str, ...] = ()  # the tasks measured as targets (default: all); every task is a source

    @property
    def target_tasks(self) -> list[str]:
        """The tasks measured as targets, in the order given."""
        return list(self.targets) or list(self.tasks)

    def check(self) -> None:
        """Raise :class:`TuningError` for settings that cannot run."""
        if self.protocol not in PROTOCOLS:
            raise TuningError(f"unknown protocol {self.protocol!r} (choose from {', '.join(PROTOCOLS)})")
        if len(self.tasks) < 2:
            raise TuningError("--tasks needs at least two tasks (a target ranks the others)")
        if len(set(self.tasks)) != len(self.tasks):
            raise TuningError("--tasks repeats a task")
        for task in self.tasks:
            if not (self.tasks_dir / task).is_dir():
                raise DatasetError(f"{self.tasks_dir / task}: no such task folder")
        if self.probe_early_epochs > self.probe_epochs:
            raise TuningError("--probe-early-epochs exceeds --probe-epochs")
        outside = [t for t in self.targets if t not in self.tasks]
        if outside:
            raise TuningError(f"--targets names tasks not in --tasks: {', '.join(outside)}")
        unknown = sorted(set(self.probe_lrs) - set(self.probe_methods))
        if unknown:
            raise TuningError(f"--probe-lr names methods that are not probed: {', '.join(unknown)}")

    def recipe(self) -> Recipe:
        from zoo_tupate.tuning.device import resolve_device

        return Recipe(protocol=self.protocol, lr=self.lr, adapter_lr=self.adapter_lr, batch_size=self.batch_size,
                      device=str(resolve_device(self.device)))

    def data_key(self) -> tuple[Any, ...]:
        """What the tokenised data depends on (worker processes keep one :class:`TaskSet` per value)."""
        return (str(self.tasks_dir), tuple(self.tasks), str(self.base_model), self.train_rows, self.source_rows,
                self.val_rows, self.max_length, self.data_seed)

    def transfer_settings(self) -> dict[str, Any]:
        """The settings a measured transfer depends on (they name its cache folder)."""
        return {
            "base_model": str(self.base_model), "tasks_dir": str(self.tasks_dir), "protocol": self.protocol,
            "train_rows": self.train_rows, "source_rows": self.source_rows, "source_epochs": self.source_epochs,
            "target_epochs": self.target_epochs, "val_rows": self.val_rows, "max_length": self.max_length,
            "lr": self.adapter_lr if self.protocol == "adapter" else self.lr, "batch_size": self.batch_size,
            **self._data_seed_setting(),
        }

    def probe_settings(self) -> dict[str, Any]:
        """The settings the probes and baseline vectors depend on."""
        settings = {
            "base_model": str(self.base_model), "tasks_dir": str(self.tasks_dir), "train_rows": self.train_rows,
            "probe_epochs": self.probe_epochs, "probe_early_epochs": self.probe_early_epochs,
            "probe_val_rows": self.probe_val_rows, "max_length": self.max_length, "batch_size": self.batch_size,
        }
        if self.probe_lrs:  # only when set, so caches made before the option keep their key
            settings["probe_lrs"] = dict(sorted(self.probe_lrs.items()))
        return {**settings, **self._data_seed_setting()}

    def _data_seed_setting(self) -> dict[str, int]:
        """``data_seed`` in a cache key only when not 0, so caches made before the option keep their key."""
        return {"data_seed": self.data_seed} if self.data_seed else {}

    def key(self) -> str:
        return "transfer-" + _digest(self.transfer_settings())

    def probe_key(self) -> str:
        return "probes-" + _digest(self.probe_settings())

    def transfer_dir(self) -> Path:
        return self.cache / self.key()

    def probe_dir(self) -> Path:
        return self.cache / self.probe_key()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks_dir"], data["cache"] = str(self.tasks_dir), str(self.cache)
        data["probe_methods"] = list(self.probe_methods)
        data["offshelf_methods"] = list(self.offshelf_methods)
        data.pop("gpus_per_job")  # how the jobs were scheduled, like the executor: not in the result file
        if self.targets:
            data["targets"] = list(self.targets)
        else:
            data.pop("targets")  # all tasks: result files read as before the option
        return data


def _digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------ data


class TaskSet:
    """The tasks' data, loaded once: target splits (train_rows / val_rows) and source splits."""

    def __init__(self, config: TransferConfig) -> None:
        from zoo_tupate.tuning.data import load_task
        from zoo_tupate.tuning.encoding import encode, load_tokenizer

        self.config = config
        self.tokenizer = load_tokenizer(config.base_model)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._load, self._encode = load_task, encode
        self._cache: dict[tuple[str, str], Any] = {}

    def target(self, name: str) -> Any:
        """(TaskData, encoded train, encoded validation) of ``name`` as a target."""
        key = ("target", name)
        if key not in self._cache:
            c = self.config
            data = self._load(str(c.tasks_dir / name), max_train=c.train_rows, max_eval=c.val_rows,
                              seed=c.data_seed)
            self._cache[key] = (data, self._encode(self.tokenizer, data.train, data.problem, c.max_length),
                                self._encode(self.tokenizer, data.validation, data.problem, c.max_length))
        return self._cache[key]

    def source(self, name: str) -> Any:
        """(TaskData, encoded train) of ``name`` as a source."""
        key = ("source", name)
        if key not in self._cache:
            c = self.config
            data = self._load(str(c.tasks_dir / name), max_train=c.source_rows, max_eval=1, seed=c.data_seed)
            self._cache[key] = (data, self._encode(self.tokenizer, data.train, data.problem, c.max_length))
        return self._cache[key]


def majority_rate(labels: list[Any], problem: str) -> float | None:
    """The share of the most frequent validation label (``None`` for regression)."""
    if problem == "regression" or not labels:
        return None
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return float(counts.max() / len(labels))
