"""The executor interface: jobs in, one :class:`Outcome` per job out (as each finishes), follow-ups included.

A :class:`Job` names a module-level function and its arguments (both picklable, so that a spawned process or
a Ray worker on another machine can run it) and the resources it needs. A job's function may return
:class:`Then` to release follow-up jobs (a source model releases its pairs). A job that raises is reported
in its outcome; the others go on. State a worker keeps between jobs (tokenised data, a loaded base model)
lives in :func:`worker_cache`, one per process.
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from zoo_tupate.core.errors import TuningError

#: The executors ``--executor`` accepts.

Log = Callable[[str], None]


@dataclass(frozen=True)
class Resources:
    """What one job needs: CPU cores and a (possibly fractional) share of a GPU."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class Job:
    """One unit of work: ``fn(*args)``, where ``fn`` is a module-level function (importable by workers)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    label: str = ""
    resources: Resources = Resources()

    def name(self) -> str:
        return self.label or f"{self.fn.__name__} {' '.join(str(a) for a in self.args)}"


@dataclass
class Then:
    """A job's value together with the follow-up jobs it releases."""

    value: Any = None
    jobs: list[Job] = field(default_factory=list)


@dataclass
class Outcome:
    """What became of one job: its value, or the error that stopped it."""

    job: Job
    value: Any = None
    error: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


OnOutcome = Callable[[Outcome], None]


def split(result: Any) -> tuple[Any, list[Job]]:
    """(value, follow-up jobs) of a job function's return value."""
    if isinstance(result, Then):
        return result.value, list(result.jobs)
    return result, []


def describe_error(exc: BaseException) -> str:
    """One line for a failed job: a project error's own message, else the exception's type and message."""
    from zoo_tupate.core.errors import ZooError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, ZooError) and text else f"{type(exc).__name__}: {text}"


class Executor(ABC):
    """Runs jobs and their follow-ups; calls ``on_outcome`` in the calling process as each job finishes."""

    name: str = "?"

    @abstractmethod
    def run(self, jobs: list[Job], on_outcome: OnOutcome | None = None, log: Log | None = None) -> list[Outcome]:
        """Run ``jobs`` (and what they release); one outcome per job, in the order they finished.

        A failing job is reported in its outcome (and logged); ``KeyboardInterrupt`` drops the queued jobs
        and is raised.
        """

    @property
    def slots(self) -> int:
        """How many jobs run at once (for time estimates)."""
        return 1

    @classmethod
    @abstractmethod
    def from_options(cls, workers: int, threads: int | None, address: str | None, num_cpus: int | None,
                     progress: bool) -> Executor:
        """Build one from the CLI's options (each executor takes the ones that apply to it)."""


def raise_failures(outcomes: list[Outcome]) -> None:
    """Raise :class:`TuningError` naming the failed jobs (every other job still ran and is kept)."""
    failures = [f"{o.job.name()}: {o.error}" for o in outcomes if not o.ok]
    if failures:
        raise TuningError(f"{len(failures)} job(s) failed (the rest are cached): " + "; ".join(failures[:3]))


def log_line(message: str) -> None:
    """One time-stamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ worker state

_CACHE: OrderedDict[Hashable, Any] = OrderedDict()
_CACHE_SIZE = 4


def worker_cache(key: Hashable, factory: Callable[[], Any]) -> Any:
    """The object this process keeps under ``key`` (made by ``factory`` on first use; the least recently used
    of more than a few is dropped), so that a worker loads data or a model once for many jobs."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = factory()
    remember(key, value)
    return value


def remember(key: Hashable, value: Any) -> None:
    """Put ``value`` in this process's :func:`worker_cache` (e.g. data the caller already loaded)."""
    _CACHE[key] = value
    _CACHE.move_to_end(key)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)


# ------------------------------------------------------------------------------------------ choosing one


_FACTORIES: dict[str, Callable[..., Executor]] = {}


def register(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator: make an executor choosable by ``name`` (its ``from_options`` builds it)."""

    def add(cls: type[Executor]) -> type[Executor]:
        _FACTORIES[name] = cls.from_options
        return cls

    return add


def executor_names() -> tuple[str, ...]:
    """The registered executors' names, in registration order."""
    return tuple(_FACTORIES)


def make_executor(name: str = "local", workers: int = 1, threads: int | None = None, address: str | None = None,
                  num_cpus: int | None = None, progress: bool = False) -> Executor:
    """An executor by name: ``local`` (``workers`` processes; 1 = this process) or ``ray`` (``address``:
    a cluster, default a local Ray instance with ``num_cpus``)."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise TuningError(f"unknown executor {name!r} (choose from {', '.join(_FACTORIES)})")
    return factory(workers=workers, threads=threads, address=address, num_cpus=num_cpus, progress=progress)
