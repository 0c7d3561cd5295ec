"""One way to run units of work: an :class:`Executor` (here, in local processes, or on Ray) runs :class:`Job` s.

- :mod:`zoo_tupate.executors.base`: :class:`Job`, :class:`Outcome`, the :class:`Executor` interface, the
  per-worker cache and :func:`make_executor`.
- :mod:`zoo_tupate.executors.local`: this process, or a pool of spawned worker processes (no extra dependency).
- :mod:`zoo_tupate.executors.ray`: Ray tasks with declared resources, retried when their worker dies
  (``pip install "zoo-tupate[ray]"``).
"""

from zoo_tupate.executors.base import (
    EXECUTORS,
    Executor,
    Job,
    Outcome,
    Resources,
    Then,
    make_executor,
    raise_failures,
    worker_cache,
)

__all__ = ["EXECUTORS", "Executor", "Job", "Outcome", "Resources", "Then", "make_executor", "raise_failures",
           "worker_cache"]
