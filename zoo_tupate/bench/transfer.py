"""The transfer run: for every ordered (source, target) pair, the target's score after intermediate training
on the source, the target-only score, and every ranking method's predictions — resumable.

Cache layout under ``cache`` (one folder per configuration key, so runs with other settings never mix)::

    <key>/pairs/<source>__<target>__s<seed>.json    one measured transfer (atomic JSON)
    <key>/pairs/-__<target>__s<seed>.json           the target-only score
    <key>/models/source-<task>-s<seed>.pt           the intermediate (source) model's transferable weights
    <key>/models/target-<task>-s<seed>.pt           the target-only model (TaskEmb's Fisher is taken on it)
    <pkey>/probes/<task>/init<k>/<method>/          TuPaTE probes (``zoo_tupate.tuning.tune`` output)
    <pkey>/baselines/<name>-<task>.json             TextEmb / TaskEmb vectors

A finished file is never recomputed; an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.bench.cache import read_json, save_torch, write_json
from zoo_tupate.bench.finetune import PROTOCOLS, Recipe, build_model, score, train, transferable_state
from zoo_tupate.errors import DatasetError, TuningError

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

    def recipe(self) -> Recipe:
        return Recipe(protocol=self.protocol, lr=self.lr, adapter_lr=self.adapter_lr, batch_size=self.batch_size)

    def transfer_settings(self) -> dict[str, Any]:
        """The settings a measured transfer depends on (they name its cache folder)."""
        return {
            "base_model": str(self.base_model), "tasks_dir": str(self.tasks_dir), "protocol": self.protocol,
            "train_rows": self.train_rows, "source_rows": self.source_rows, "source_epochs": self.source_epochs,
            "target_epochs": self.target_epochs, "val_rows": self.val_rows, "max_length": self.max_length,
            "lr": self.adapter_lr if self.protocol == "adapter" else self.lr, "batch_size": self.batch_size,
        }

    def probe_settings(self) -> dict[str, Any]:
        """The settings the probes and baseline vectors depend on."""
        return {
            "base_model": str(self.base_model), "tasks_dir": str(self.tasks_dir), "train_rows": self.train_rows,
            "probe_epochs": self.probe_epochs, "probe_early_epochs": self.probe_early_epochs,
            "probe_val_rows": self.probe_val_rows, "max_length": self.max_length, "batch_size": self.batch_size,
        }

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
        return data


def _digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def log_line(message: str) -> None:
    """One time-stamped progress line on stderr (the run's log)."""
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data


class TaskSet:
    """The tasks' data, loaded once: target splits (train_rows / val_rows) and source splits."""

    def __init__(self, config: TransferConfig) -> None:
        from zoo_tupate.tuning.data import load_task
        from zoo_tupate.tuning.train import encode, load_tokenizer

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
            data = self._load(str(c.tasks_dir / name), max_train=c.train_rows, max_eval=c.val_rows, seed=0)
            self._cache[key] = (data, self._encode(self.tokenizer, data.train, data.problem, c.max_length),
                                self._encode(self.tokenizer, data.validation, data.problem, c.max_length))
        return self._cache[key]

    def source(self, name: str) -> Any:
        """(TaskData, encoded train) of ``name`` as a source."""
        key = ("source", name)
        if key not in self._cache:
            c = self.config
            data = self._load(str(c.tasks_dir / name), max_train=c.source_rows, max_eval=1, seed=0)
            self._cache[key] = (data, self._encode(self.tokenizer, data.train, data.problem, c.max_length))
        return self._cache[key]


def majority_rate(labels: list[Any], problem: str) -> float | None:
    """The share of the most frequent validation label (``None`` for regression)."""
    if problem == "regression" or not labels:
        return None
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return float(counts.max() / len(labels))


# ------------------------------------------------------------------------------------------ transfer stage


def pair_path(config: TransferConfig, source: str, target: str, seed: int) -> Path:
    return config.transfer_dir() / "pairs" / f"{source}__{target}__s{seed}.json"


def model_path(config: TransferConfig, role: str, task: str, seed: int) -> Path:
    return config.transfer_dir() / "models" / f"{role}-{task}-s{seed}.pt"


def run_transfer_stage(config: TransferConfig, tasks: TaskSet, log: Callable[[str], None] = log_line) -> int:
    """Measure every missing (source, target, seed) and target-only score; returns how many were computed."""
    import torch

    recipe = config.recipe()
    computed = 0
    for seed in config.seeds:
        for target in config.tasks:
            path = pair_path(config, TARGET_ONLY, target, seed)
            if read_json(path) is None:
                computed += 1
                _fit_target(config, tasks, TARGET_ONLY, target, seed, None, recipe, path, log)
        for source in config.tasks:
            pending = [t for t in config.tasks if t != source and read_json(pair_path(config, source, t, seed)) is None]
            if not pending:
                continue
            state = _source_state(config, tasks, source, seed, recipe, log)
            for target in pending:
                computed += 1
                _fit_target(config, tasks, source, target, seed, state, recipe,
                            pair_path(config, source, target, seed), log)
            del state
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return computed


def _source_state(config: TransferConfig, tasks: TaskSet, source: str, seed: int, recipe: Recipe,
                  log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    path = model_path(config, "source", source, seed)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError):
            log(f"{path}: unreadable, retraining the source model")
    data, train_enc = tasks.source(source)
    model = build_model(config.base_model, data, seed, recipe)
    info = train(model, train_enc, data.problem, config.source_epochs, seed, recipe, tasks.pad_id)
    state = transferable_state(model, recipe)
    save_torch(path, state)
    write_json(path.with_suffix(".json"), {"source": source, "seed": seed, "rows": len(train_enc), **info})
    log(f"source {source} s{seed}: {len(train_enc)} rows x {config.source_epochs} epochs in {info['train_s']:.0f}s")
    return state


def _fit_target(config: TransferConfig, tasks: TaskSet, source: str, target: str, seed: int,
                state: dict[str, Any] | None, recipe: Recipe, path: Path, log: Callable[[str], None]) -> None:
    data, train_enc, val_enc = tasks.target(target)
    model = build_model(config.base_model, data, seed, recipe, encoder_state=state)
    info = train(model, train_enc, data.problem, config.target_epochs, seed, recipe, tasks.pad_id)
    t0 = time.perf_counter()
    metrics = score(model, val_enc, data.problem, tasks.pad_id)
    eval_s = round(time.perf_counter() - t0, 3)
    if source == TARGET_ONLY and seed == config.seeds[0] and recipe.protocol == "full":
        save_torch(model_path(config, "target", target, seed), model.state_dict())
    write_json(path, {"source": None if source == TARGET_ONLY else source, "target": target, "seed": seed,
                      "metric": metrics["metric"], "metrics": metrics, "eval_s": eval_s, **info})
    label = "target-only" if source == TARGET_ONLY else f"{source} ->"
    log(f"{label} {target} s{seed}: {metrics['metric']:.4f} (train {info['train_s']:.0f}s, eval {eval_s:.0f}s)")


# ------------------------------------------------------------------------------------------ measured matrix


def measured(config: TransferConfig, tasks: TaskSet | None = None) -> dict[str, Any]:
    """Every finished measurement: ``{target: {"target_only": {...}, "sources": {source: {...}}}}``."""
    out: dict[str, Any] = {}
    for target in config.tasks:
        entry: dict[str, Any] = {"target_only": _summary(config, TARGET_ONLY, target), "sources": {}}
        for source in config.tasks:
            if source != target:
                summary = _summary(config, source, target)
                if summary is not None:
                    entry["sources"][source] = summary
        if tasks is not None:
            data, _, val_enc = tasks.target(target)
            entry["problem"] = data.problem
            entry["metric"] = "pearson_spearman" if data.problem == "regression" else "accuracy"
            entry["majority_rate"] = majority_rate(data.validation.labels, data.problem)
            entry["validation_rows"] = len(val_enc)
            entry["train_rows"] = len(data.train)
        out[target] = entry
    return out


def _summary(config: TransferConfig, source: str, target: str) -> dict[str, Any] | None:
    per_seed: dict[str, float] = {}
    for seed in config.seeds:
        data = read_json(pair_path(config, source, target, seed))
        if data is not None:
            per_seed[str(seed)] = float(data["metric"])
    if not per_seed:
        return None
    values = np.array(list(per_seed.values()))
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "n_seeds": len(values), "per_seed": per_seed}


