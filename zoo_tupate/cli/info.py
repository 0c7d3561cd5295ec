"""``zoo-tupate info PATH``: what a checkpoint holds and what its embedding would be."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from zoo_tupate.cli.common import console, handle_errors, print_json
from zoo_tupate.cli.tables import show
from zoo_tupate.embedding.checkpoint import embed_params
from zoo_tupate.embedding.vectors import layer_layout
from zoo_tupate.formats.weights import sha256_files
from zoo_tupate.readers import open_checkpoint, read_tuned


@click.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--include-heads", is_flag=True, help="Keep head / modules_to_save tensors in the embedding.")
@click.option("--base-model-id", default=None, help="Identity of the base model for the embedding space.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@handle_errors
def command(path: Path, include_heads: bool, base_model_id: str | None, as_json: bool) -> None:
    """Show format, method, base model, layers, per-layer layout, parameters, embedding dim and space."""
    ckpt = open_checkpoint(path)
    params = read_tuned(path, include_heads=include_heads)
    emb = embed_params(params, base_model_id=base_model_id, sha256=sha256_files([ckpt.weights]), source=str(ckpt.path))
    first = next(iter(params.layers.values()), {})
    info = {
        "path": str(ckpt.path),
        "weights_file": ckpt.weights.name,
        "format": params.format,
        "method": params.method,
        "base_model": emb.base_model,
        "layers": sorted(params.layers),
        "layer_layout": layer_layout(first),
        "shared_tensors": {k: list(v.shape) for k, v in params.shared.items()},
        "num_params": params.num_params,
        "dim": emb.dim,
        "space": emb.space,
        "degenerate": emb.degenerate,
        "degenerate_reason": emb.degenerate_reason,
        "excluded_tensors": params.excluded,
        "notes": params.notes,
        "sha256": emb.sha256,
    }
    if as_json:
        print_json(info)
        return
    table = Table(title=str(ckpt.path), show_header=False)
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")  # ids (sha256, space) wrap whole, never cut with an ellipsis
    for key in ("weights_file", "format", "method", "base_model", "num_params", "dim", "space", "sha256"):
        table.add_row(key, str(info[key]))
    table.add_row("layers", f"{len(info['layers'])}: {info['layers']}")
    table.add_row("per-layer layout", "\n".join(f"{n} {tuple(s)}" for n, s in info["layer_layout"]) or "-")
    if info["shared_tensors"]:
        table.add_row("outside layers", "\n".join(f"{n} {tuple(s)}" for n, s in info["shared_tensors"].items()))
    flag = f"[red]yes[/red]: {emb.degenerate_reason}" if emb.degenerate else "no"
    table.add_row("degenerate", flag)
    excluded = info["excluded_tensors"]
    table.add_row("excluded tensors", f"{len(excluded)}" + (f": {', '.join(excluded[:6])}" if excluded else "")
                  + (" …" if len(excluded) > 6 else ""))
    for note in params.notes:
        table.add_row("note", note)
    show(console, table)
