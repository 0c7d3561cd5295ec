"""The transfer run's units of work (one source model, one pair, one probe each) go through an executor
(:mod:`zoo_tupate.zoobuild.executors`): this process, local worker processes, or Ray. With one local worker jobs run
here, depth first (a source's pairs right after it), and the first failure stops the run, as a sequential
run always did; otherwise a failing job is reported at the end while the others go on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_tupate.zoobuild.executors import Executor, Job, Resources, raise_failures
from zoo_tupate.zoobuild.executors.base import Log

if TYPE_CHECKING:
    from zoo_tupate.bench.config import TransferConfig


def default_executor(config: TransferConfig) -> Executor:
    """The local executor with the run's ``workers`` and ``threads``."""
    from zoo_tupate.zoobuild.executors.local import LocalExecutor

    return LocalExecutor(workers=config.workers, threads=config.threads, fail_fast=config.workers <= 1)


def job_resources(config: TransferConfig) -> Resources:
    """What one job of the run declares: its CPU threads and, on a GPU, ``config.gpus_per_job`` of one."""
    gpus = 0.0
    if config.device != "cpu":
        from zoo_tupate.tuning.device import resolve_device

        gpus = config.gpus_per_job if resolve_device(config.device).type == "cuda" else 0.0
    return Resources(cpus=float(config.threads or 1), gpus=gpus)


def execute(jobs: list[Job], config: TransferConfig, log: Log, executor: Executor | None = None) -> int:
    """Run ``jobs`` and their follow-ups; returns how many ran. Raises :class:`TuningError` listing the jobs
    that failed (every other job still ran and is cached)."""
    executor = executor or default_executor(config)
    outcomes = executor.run(jobs, log=log)
    raise_failures(outcomes)
    return len(outcomes)
