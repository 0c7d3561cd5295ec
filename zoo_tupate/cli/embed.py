"""``zoo-tupate embed PATH``: write a checkpoint's task embedding."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from zoo_tupate.cli.common import console, fail, handle_errors, home_from, print_json
from zoo_tupate.embedding.checkpoint import embed
from zoo_tupate.embedding.vectors import POOLINGS, REPRS


@click.command("embed")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--repr", "repr_", type=click.Choice(REPRS), default="raw", show_default=True,
              help="raw: tensors as stored (the paper's); delta: LoRA ΔW (comparable across inits and ranks).")
@click.option("--pooling", type=click.Choice(POOLINGS), default="layer-mean", show_default=True,
              help="layer-mean: average layers (the paper's); flatten: concatenate them.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the 1-D float32 vector to this .npy file.")
@click.option("--include-heads", is_flag=True, help="Keep head / modules_to_save tensors.")
@click.option("--base-model-id", default=None, help="Identity of the base model for the embedding space.")
@click.option("--base-weights", type=click.Path(path_type=Path), default=None,
              help="Base model weights (for absolute BitFit biases).")
@click.option("--json", "as_json", is_flag=True, help="Print the embedding's description as JSON on stdout.")
@click.pass_context
@handle_errors
def command(ctx: click.Context, path: Path, repr_: str, pooling: str, output: Path | None, include_heads: bool,
            base_model_id: str | None, base_weights: Path | None, as_json: bool) -> None:
    """Compute the TuPaTE embedding of the checkpoint at PATH."""
    if output is not None:
        _check_output(output, home_from(ctx) / "index")
    emb = embed(path, repr=repr_, pooling=pooling, include_heads=include_heads, base_model_id=base_model_id,
                base_weights=base_weights)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, emb.vector.astype(np.float32))
        tmp.replace(output)
    if as_json:
        print_json({**emb.to_json(), "output": str(output) if output else None})
        return
    flag = f" [red]degenerate: {emb.degenerate_reason}[/red]" if emb.degenerate else ""
    console.print(f"{emb.method} {emb.repr} {emb.pooling}: dim {emb.dim}, space {emb.space}{flag}")
    if output is not None:
        console.print(f"wrote {output}")
        return
    head = ", ".join(f"{v:.4g}" for v in emb.vector[:4])
    console.print(f"vector: norm {float(np.linalg.norm(emb.vector)):.4g}, mean {float(emb.vector.mean()):.4g}, "
                  f"first values [{head}{', ...' if emb.dim > 4 else ''}]; not written (--output FILE.npy "
                  "saves it, --json prints the description)")


def _check_output(output: Path, index_root: Path) -> None:
    """Refuse an output file inside the index folder (it would overwrite the manifest or a shard)."""
    target = output.expanduser().resolve()
    root = index_root.expanduser().resolve()
    if target == root or root in target.parents:
        fail(f"{output}: is inside the index folder {index_root}; write the vector somewhere else", 2)
