"""``zoo-tupate index add|ls|rm|rebuild|import``: manage the zoo index."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from zoo_tupate.cli.common import console, fail, handle_errors, home_from, print_json
from zoo_tupate.cli.tables import number_column, show, text_column
from zoo_tupate.core.errors import EntryNotFound, ZooError
from zoo_tupate.embedding.space import short_space
from zoo_tupate.embedding.vectors import POOLINGS
from zoo_tupate.ranking.zoo import STARTER, USER, Zoo, name_in
from zoo_tupate.store.index import Index

_CHECKPOINT_FILES = ("*.safetensors", "*.bin", "adapter_config.json", "*.pt", "*.pth")


#: Skipped paths named one by one by ``index add`` (the rest are counted).
SKIPPED_SHOWN = 5


def might_be_checkpoint(path: Path) -> bool:
    """Whether ``path`` could be a checkpoint at all: a weights file, or a folder holding weights, an adapter
    config or a card (anything else, e.g. a README, is skipped by ``index add`` with a note)."""
    if path.is_dir():
        return any(next(path.glob(pattern), None) is not None for pattern in _CHECKPOINT_FILES)
    return path.suffix in (".safetensors", ".bin", ".pt", ".pth") or not path.exists()


@click.group("index")
def command() -> None:
    """Manage the zoo index (under --home)."""


@command.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", default=None,
              help="Entry name (only with one path; default: the task and method the checkpoint records, "
                   "e.g. rte-lora, else the folder name).")
@click.option("--replace", is_flag=True, help="Replace an existing entry of the same name (refused otherwise).")
@click.option("--repr", "repr_", type=click.Choice(["raw", "delta", "both"]), default="both", show_default=True,
              help="Representations to index (delta only applies to LoRA).")
@click.option("--pooling", type=click.Choice(POOLINGS), default="layer-mean", show_default=True)
@click.option("--base-model-id", default=None, help="Identity of the base model for the embedding space.")
@click.option("--include-heads", is_flag=True, help="Keep head / modules_to_save tensors.")
@click.option("--force", is_flag=True, help="Index degenerate adapters too.")
@click.option("--json", "as_json", is_flag=True, help="Print the added entries as JSON.")
@click.pass_context
@handle_errors
def add(ctx: click.Context, paths: tuple[Path, ...], name: str | None, replace: bool, repr_: str, pooling: str,
        base_model_id: str | None, include_heads: bool, force: bool, as_json: bool) -> None:
    """Embed checkpoint folders and add them to the index. Known content is not recomputed.

    Paths that hold no checkpoint at all (a README, an empty folder) are skipped with a note."""
    if name and len(paths) > 1:
        fail("--name can only be used with one path", 2)
    index = Index(home_from(ctx))
    reprs = ("raw", "delta") if repr_ == "both" else (repr_,)
    skipped: list[Path] = []
    if len(paths) > 1:  # one pass (a membership test per path was quadratic: 31 ms a path at 10,000 paths)
        kept = []
        for path in paths:
            (kept if might_be_checkpoint(path) else skipped).append(path)
        paths = tuple(kept)
    for path in skipped[:SKIPPED_SHOWN]:
        console.print(f"note: {path}: not a checkpoint (no weights, adapter config or card), skipped")
    if len(skipped) > SKIPPED_SHOWN:
        console.print(f"note: {len(skipped) - SKIPPED_SHOWN:,} more paths are not checkpoints, skipped")
    added, failures = [], []
    started = time.time()
    with _progress(len(paths) > 1) as progress:
        task = progress.add_task("indexing", total=len(paths))
        for path in paths:
            try:
                added.extend(index.add(path, name=name, reprs=reprs, force=force, base_model_id=base_model_id,
                                       pooling=pooling, include_heads=include_heads, replace=replace))
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
    if skipped and not as_json:
        console.print(f"skipped {len(skipped)} path(s) that are not checkpoints")
    if failures:
        fail(f"{len(failures)} of {len(paths)} checkpoint paths could not be indexed")


@command.command("ls")
@click.option("--starter/--no-starter", default=True, show_default=True,
              help="List the built-in starter zoo's entries too (marked 'starter').")
@click.option("--wide", is_flag=True, help="Show full space ids and sources (wider than 80 columns).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of entries.")
@click.pass_context
@handle_errors
def ls(ctx: click.Context, starter: bool, wide: bool, as_json: bool) -> None:
    """List index entries, sorted by name (your entries, and the starter zoo's that no entry of yours shadows)."""
    listing = Zoo(home_from(ctx), starter=starter).listing()
    if as_json:
        print_json([{**e.to_json(), "zoo": layer} for layer, e in listing])
        return
    if not listing:
        console.print("the index is empty")
        return
    names = {layer: {e.name for l_, e in listing if l_ == layer} for layer in (USER, STARTER)}
    table = Table(title=f"{len(names[USER]) + len(names[STARTER])} entries ({len(names[USER])} yours, "
                        f"{len(names[STARTER])} starter), {len(listing)} vectors")
    text_column(table, "name")
    text_column(table, "method/repr/layout")
    number_column(table, "dim")
    text_column(table, "zoo")
    if wide:
        table.add_column("space", overflow="fold")
        table.add_column("source", overflow="fold")
    for layer, e in listing:
        cells = [e.name, short_space(e.space), str(e.dim), layer]
        table.add_row(*(cells + [e.space, e.source] if wide else cells))
    show(console, table)


@command.command("rm")
@click.argument("name")
@click.pass_context
@handle_errors
def rm(ctx: click.Context, name: str) -> None:
    """Remove an entry (all its spaces)."""
    try:
        gone = Index(home_from(ctx)).remove(name)
    except EntryNotFound:
        starter = Zoo(home_from(ctx)).starter
        if starter is not None and name_in(starter, name):
            raise EntryNotFound(f"{name}: a starter-zoo entry, read-only: leave the starter zoo out of a ranking "
                                "with 'zoo-tupate suggest --no-starter', or shadow it by adding an entry of your "
                                "own under that name ('zoo-tupate index add PATH --name NAME')") from None
        raise
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
