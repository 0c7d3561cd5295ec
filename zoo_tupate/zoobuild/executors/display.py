"""The jobs' progress on stderr: a rich bar of finished / known jobs (follow-ups add to the total)."""

from __future__ import annotations

from typing import Any

from zoo_tupate.zoobuild.executors.base import Outcome


class JobDisplay:
    """A context manager; shows nothing unless ``enabled`` and stderr is a terminal."""

    def __init__(self, enabled: bool, title: str) -> None:
        self.enabled, self.title = enabled, title
        self.bar: Any = None
        self.task: Any = None
        self.failed = 0

    def __enter__(self) -> JobDisplay:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        if not console.is_terminal:
            return self
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=False)
        self.bar.__enter__()
        self.task = self.bar.add_task(self.title, total=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def add(self, count: int) -> None:
        """``count`` more jobs are known."""
        if self.bar is not None and count:
            total = self.bar.tasks[0].total or 0
            self.bar.update(self.task, total=total + count)

    def finished(self, outcome: Outcome) -> None:
        """One job finished (a failure is printed above the bar)."""
        if self.bar is None:
            return
        if not outcome.ok:
            self.failed += 1
            self.bar.console.print(f"FAILED {outcome.job.name()}: {outcome.error}", markup=False, highlight=False)
        failed = f" ({self.failed} failed)" if self.failed else ""
        self.bar.update(self.task, advance=1, description=f"{self.title}{failed}: {outcome.job.name()[:40]}")
