"""``zoo-tupate index add|ls|rm|rebuild|import``: manage the zoo index."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from zoo_tupate.cli.common import console, fail, handle_errors, home_from, print_json
from zoo_tupate.embedding import POOLINGS
from zoo_tupate.errors import ZooError
from zoo_tupate.index import Index


@click.group("index")
def command() -> None:
    """Manage the zoo index (under --home)."""


@command.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Entry name (only with one path; default: the folder name).")
@click.option("--repr", "repr_", type=click.Choice(["raw", "delta", "both"]), default="both", show_default=True,
              help="Representations to index (delta only applies to LoRA).")
@click.option("--pooling", type=click.Choice(POOLINGS), default="layer-mean", show_default=True)
@click.option("--base-model-id", default=None, help="Identity of the base model for the embedding space.")
@click.option("--include-heads", is_flag=True, help="Keep head / modules_to_save tensors.")
@click.option("--force", is_flag=True, help="Index degenerate adapters too.")
@click.option("--json", "as_json", is_flag=True, help="Print the added entries as JSON.")
@click.pass_context
@handle_errors
def add(ctx: click.Context, paths: tuple[Path, ...], name: str | None, repr_: str, pooling: str,
        base_model_id: str | None, include_heads: bool, force: bool, as_json: bool) -> None:
    """Embed checkpoint folders and add them to the index. Known content is not recomputed."""
    if name and len(paths) > 1:
        fail("--name can only be used with one path", 2)
    index = Index(home_from(ctx))
    reprs = ("raw", "delta") if repr_ == "both" else (repr_,)
    added, failures = [], []
    started = time.time()
    with _progress(len(paths) > 1) as progress:
        task = progress.add_task("indexing", total=len(paths))
        for path in paths:
            try:
                added.extend(index.add(path, name=name, reprs=reprs, force=force, base_model_id=base_model_id,
                                       pooling=pooling, include_heads=include_heads))
            except ZooError as exc:
                if len(paths) == 1:
                    raise
                failures.append(str(exc))
                console.print(f"[red]error:[/red] {exc}")
            progress.advance(task)
    if as_json:
        print_json([e.to_json() for e in added])
    else:
        for entry in added:
            verb = "unchanged" if entry.added < started else "indexed"
            console.print(f"{verb} [bold]{entry.name}[/bold] ({entry.method}, {entry.repr}, dim {entry.dim}) "
                          f"in {entry.space}")
    if failures:
        fail(f"{len(failures)} of {len(paths)} paths could not be indexed")


@command.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of entries.")
@click.pass_context
@handle_errors
def ls(ctx: click.Context, as_json: bool) -> None:
    """List index entries, sorted by name."""
    entries = Index(home_from(ctx)).entries()
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    if not entries:
        console.print("the index is empty")
        return
    table = Table(title=f"{len(entries)} entries")
    for column in ("name", "method", "repr", "dim", "space", "source"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(e.name, e.method, e.repr, str(e.dim), e.space, e.source)
    console.print(table)


@command.command("rm")
@click.argument("name")
@click.pass_context
@handle_errors
def rm(ctx: click.Context, name: str) -> None:
    """Remove an entry (all its spaces)."""
    gone = Index(home_from(ctx)).remove(name)
    console.print(f"removed {name} ({len(gone)} vector{'s' if len(gone) != 1 else ''})")


@command.command("rebuild")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def rebuild(ctx: click.Context, as_json: bool) -> None:
    """Compact shards and recover a damaged manifest from the shards' records."""
    report = Index(home_from(ctx)).rebuild()
    if as_json:
        print_json(report)
    else:
        console.print(", ".join(f"{k}: {v}" for k, v in report.items()))


@command.command("import")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--space", required=True, help="Name of the space the vectors share (e.g. tupate-release).")
@click.option("--method", default=None, help="Method the vectors come from, if known.")
@click.pass_context
@handle_errors
def import_(ctx: click.Context, folder: Path, space: str, method: str | None) -> None:
    """Index .npy vectors computed elsewhere (one file per task; file stem = entry name)."""
    entries = Index(home_from(ctx)).import_vectors(folder, space, method)
    console.print(f"imported {len(entries)} vectors into space {space}")


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, disable=not enabled, transient=True)