# ------------------------------------------------------------------------------------------ the whole run


def run(config: TransferConfig, stages: tuple[str, ...] = STAGES, out: Path | None = None,
        log: Callable[[str], None] = log_line) -> dict[str, Any] | None:
    """Run the requested stages; with ``report`` (and ``out``), write and return the result document."""
    config.check()
    started = time.perf_counter()
    tasks = TaskSet(config)
    if "transfer" in stages:
        n = run_transfer_stage(config, tasks, log)
        log(f"transfer stage: {n} measurement(s) computed")
    if "probes" in stages:
        from zoo_tupate.bench.predict import run_probe_stage

        run_probe_stage(config, log)
    if "baselines" in stages:
        from zoo_tupate.bench.baselines import run_baseline_stage

        run_baseline_stage(config, tasks, log)
    if "report" not in stages:
        return None
    from zoo_tupate.bench.predict import all_predictions

    predictions, notes = all_predictions(config, tasks, log)
    document = {
        "format": RESULT_FORMAT,
        "config": config.to_json(),
        "transfer_key": config.key(),
        "probe_key": config.probe_key(),
        "tasks": list(config.tasks),
        "seeds": list(config.seeds),
        "measured": measured(config, tasks),
        "predictions": predictions,
        "notes": notes,
        "timings": _timings(config),
        "versions": versions(),
        "report_wall_s": round(time.perf_counter() - started, 3),
    }
    if out is not None:
        write_json(out, document)
    return document


def _timings(config: TransferConfig) -> dict[str, float]:
    """Compute time summed from the cache (seconds), so a resumed run still reports its full cost."""
    totals = {"source_train_s": 0.0, "target_train_s": 0.0, "target_eval_s": 0.0}
    folder = config.transfer_dir()
    for path in sorted((folder / "models").glob("source-*.json")):
        totals["source_train_s"] += float((read_json(path) or {}).get("train_s", 0.0))
    for path in sorted((folder / "pairs").glob("*.json")):
        data = read_json(path) or {}
        totals["target_train_s"] += float(data.get("train_s", 0.0))
        totals["target_eval_s"] += float(data.get("eval_s", 0.0))
    probe_log = read_json(config.probe_dir() / "timings.json") or {}
    totals.update({k: float(v) for k, v in probe_log.items()})
    return {k: round(v, 1) for k, v in totals.items()}


def versions() -> dict[str, str]:
    """Versions of the libraries the numbers depend on."""
    import torch
    import transformers

    from zoo_tupate import __version__

    out = {"zoo_tupate": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "numpy": np.__version__}
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:  # pragma: no cover - peft is a dependency
        pass
    return out
