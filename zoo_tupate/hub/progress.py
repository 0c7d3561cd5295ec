"""A rich progress display on stderr for Hub transfers: one row per repo (status, bytes, outcome).

huggingface_hub's own tqdm bars are silenced; their byte counts are forwarded to the repo's row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
)

from zoo_tupate.core.redact import redact


class RepoProgress:
    """Rows of a rich :class:`Progress` keyed by repo; a no-op when ``enabled`` is false."""

    def __init__(self, enabled: bool = True, console: Console | None = None, transient: bool = False):
        self.enabled = enabled
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=24),
                DownloadColumn(),
                TextColumn("{task.fields[status]}"),
                console=console or Console(stderr=True),
                transient=transient,
            )

    def __enter__(self) -> RepoProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, key: str, status: str = "waiting") -> None:
        if self._progress is None:
            return
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task(key, total=None, status=status)

    def status(self, key: str, status: str) -> None:
        if self._progress is not None and key in self._tasks:
            self._progress.update(self._tasks[key], status=redact(status))

    def grow(self, key: str, total: float) -> None:
        """Add ``total`` bytes to what the repo's row expects."""
        if self._progress is not None and key in self._tasks:
            with self._lock:
                current = self._task(key).total or 0
                self._progress.update(self._tasks[key], total=current + total)

    def _task(self, key: str) -> Any:
        assert self._progress is not None
        return next(t for t in self._progress.tasks if t.id == self._tasks[key])

    def advance(self, key: str, nbytes: float) -> None:
        if self._progress is not None and key in self._tasks and nbytes:
            self._progress.advance(self._tasks[key], nbytes)

    def done(self, key: str, status: str) -> None:
        if self._progress is None or key not in self._tasks:
            return
        task_id = self._tasks[key]
        task = self._task(key)
        total = task.total if task.total is not None else task.completed
        self._progress.update(task_id, total=total, completed=total, status=redact(status))

    def tqdm_class(self, key: str) -> type:
        """A silent tqdm class for ``snapshot_download`` whose byte counts feed ``key``'s row."""
        return make_tqdm_bridge(lambda total: self.grow(key, total), lambda n: self.advance(key, n))


def make_tqdm_bridge(on_total: Callable[[float], None], on_bytes: Callable[[float], None]) -> type:
    """A huggingface_hub tqdm subclass that never draws and reports the bytes-written bar's counts."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _Bridge(hf_tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            desc = str(kwargs.get("desc") or "")
            self._zoo_bytes = kwargs.get("unit") == "B" and desc.startswith("Reconstructing")
            self._zoo_total = 0.0
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        @property
        def total(self) -> Any:
            return self._zoo_total

        @total.setter
        def total(self, value: Any) -> None:
            value = float(value or 0)
            if getattr(self, "_zoo_bytes", False) and value > self._zoo_total:
                _safe(on_total, value - self._zoo_total)
            self._zoo_total = value

        def update(self, n: float | None = 1) -> bool | None:
            if getattr(self, "_zoo_bytes", False) and n:
                _safe(on_bytes, float(n))
            return super().update(n)

    return _Bridge


def _safe(func: Callable[[float], None], value: float) -> None:
    try:
        func(value)
    except Exception:  # noqa: BLE001 - a display problem never breaks a download
        pass
