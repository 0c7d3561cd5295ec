"""TuPaTE probes for the transfer run and every ranking method's score for every (target, source) pair.

Each task gets a probe per method (``zoo_tupate.tuning.tune``: LoRA, BitFit, deep prefix) on its LIMITED
training rows, with ``init_seed`` 0; the off-the-shelf condition tunes the sources again with
``offshelf_init_seed`` (as if downloaded from someone who started from another random init) while the
target keeps init 0 (only for ``offshelf_methods``, LoRA and prefix by default: BitFit's BEFT biases start
at zero, so its init seed moves only the classification head, which embeddings leave out). A prediction name reads ``<condition>/<method>/<repr>/<pooling>/<checkpoint>/<sim>``:

- condition ``tupate`` (same init) or ``offshelf``; method ``lora``/``bitfit``/``prefix`` or ``ensemble``
  (score averaged over the three methods; ``ensemble-delta`` uses LoRA's ΔW);
- repr ``raw``/``delta``; pooling ``layer-mean``/``flatten``; checkpoint ``early`` (2 epochs) or ``best``;
- sim ``cos`` (plain cosine) or ``centered`` (cosine after subtracting the mean of the 11 task vectors,
  as ``suggest --center`` does with the zoo's mean).

Baselines (``datasize``, ``textemb``, ``taskemb``) come from :mod:`zoo_tupate.bench.baselines`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo_tupate.bench.baselines import baseline_predictions
from zoo_tupate.bench.jobs import job_resources
from zoo_tupate.bench.scores import Scores, average_scores, pair_scores
from zoo_tupate.core.cachefiles import read_json, write_json
from zoo_tupate.core.errors import ZooError
from zoo_tupate.zoobuild.executors import Job
from zoo_tupate.zoobuild.executors.base import log_line

if TYPE_CHECKING:
    from zoo_tupate.bench.config import TaskSet, TransferConfig

CHECKPOINTS: tuple[str, ...] = ("early", "best")
POOLINGS: tuple[str, ...] = ("layer-mean", "flatten")
SIMS: tuple[str, ...] = ("cos", "centered")


def probe_folder(config: TransferConfig, task: str, init_seed: int) -> Path:
    return config.probe_dir() / "probes" / task / f"init{init_seed}"


def init_seeds(config: TransferConfig) -> list[int]:
    return [0, config.offshelf_init_seed]


def probe_jobs(config: TransferConfig) -> list[Job]:
    """Every missing probe (all same-init probes first, then the off-the-shelf ones)."""
    jobs = []
    for init in init_seeds(config):
        for task in config.tasks:
            for method in config.probe_methods:
                if init != 0 and method not in config.offshelf_methods:
                    continue
                if not (probe_folder(config, task, init) / method / "train_log.json").is_file():
                    jobs.append(Job(probe_job, (config, init, task, method), label=f"probe {method} {task} init{init}",
                                    resources=job_resources(config)))
    return jobs


def probe_job(config: TransferConfig, init: int, task: str, method: str) -> None:
    """Tune one probe with ``zoo_tupate.tuning.tune``; its wall time goes to ``probe_wall.json`` beside it."""
    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.train import tune

    out = probe_folder(config, task, init)
    started = time.perf_counter()
    tune(TuneConfig(
        dataset=str(config.tasks_dir / task), base_model=config.base_model, method=method,
        base_model_id=config.base_model_id, epochs=config.probe_epochs,
        early_epochs=config.probe_early_epochs, max_train=config.train_rows,
        max_eval=config.probe_val_rows, batch_size=config.batch_size, max_length=config.max_length,
        device=config.device, output=out, seed=config.data_seed, init_seed=init, cards=False, lr=config.probe_lrs.get(method),
    ))
    wall = time.perf_counter() - started
    write_json(out / method / "probe_wall.json", {"wall_s": round(wall, 3)})
    log_line(f"probe {method} {task} init{init}: {wall:.0f}s")


def probe_quality(config: TransferConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """How well each probe learned its own task: ``{"init<k>/<method>": {task: {lr, early, best, best_epoch,
    device}}}`` from the probes' ``train_log.json`` (validation scores on the probe's own sample)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for init in init_seeds(config):
        for method in config.probe_methods:
            for task in config.tasks:
                log = read_json(probe_folder(config, task, init) / method / "train_log.json")
                if log:
                    out.setdefault(f"init{init}/{method}", {})[task] = {
                        "lr": log.get("lr"), "early": log.get("early_metric"), "best": log.get("best_metric"),
                        "best_epoch": log.get("best_epoch"), "device": log.get("device")}
    return out


