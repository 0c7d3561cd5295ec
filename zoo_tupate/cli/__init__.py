"""The ``zoo-tupate`` command line: a thin layer over the Python API.

Each command lives in its own module exposing ``command`` (a click command or group); add a module's
name to ``COMMAND_MODULES`` to register it. The top layer, with :mod:`zoo_tupate.api`: may import any layer.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from zoo_tupate.core.constants import default_home
from zoo_tupate.core.version import __version__

COMMAND_MODULES = ["info", "embed", "index", "suggest", "pull", "push", "card", "tune", "bench", "eval", "zoo"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory holding the index and caches (env ZOO_TUPATE_HOME; default: a per-user cache dir).",
)
@click.option("--debug", is_flag=True, help="Print the traceback of an unexpected error (env ZOO_TUPATE_DEBUG=1).")
@click.version_option(__version__, prog_name="zoo-tupate")
@click.pass_context
def main(ctx: click.Context, home: Path | None, debug: bool) -> None:
    """Rank source tasks for a target from parameter-efficient checkpoints (TuPaTE)."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home = home if home is not None else default_home()
    if home.exists() and not home.is_dir():
        click.echo(f"error: {home}: --home (or ZOO_TUPATE_HOME) must be a directory, and this is a file", err=True)
        ctx.exit(2)
    ctx.obj["debug"] = debug
    # torch's compiler cache would otherwise land in the system temp dir: nothing is written outside --home
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(home / "cache" / "torchinductor"))


for _name in COMMAND_MODULES:
    _module = importlib.import_module(f"zoo_tupate.cli.{_name}")
    main.add_command(_module.command)
