"""The transfer run: for every ordered (source, target) pair, the target's score after intermediate training
on the source, the target-only score, and every ranking method's predictions — resumable.

Cache layout under ``cache`` (one folder per configuration key, so runs with other settings never mix)::

    <key>/pairs/<source>__<target>__s<seed>.json    one measured transfer (atomic JSON)
    <key>/pairs/-__<target>__s<seed>.json           the target-only score
    <key>/models/source-<task>-s<seed>.pt           the intermediate (source) model's transferable weights
    <key>/models/target-<task>-s<seed>.pt           the target-only model (TaskEmb's Fisher is taken on it)
    <key>/baselines/taskemb-<task>.npy              TaskEmb vectors (Fisher of the target-only models)
    <pkey>/probes/<task>/init<k>/<method>/          TuPaTE probes (``zoo_tupate.tuning.tune`` output)
    <pkey>/baselines/textemb-<task>.npy             TextEmb vectors

A finished file is never recomputed; an interrupted run resumes where it stopped. The work is cut into
jobs (one source model, one pair, one probe each) that an executor runs (:mod:`zoo_tupate.bench.jobs`:
this process, ``workers`` local processes, or Ray); the device, the executor and the worker count are not
part of the cache key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.bench.baselines import run_baseline_stage
from zoo_tupate.bench.config import RESULT_FORMAT, STAGES, TARGET_ONLY, TaskSet, TransferConfig, majority_rate
from zoo_tupate.bench.finetune import Recipe, build_model, score, train, transferable_state
from zoo_tupate.bench.jobs import execute, job_resources
from zoo_tupate.bench.layout import model_path, pair_path
from zoo_tupate.bench.predict import all_predictions, probe_jobs, probe_quality
from zoo_tupate.bench.provenance import measured_versions, measuring_versions, timings, versions
from zoo_tupate.core.cachefiles import read_json, save_torch, write_json
from zoo_tupate.zoobuild.executors import Executor, Job, Then, worker_cache
from zoo_tupate.zoobuild.executors.base import log_line, remember

# ------------------------------------------------------------------------------------------ transfer stage


def transfer_jobs(config: TransferConfig) -> list[Job]:
    """The missing work, seed by seed: the target-only pairs, then each source model (which releases its
    pairs when it is done; see :func:`_source_job`)."""
    jobs: list[Job] = []
    for seed in config.seeds:
        for target in config.target_tasks:
            if read_json(pair_path(config, TARGET_ONLY, target, seed)) is None:
                jobs.append(pair_job_for(config, seed, TARGET_ONLY, target))
        for source in config.tasks:
            if _pending_targets(config, source, seed):
                jobs.append(Job(source_job, (config, seed, source), label=f"source {seed} {source}",
                                resources=job_resources(config)))
    return jobs


def pair_job_for(config: TransferConfig, seed: int, source: str, target: str) -> Job:
    """The job measuring one pair (``source`` ``-``: the target-only score)."""
    return Job(pair_job, (config, seed, source, target), label=f"pair {seed} {source} {target}",
               resources=job_resources(config))


def task_set(config: TransferConfig) -> TaskSet:
    """The run's data, loaded once per process (see :func:`zoo_tupate.zoobuild.executors.worker_cache`)."""
    return worker_cache(("taskset", config.data_key()), lambda: TaskSet(config))


def _pending_targets(config: TransferConfig, source: str, seed: int) -> list[str]:
    return [t for t in config.target_tasks
            if t != source and read_json(pair_path(config, source, t, seed)) is None]


def source_job(config: TransferConfig, seed: int, source: str) -> Then:
    """Train (or find) the source model of ``(seed, source)``; release its missing pairs."""
    _source_state(config, task_set(config), source, seed, config.recipe(), log_line)
    return Then(jobs=[pair_job_for(config, seed, source, t) for t in _pending_targets(config, source, seed)])


def pair_job(config: TransferConfig, seed: int, source: str, target: str) -> None:
    """Measure one pair (``source`` ``-``: the target-only score) unless it is cached."""
    path = pair_path(config, source, target, seed)
    if read_json(path) is None:
        recipe, tasks = config.recipe(), task_set(config)
        state = None if source == TARGET_ONLY else _source_state(config, tasks, source, seed, recipe, log_line)
        _fit_target(config, tasks, source, target, seed, state, recipe, path, log_line)
_STATES: dict[Path, dict[str, Any]] = {}  # the last source model read (a source's pairs come in a row)


def _source_state(config: TransferConfig, tasks: TaskSet, source: str, seed: int, recipe: Recipe,
                  log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    path = model_path(config, "source", source, seed)
    if path in _STATES:
        return _STATES[path]
    state = None
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError):
            log(f"{path}: unreadable, retraining the source model")
    if state is None:
        data, train_enc = tasks.source(source)
        model = build_model(config.base_model, data, seed, recipe)
        info = train(model, train_enc, data.problem, config.source_epochs, seed, recipe, tasks.pad_id)
        state = transferable_state(model, recipe)
        save_torch(path, state)
        write_json(path.with_suffix(".json"), {"source": source, "seed": seed, "rows": len(train_enc),
                                               "device": recipe.device, **info})
        log(f"source {source} s{seed}: {len(train_enc)} rows x {config.source_epochs} epochs in "
            f"{info['train_s']:.0f}s")
    _STATES.clear()
    _STATES[path] = state
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
        save_torch(model_path(config, "target", target, seed), {k: v.cpu() for k, v in model.state_dict().items()})
    write_json(path, {"source": None if source == TARGET_ONLY else source, "target": target, "seed": seed,
                      "metric": metrics["metric"], "metrics": metrics, "eval_s": eval_s, "device": recipe.device,
                      "versions": measuring_versions(recipe.device), **info})
    label = "target-only" if source == TARGET_ONLY else f"{source} ->"
    log(f"{label} {target} s{seed}: {metrics['metric']:.4f} (train {info['train_s']:.0f}s, eval {eval_s:.0f}s)")


# ------------------------------------------------------------------------------------------ measured matrix


def measured(config: TransferConfig, tasks: TaskSet | None = None) -> dict[str, Any]:
    """Every finished measurement: ``{target: {"target_only": {...}, "sources": {source: {...}}}}``."""
    out: dict[str, Any] = {}
    for target in config.target_tasks:
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
        log: Callable[[str], None] = log_line, executor: Executor | None = None) -> dict[str, Any] | None:
    """Run the requested stages (jobs on ``executor``, default local: ``config.workers`` processes); with
    ``report`` (and ``out``), write and return the result document."""
    config.check()
    started = time.perf_counter()
    tasks = TaskSet(config)
    remember(("taskset", config.data_key()), tasks)
    jobs = (probe_jobs(config) if "probes" in stages else []) + \
        (transfer_jobs(config) if "transfer" in stages else [])
    if jobs:  # probes first: they are short, and every prediction needs them
        n = execute(jobs, config, log, executor)
        log(f"transfer/probe stages: {n} job(s) ran")
    if "baselines" in stages:
        run_baseline_stage(config, tasks, log)
    if "report" not in stages:
        return None
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
        "probe_quality": probe_quality(config),
        "notes": notes,
        "timings": timings(config),
        "versions": versions(),
        "measured_with": measured_versions(config),
        "report_wall_s": round(time.perf_counter() - started, 3),
    }
    if out is not None:
        write_json(out, document)
    return document
