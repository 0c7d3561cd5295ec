"""Shared CLI plumbing: the stderr console, JSON output, and turning errors into one line."""

from __future__ import annotations

import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from zoo_tupate.errors import ZooError
from zoo_tupate.redact import redact
from zoo_tupate.storage import json_default

F = TypeVar("F", bound=Callable[..., Any])

#: Tables, progress and notes go to stderr so that stdout stays clean for ``--json`` and pipes.
console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the only thing a ``--json`` command prints there)."""
    click.echo(json.dumps(obj, indent=2, default=json_default))


def fail(message: str, code: int = 1) -> None:
    """Print one redacted error line on stderr and exit with ``code``."""
    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Decorator for commands: a :class:`ZooError` (or a bad path) becomes one line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings(record=True) as caught:
                result = func(*args, **kwargs)
            _show_warnings(caught)
            return result
        except ZooError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (OSError, MemoryError) as exc:
            fail(f"{type(exc).__name__}: {exc}")

    return wrapper  # type: ignore[return-value]


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Library warnings of a successful command, one line each (a failed command prints only its error)."""
    for message in dict.fromkeys(f"{w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''}"
                                 for w in caught):
        click.echo(f"warning: {redact(message)}", err=True)


def home_from(ctx: click.Context) -> Path:
    """The ``--home`` directory chosen on the main group."""
    return ctx.find_root().obj["home"]
