"""``zoo-tupate eval --matrix FILE``: score every ranker leave-one-out against measured transfer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from zoo_tupate.cli.common import console, handle_errors, print_json
from zoo_tupate.cli.tables import number_column, show, text_column
from zoo_tupate.core.errors import ZooError


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ZooError(f"{path}: cannot read the transfer matrix ({exc})") from None
    if not isinstance(document, dict) or "measured" not in document or "predictions" not in document:
        raise ZooError(f"{path}: not a transfer matrix (written by 'zoo-tupate bench transfer --out')")
    return document


def _cell(summary: dict[str, Any], metric: str, digits: int) -> str:
    value = summary[metric]
    low, high = summary["ci"][metric]
    if any(math.isinf(v) or math.isnan(v) for v in (value, low, high)):
        return f"{value}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def plot(results: dict[str, dict[str, Any]], path: Path, metric: str = "ndcg") -> Path:
    """A heatmap of each method's per-target ``metric`` (matplotlib, Agg backend)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ZooError("--plot needs matplotlib (pip install 'zoo-tupate[plot]')") from None
    import numpy as np

    methods = list(results)
    targets = sorted({t for r in results.values() for t in r["per_target"]})
    grid = np.full((len(methods), len(targets)), np.nan)
    for i, method in enumerate(methods):
        for j, target in enumerate(targets):
            row = results[method]["per_target"].get(target)
            if row is not None:
                grid[i, j] = row[metric]
    fig, ax = plt.subplots(figsize=(4.5 + 0.75 * len(targets), 1.2 + 0.36 * len(methods)))
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(targets)), targets, rotation=45, ha="right")
    labels = [f"{m} (mean {results[m][metric]:.1f})" for m in methods]
    ax.set_yticks(range(len(methods)), labels, fontsize=8)
    for i in range(len(methods)):
        for j in range(len(targets)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(image, ax=ax, label=metric)
    ax.set_title(f"per-target {metric} (leave-one-out)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


DEFAULT_VARIANT = "/layer-mean/early/cos"
#: What ``eval`` shows without ``--methods``/``--all``: the baselines and each method's default variant
#: (layer-mean pooling, early checkpoint, plain cosine), same-init and off-the-shelf.
MAIN_METHODS: tuple[str, ...] = (
    "datasize", "taskemb", "textemb", "random",
    "tupate/lora/delta/layer-mean/early/cos", "tupate/lora/raw/layer-mean/early/cos",
    "tupate/prefix/raw/layer-mean/early/cos", "tupate/bitfit/raw/layer-mean/early/cos",
    "offshelf/lora/delta/layer-mean/early/cos", "offshelf/lora/raw/layer-mean/early/cos",
)


@click.command("eval")
@click.option("--matrix", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Result file of 'zoo-tupate bench transfer --out'.")
@click.option("--methods", "-m", multiple=True,
              help="Only these methods (names or shell globs such as 'tupate/*/raw/*'; repeatable).")
@click.option("--all", "all_methods", is_flag=True,
              help="Every method variant in MATRIX (default: the main methods only, see MAIN_METHODS, when the "
                   "matrix has them).")
@click.option("--bootstrap", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples over targets for the 95% intervals.")
@click.option("--keep-constant", is_flag=True,
              help="Also score targets whose sources all measure the same (every order is then perfect).")
@click.option("--combined", is_flag=True,
              help="Also score the combined ranker: refitted leave-one-target-out, and with the shipped weights.")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON results on stdout.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of the per-target NDCG of each method.")
@handle_errors
def command(matrix: Path, methods: tuple[str, ...], all_methods: bool, bootstrap: int, keep_constant: bool,
            combined: bool, as_json: bool, plot_path: Path | None) -> None:
    """Score every ranking method in MATRIX leave-one-out: ρ, NDCG, Regret@1, Regret@3 (mean over targets)."""
    from zoo_tupate.ranking.evaluate import constant_targets, evaluate

    document = _load(matrix)
    if combined:
        from zoo_tupate.ranking.ranker import combined_predictions
        from zoo_tupate.ranking.ranker.signals import missing_report

        document = {**document, "predictions": {**document["predictions"], **combined_predictions(document)}}
        for target, lacking in missing_report(document).items():
            console.print(f"[yellow]note:[/yellow] combined ranker, target {target}: dropped " + "; ".join(
                f"{k} (not recorded for {', '.join(v)})" for k, v in lacking.items()))
    if not methods and not all_methods and set(MAIN_METHODS) & set(document.get("predictions", {})):
        methods = (*MAIN_METHODS, *(("combined*",) if combined else ()))  # else: a matrix of other methods
    results = evaluate(document, methods=list(methods) or None, n_boot=bootstrap,
                       skip_constant=not keep_constant)
    constant = constant_targets(document)
    if constant and not keep_constant:
        console.print(f"[yellow]note:[/yellow] left out {len(constant)} target(s) whose sources all measure the"
                      f" same: {', '.join(constant)} (--keep-constant scores them)")
    if not results:
        raise ZooError(f"{matrix}: no method matches {', '.join(methods) or 'anything'} with measured targets")
    if plot_path is not None:
        plot(results, plot_path)
        console.print(f"plot written to {plot_path}")
    if as_json:
        print_json(results)
        return
    seeds = document.get("seeds", [])
    table = Table(title=f"leave-one-out ranking quality ({len(seeds)} seed(s); 95% bootstrap CI over targets)")
    text_column(table, "method")
    for column in ("n", "ρ ↓", "NDCG ↑", "Regret@1 ↓", "Regret@3 ↓", "ρ − random (paired)"):
        number_column(table, column)
    for name, summary in results.items():
        paired = summary.get("vs_random", {}).get("rho")
        versus = "" if paired is None else f"{paired['diff']:+.2f} [{paired['ci'][0]:+.2f}, {paired['ci'][1]:+.2f}]"
        table.add_row(name.removesuffix(DEFAULT_VARIANT), str(summary["n_targets"]), _cell(summary, "rho", 2), _cell(summary, "ndcg", 1),
                      _cell(summary, "regret@1", 1), _cell(summary, "regret@3", 1), versus)
    show(console, table)
    if any(name.endswith(DEFAULT_VARIANT) for name in results):
        console.print(f"methods without a variant suffix are the default variant ({DEFAULT_VARIANT.lstrip('/')})")
