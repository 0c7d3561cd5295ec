"""The Ray executor: each job is a Ray task with its declared resources (CPUs, a GPU share, so that several
small probes share one GPU), retried when the worker running it dies (a killed process, a lost node).

``address`` is a running cluster (``ray://head:10001`` through Ray Client, or ``auto`` / ``head:6379`` on a
cluster node); without one a local Ray instance is started for the run and stopped after it. An instance
already started in this process (``ray.init``) is used as it is. Every node needs zoo-tupate installed
(``pip install "zoo-tupate[ray]"``) and the jobs' inputs (data folders, base model) at the same paths, or
Hub ids. A job's own exception is not retried: it is reported, and the other jobs go on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from zoo_tupate.core.errors import TuningError
from zoo_tupate.zoobuild.executors import raywatch
from zoo_tupate.zoobuild.executors.base import (
    Executor,
    Job,
    Log,
    OnOutcome,
    Outcome,
    log_line,
    register,
    split,
)
from zoo_tupate.zoobuild.executors.display import JobDisplay

#: How often a job is retried after its worker died (not after the job's own exception).
MAX_RETRIES = 3


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`TuningError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise TuningError('--executor ray: Ray is not installed (pip install "zoo-tupate[ray]")') from None
    return ray


@register("ray")
class RayExecutor(Executor):
    """Jobs as Ray tasks on the cluster at ``address`` (default: a local instance with ``num_cpus`` CPUs)."""

    name = "ray"

    @classmethod
    def from_options(cls, workers: int, threads: int | None, address: str | None, num_cpus: int | None,
                     progress: bool) -> RayExecutor:
        """A Ray cluster at ``address`` (default: a local instance with ``num_cpus``)."""
        return cls(address=address, num_cpus=num_cpus, progress=progress)

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = MAX_RETRIES,
                 progress: bool = False) -> None:
        self.address, self.num_cpus, self.max_retries, self.progress = address, num_cpus, max_retries, progress
        self._slots = 1

    @property
    def slots(self) -> int:
        return self._slots

    def _connect(self, ray: Any) -> bool:
        """Join (or start) Ray; True when this call started it (and must stop it)."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"log_to_driver": True, "include_dashboard": False}
        if self.address:
            options = {"address": self.address, "log_to_driver": True}
        elif self.num_cpus:
            options["num_cpus"] = self.num_cpus
        try:
            ray.init(**options)
        except Exception as exc:  # noqa: BLE001 - connection errors of every kind become one line
            where = self.address or "a local Ray instance"
            raise TuningError(f"--executor ray: cannot start or reach {where} ({type(exc).__name__}: {exc})") from None
        return True

    def run(self, jobs: list[Job], on_outcome: OnOutcome | None = None, log: Log | None = None) -> list[Outcome]:
        ray = import_ray()
        log = log or log_line
        # Ray prints its workers' output and its own notes (a worker died, a task is retried) on stdout; they
        # go to stderr with the rest of the progress, so that stdout stays clean for --json
        # a local instance's processes are stopped by a watchdog if this one is killed (from its start on)
        watchdog = raywatch.start() if not (self.address or ray.is_initialized()) else None
        try:
            with contextlib.redirect_stdout(sys.stderr):
                started_here = self._connect(ray)
        except BaseException:
            raywatch.stop(watchdog)
            raise
        try:
            with _exit_on_signals(started_here):  # SIGTERM/SIGHUP unwind to the shutdown below
                self._slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
                with contextlib.redirect_stdout(sys.stderr):
                    return self._run(ray, jobs, on_outcome, log)
        finally:
            if started_here:
                ray.shutdown()  # a local instance's raylet, GCS and workers go with it
            raywatch.stop(watchdog)

    def _run(self, ray: Any, jobs: list[Job], on_outcome: OnOutcome | None, log: Log) -> list[Outcome]:
        remote = ray.remote(max_calls=0)(_execute)  # a worker keeps its loaded data and model between jobs
        pending: dict[Any, tuple[Job, float]] = {}
        outcomes: list[Outcome] = []

        def submit(job: Job) -> None:
            ref = remote.options(num_cpus=job.resources.cpus, num_gpus=job.resources.gpus,
                                 max_retries=self.max_retries, retry_exceptions=False, name=job.name()[:120]).remote(job)
            pending[ref] = (job, time.perf_counter())

        with JobDisplay(self.progress, f"jobs ({self.name})") as display:
            display.add(len(jobs))
            try:
                for job in jobs:
                    submit(job)
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        job, submitted = pending.pop(ref)
                        follow: list[Job] = []
                        try:
                            value, follow = ray.get(ref)
                            outcome = Outcome(job, value=value, wall_s=time.perf_counter() - submitted)
                        except Exception as exc:  # noqa: BLE001 - reported; the other jobs go on
                            outcome = Outcome(job, error=_ray_error(exc, self.max_retries))
                            log(f"FAILED {job.name()}: {outcome.error}")
                        for extra in follow:
                            submit(extra)
                        display.add(len(follow))
                        outcomes.append(outcome)
                        display.finished(outcome)
                        if on_outcome is not None:
                            on_outcome(outcome)
            except BaseException:  # Ctrl-C: cancel what is queued or running; finished writes stay
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
        return outcomes


@contextlib.contextmanager
def _exit_on_signals(enabled: bool) -> Any:
    """While the block runs, SIGTERM and SIGHUP raise ``SystemExit`` (128 + signal) in the main thread instead of
    ending the process at once, so that the local Ray instance this run started is shut down (otherwise its
    processes outlive the driver for a minute or more). SIGINT already raises ``KeyboardInterrupt``."""
    import signal
    import threading

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ray_error(exc: BaseException, retries: int) -> str:
    """One line: the job's own exception (unwrapped), or why its worker was lost after ``retries`` retries."""
    from zoo_tupate.zoobuild.executors.base import describe_error

    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return describe_error(cause)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__} after {retries} retries: {first}"


_THREADS: dict[str, int] = {}


def _execute(job: Job) -> tuple[Any, list[Job]]:
    """Worker side: torch threads set to the job's CPUs (once per worker), then the job."""
    threads = max(1, int(job.resources.cpus))
    if _THREADS.get("n") != threads:
        import torch

        torch.set_num_threads(threads)
        _THREADS["n"] = threads
    return split(job.fn(*job.args))