def _probe_vectors(config: TransferConfig, notes: list[str]) -> dict[tuple, np.ndarray]:
    """``(init, task, method, checkpoint, repr, pooling) -> vector`` for every probe that exists."""
    from zoo_tupate.embedding.checkpoint import embed

    vectors: dict[tuple, np.ndarray] = {}
    for init in init_seeds(config):
        for task in config.tasks:
            for method in config.probe_methods:
                for ckpt in CHECKPOINTS:
                    folder = probe_folder(config, task, init) / method / ckpt
                    if not folder.is_dir():
                        continue
                    for repr_ in ("raw", "delta") if method == "lora" else ("raw",):
                        for pooling in POOLINGS:
                            try:
                                emb = embed(folder, repr=repr_, pooling=pooling,
                                            base_model_id=config.base_model_id)
                            except ZooError as exc:
                                notes.append(f"{folder} ({repr_}, {pooling}): {exc}")
                                continue
                            vectors[(init, task, method, ckpt, repr_, pooling)] = emb.vector.astype(np.float64)
    return vectors


def tupate_predictions(config: TransferConfig, notes: list[str]) -> dict[str, Scores]:
    """Every TuPaTE variant's scores (see the module docstring for the names)."""
    vectors = _probe_vectors(config, notes)
    predictions: dict[str, Scores] = {}
    conditions = [("tupate", 0)] + ([("offshelf", config.offshelf_init_seed)] if config.offshelf_methods else [])
    for condition, source_init in conditions:
        for ckpt in CHECKPOINTS:
            for pooling in POOLINGS:
                for sim in SIMS:
                    per_method: dict[tuple[str, str], Scores] = {}
                    for method in config.probe_methods:
                        # a method left out of the off-the-shelf probes reuses its init-0 sources
                        # (equal to the same-init case, so it is only used inside the ensembles)
                        own = condition == "tupate" or method in config.offshelf_methods
                        init = source_init if own else 0
                        for repr_ in ("raw", "delta") if method == "lora" else ("raw",):
                            targets = {t: v for (i, t, m, c, r, p), v in vectors.items()
                                       if i == 0 and m == method and c == ckpt and r == repr_ and p == pooling}
                            sources = {t: v for (i, t, m, c, r, p), v in vectors.items()
                                       if i == init and m == method and c == ckpt and r == repr_
                                       and p == pooling}
                            scores = pair_scores(targets, sources, center=sim == "centered")
                            if scores:
                                per_method[(method, repr_)] = scores
                                if own:
                                    predictions[f"{condition}/{method}/{repr_}/{pooling}/{ckpt}/{sim}"] = scores
                    raw = [per_method[(m, "raw")] for m in config.probe_methods if (m, "raw") in per_method]
                    if len(raw) > 1:
                        predictions[f"{condition}/ensemble/raw/{pooling}/{ckpt}/{sim}"] = average_scores(raw)
                    mixed = [per_method.get((m, "delta" if m == "lora" else "raw")) for m in config.probe_methods]
                    if len(mixed) > 1 and all(mixed):
                        predictions[f"{condition}/ensemble-delta/mixed/{pooling}/{ckpt}/{sim}"] = \
                            average_scores(mixed)  # type: ignore[arg-type]
    return predictions


def all_predictions(config: TransferConfig, tasks: TaskSet, log: Callable[[str], None]) -> tuple[dict, list[str]]:
    """TuPaTE predictions and the baselines' (``{name: {target: {source: score}}}``) with notes."""
    notes: list[str] = []
    predictions = tupate_predictions(config, notes)
    predictions.update(baseline_predictions(config, tasks, notes, log))
    return predictions, notes


def describe(name: str) -> dict[str, Any]:
    """Split a prediction name into its parts (baselines have only ``condition``)."""
    parts = name.split("/")
    if len(parts) != 6:
        return {"condition": name}
    keys = ("condition", "method", "repr", "pooling", "checkpoint", "sim")
    return dict(zip(keys, parts, strict=True))
