"""Shared CLI plumbing: the stderr console, JSON output, and turning errors into one line."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.errors import MarkupError
from rich.text import Text

from zoo_tupate.core.errors import ZooError
from zoo_tupate.core.redact import redact
from zoo_tupate.core.safetext import escape_controls
from zoo_tupate.core.storage import json_default

F = TypeVar("F", bound=Callable[..., Any])

#: Set to ``1`` to print the traceback of an unexpected error (as the global ``--debug`` flag does).
DEBUG_ENV = "ZOO_TUPATE_DEBUG"


class SafeConsole(Console):
    """A console that cannot be steered by the text it prints: control characters (ANSI escapes, carriage
    returns, bidi overrides) are escaped, and text that is not valid markup is printed literally."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        text = escape_controls(text, keep="\n\t")
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


#: Tables, progress and notes go to stderr so that stdout stays clean for ``--json`` and pipes.
console = SafeConsole(stderr=True)


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the only thing a ``--json`` command prints there)."""
    click.echo(json.dumps(obj, indent=2, default=json_default))


#: Longest error line printed: a longer message (a huge name quoted from a file) is cut in the middle.
MAX_ERROR_CHARS = 2000


def fail(message: str, code: int = 1) -> None:
    """Print one redacted error line on stderr (control characters escaped, at most :data:`MAX_ERROR_CHARS`)
    and exit with ``code``."""
    click.echo(f"error: {clip(escape_controls(redact(message)))}", err=True)
    sys.exit(code)


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut in the middle to ``limit`` characters (its start names the file, its end the reason)."""
    if len(text) <= limit:
        return text
    keep = limit - 40
    return f"{text[:keep * 2 // 3]} ...[{len(text) - keep:,} characters cut]... {text[-(keep // 3):]}"


def debug_enabled() -> bool:
    """True under the global ``--debug`` flag or ``ZOO_TUPATE_DEBUG=1``."""
    ctx = click.get_current_context(silent=True)
    flag = bool(ctx is not None and (ctx.find_root().obj or {}).get("debug"))
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def handle_errors(func: F) -> F:
    """Decorator for commands: any error becomes one ``error: <file>: <reason>`` line and a non-zero exit.

    A :class:`ZooError` names its file itself; an ``OSError`` is named by its own path (else the command's
    input); anything else is a bug, reported as one line naming the input, with the traceback only under
    ``--debug`` / ``ZOO_TUPATE_DEBUG=1``.
    """

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
        except OSError as exc:
            _debug_traceback()
            where = exc.filename if exc.filename is not None else _inputs()
            fail(f"{where}: {exc.strerror or exc}{_next_step(exc)}")
        except MemoryError:
            _debug_traceback()
            fail(f"{_inputs()}: out of memory")
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback by default
            _debug_traceback()
            hint = "" if debug_enabled() else f"; rerun with --debug (or {DEBUG_ENV}=1) for the traceback"
            fail(f"{_inputs()}: unexpected {type(exc).__name__}: {str(exc)[:300]}{hint}")

    return wrapper  # type: ignore[return-value]


def _next_step(exc: OSError) -> str:
    """What to do about a folder that cannot be written: the zoo's home, or another path."""
    if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or exc.filename is None:
        return ""
    ctx = click.get_current_context(silent=True)
    home = (ctx.find_root().obj or {}).get("home") if ctx is not None else None
    try:
        inside = home is not None and Path(exc.filename).resolve().is_relative_to(Path(home).resolve())
    except (OSError, ValueError):
        inside = False
    if inside:
        return (f"; the zoo's home ({home}) must be writable (index, caches, probes): choose another with "
                "--home DIR or ZOO_TUPATE_HOME=DIR")
    return "; check that this path is writable by you, or choose another"


def _debug_traceback() -> None:
    if debug_enabled():
        click.echo(redact(traceback.format_exc()).rstrip(), err=True)


def _inputs() -> str:
    """What the running command was given to read (its arguments, or ``--target``), for error lines."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return "zoo-tupate"
    values: list[str] = []
    for param in ctx.command.params:
        if isinstance(param, click.Argument) or param.name in ("target", "dataset", "matrix"):
            value = ctx.params.get(param.name or "")
            if isinstance(value, (tuple, list)):
                values.extend(str(v) for v in value)
            elif value is not None:
                values.append(str(value))
    if not values:
        return ctx.command_path
    return ", ".join(values[:3]) + (f" (+{len(values) - 3} more)" if len(values) > 3 else "")


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Library warnings of a successful command, one line each (a failed command prints only its error)."""
    for message in dict.fromkeys(f"{w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''}"
                                 for w in caught):
        click.echo(f"warning: {clip(escape_controls(redact(message)))}", err=True)


def home_from(ctx: click.Context) -> Path:
    """The ``--home`` directory chosen on the main group."""
    return ctx.find_root().obj["home"]
