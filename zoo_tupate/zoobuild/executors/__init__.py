"""One way to run units of work: an :class:`Executor` (here, in local processes, or on Ray) runs :class:`Job` s.

- :mod:`zoo_tupate.zoobuild.executors.base`: :class:`Job`, :class:`Outcome`, the :class:`Executor` interface, the
  per-worker cache, the registry (``@register(name)``) and :func:`make_executor`.
- :mod:`zoo_tupate.zoobuild.executors.local`: this process, or a pool of spawned worker processes (no extra dependency).
- :mod:`zoo_tupate.zoobuild.executors.ray`: Ray tasks with declared resources, retried when their worker dies
  (``pip install "zoo-tupate[ray]"``).
"""

from zoo_tupate.zoobuild.executors import local, ray  # noqa: F401  (each registers itself)
from zoo_tupate.zoobuild.executors.base import (
    Executor,
    Job,
    Outcome,
    Resources,
    Then,
    executor_names,
    make_executor,
    raise_failures,
    worker_cache,
)

__all__ = ["Executor", "Job", "Outcome", "Resources", "Then", "executor_names", "make_executor", "raise_failures",
           "worker_cache"]
