"""Running the transfer run's units of work: in this process, or in a pool of worker processes.

A :class:`Job` is one cached unit (train a source model, measure one pair, tune one probe). Finishing a job
may release follow-up jobs (a source model releases its pairs). With ``workers == 1`` jobs run here, depth
first (a source's pairs right after it, as a sequential run always did); with more, they run in spawned
worker processes sharing the device (several small models keep one GPU busier than one can), in the order
submitted, and a failing job is logged and reported at the end while the others go on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo_tupate.errors import TuningError

if TYPE_CHECKING:
    from zoo_tupate.bench.transfer import TaskSet, TransferConfig

Log = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """One unit of work: ``kind`` names the function in :data:`RUNNERS`, ``args`` its arguments."""

    kind: str
    config: TransferConfig
    args: tuple[Any, ...]

    def label(self) -> str:
        return f"{self.kind} {' '.join(str(a) for a in self.args)}"


# kind -> (job, task set, log) -> follow-up jobs; filled in by the modules that define the work
RUNNERS: dict[str, Callable[[Job, TaskSet, Log], list[Job]]] = {}

_WORKER: dict[str, Any] = {}


def execute(jobs: list[Job], tasks: TaskSet, log: Log, workers: int = 1, threads: int | None = None) -> int:
    """Run ``jobs`` and their follow-ups; returns how many ran. Raises :class:`TuningError` listing the jobs
    that failed in worker processes (every other job still ran and is cached)."""
    if workers <= 1:
        return _execute_here(jobs, tasks, log)
    return _execute_pool(jobs, log, workers, threads)


def _execute_here(jobs: list[Job], tasks: TaskSet, log: Log) -> int:
    queue, done = deque(jobs), 0
    while queue:
        job = queue.popleft()
        follow = RUNNERS[job.kind](job, tasks, log)
        queue.extendleft(reversed(follow))
        done += 1
    return done


def _execute_pool(jobs: list[Job], log: Log, workers: int, threads: int | None) -> int:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    per_worker = threads or max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    failures: list[str] = []
    done = 0
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(per_worker,))
    try:
        pending: dict[Future, Job] = {pool.submit(_run_in_worker, job): job for job in jobs}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                try:
                    follow = future.result()
                except Exception as exc:  # noqa: BLE001 - reported below, the other jobs go on
                    failures.append(f"{job.label()}: {type(exc).__name__}: {exc}")
                    log(f"FAILED {job.label()}: {type(exc).__name__}: {exc}")
                    continue
                done += 1
                for extra in follow:
                    pending[pool.submit(_run_in_worker, extra)] = extra
    except BaseException:  # Ctrl-C: drop the queued jobs; running ones finish their atomic writes
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if failures:
        raise TuningError(f"{len(failures)} job(s) failed (the rest are cached): " + "; ".join(failures[:3]))
    return done


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_in_worker(job: Job) -> list[Job]:
    """Worker side: one task set per data configuration, kept for the worker's life."""
    import zoo_tupate.bench.predict  # noqa: F401 - registers the probe runner
    from zoo_tupate.bench.transfer import TaskSet, log_line

    key = job.config.data_key()
    if _WORKER.get("key") != key:
        _WORKER.update(key=key, tasks=TaskSet(job.config))
    return RUNNERS[job.kind](job, _WORKER["tasks"], log_line)
