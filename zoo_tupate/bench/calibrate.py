"""``bench calibrate``: the learning rate under which the most targets learn, from target-only runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoo_tupate.bench.config import TARGET_ONLY, TaskSet, TransferConfig, majority_rate
from zoo_tupate.bench.jobs import execute
from zoo_tupate.bench.layout import pair_path
from zoo_tupate.bench.transfer import pair_job_for
from zoo_tupate.core.cachefiles import read_json
from zoo_tupate.zoobuild.executors import Executor
from zoo_tupate.zoobuild.executors.base import log_line, remember


def calibrate(config: TransferConfig, lrs: list[float], log: Callable[[str], None] = log_line,
              executor: Executor | None = None) -> dict[str, Any]:
    """Target-only runs (first seed) at each learning rate in ``lrs``; the chosen rate is the one under which
    the most targets learn (score above the majority-class rate, or a correlation above zero, by more than
    two standard errors of the validation sample), ties broken by the mean margin over that rate. The runs
    land in each rate's own cache, so the full run at the chosen rate reuses them."""
    from dataclasses import replace

    config.check()
    seed = config.seeds[0]
    field_name = "adapter_lr" if config.protocol == "adapter" else "lr"
    configs = {lr: replace(config, **{field_name: lr}) for lr in lrs}
    jobs = [pair_job_for(c, seed, TARGET_ONLY, t) for c in configs.values() for t in config.tasks
            if read_json(pair_path(c, TARGET_ONLY, t, seed)) is None]
    tasks = TaskSet(config)
    remember(("taskset", config.data_key()), tasks)
    execute(jobs, config, log, executor)
    majority, noise = {}, {}
    for task in config.tasks:
        data, _, val_enc = tasks.target(task)
        rate = majority_rate(data.validation.labels, data.problem)
        majority[task] = rate
        n = max(len(val_enc), 1)
        noise[task] = 2 * float(np.sqrt(rate * (1 - rate) / n)) if rate is not None else 2 / float(np.sqrt(n))
    rows: dict[str, Any] = {}
    for lr, c in configs.items():
        scores = {t: float(read_json(pair_path(c, TARGET_ONLY, t, seed))["metric"]) for t in config.tasks}
        margins = {t: scores[t] - (majority[t] or 0.0) for t in config.tasks}
        learned = sorted(t for t in config.tasks if margins[t] > noise[t])
        rows[repr(lr)] = {"lr": lr, "scores": scores, "margins": margins, "learned": learned,
                          "mean_margin": float(np.mean(list(margins.values())))}
    chosen = max(rows.values(), key=lambda r: (len(r["learned"]), r["mean_margin"]))
    return {"protocol": config.protocol, "seed": seed, "majority_rate": majority, "two_se": noise,
            "rates": rows, "chosen_lr": chosen["lr"],
            "rule": "most targets above majority (or correlation above 0) by > 2 SE; ties: mean margin"}
