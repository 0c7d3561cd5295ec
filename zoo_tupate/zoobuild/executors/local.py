"""The local executor: jobs in this process (``workers == 1``), or in a pool of spawned worker processes.

In this process jobs run depth first (a job's follow-ups right after it); in a pool they run in the order
submitted, several sharing the device (several small models keep one GPU busier than one can). Needs nothing
beyond the standard library.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

from zoo_tupate.zoobuild.executors.base import (
    Executor,
    Job,
    Log,
    OnOutcome,
    Outcome,
    describe_error,
    log_line,
    register,
    split,
)
from zoo_tupate.zoobuild.executors.display import JobDisplay


@register("local")
class LocalExecutor(Executor):
    """``workers`` processes (1: this one) with ``threads`` torch CPU threads each (default: cores / workers).

    ``fail_fast`` (in this process only) lets a job's exception propagate unchanged instead of reporting it.
    """

    name = "local"

    @classmethod
    def from_options(cls, workers: int, threads: int | None, address: str | None, num_cpus: int | None,
                     progress: bool) -> LocalExecutor:
        """``workers`` processes (1 = this process) with ``threads`` torch threads each."""
        return cls(workers=workers, threads=threads, progress=progress)

    def __init__(self, workers: int = 1, threads: int | None = None, progress: bool = False,
                 fail_fast: bool = False) -> None:
        self.workers, self.threads, self.progress, self.fail_fast = max(1, workers), threads, progress, fail_fast

    @property
    def slots(self) -> int:
        return self.workers

    def run(self, jobs: list[Job], on_outcome: OnOutcome | None = None, log: Log | None = None) -> list[Outcome]:
        log = log or log_line
        with JobDisplay(self.progress, f"jobs ({self.name})") as display:
            display.add(len(jobs))
            if self.workers <= 1:
                return self._here(jobs, on_outcome, log, display)
            return self._pool(jobs, on_outcome, log, display)

    def _here(self, jobs: list[Job], on_outcome: OnOutcome | None, log: Log, display: JobDisplay) -> list[Outcome]:
        queue, outcomes = deque(jobs), []
        while queue:
            job = queue.popleft()
            started = time.perf_counter()
            try:
                value, follow = split(job.fn(*job.args))
                outcome = Outcome(job, value=value, wall_s=time.perf_counter() - started)
            except Exception as exc:
                if self.fail_fast:
                    raise
                follow, outcome = [], Outcome(job, error=describe_error(exc), wall_s=time.perf_counter() - started)
                log(f"FAILED {job.name()}: {outcome.error}")
            queue.extendleft(reversed(follow))
            display.add(len(follow))
            _finish(outcome, outcomes, on_outcome, display)
        return outcomes

    def _pool(self, jobs: list[Job], on_outcome: OnOutcome | None, log: Log, display: JobDisplay) -> list[Outcome]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

        per_worker = self.threads or max(1, (os.cpu_count() or 1) // self.workers)
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(per_worker,))
        outcomes: list[Outcome] = []
        try:
            pending: dict[Future, Job] = {pool.submit(_run_in_worker, job): job for job in jobs}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    try:
                        value, follow, wall = future.result()
                        outcome = Outcome(job, value=value, wall_s=wall)
                    except Exception as exc:  # noqa: BLE001 - reported; the other jobs go on
                        follow, outcome = [], Outcome(job, error=describe_error(exc))
                        log(f"FAILED {job.name()}: {outcome.error}")
                    for extra in follow:
                        pending[pool.submit(_run_in_worker, extra)] = extra
                    display.add(len(follow))
                    _finish(outcome, outcomes, on_outcome, display)
        except BaseException:  # Ctrl-C: drop the queued jobs; running ones finish their atomic writes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return outcomes


def _finish(outcome: Outcome, outcomes: list[Outcome], on_outcome: OnOutcome | None, display: JobDisplay) -> None:
    outcomes.append(outcome)
    display.finished(outcome)
    if on_outcome is not None:
        on_outcome(outcome)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_in_worker(job: Job) -> tuple[Any, list[Job], float]:
    started = time.perf_counter()
    value, follow = split(job.fn(*job.args))
    return value, follow, time.perf_counter() - started
