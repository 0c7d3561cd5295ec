"""``zoo-tupate tune``: tune LoRA / BitFit / P-Tuning v2 on a dataset, save early and best adapters with cards."""

from __future__ import annotations

import re
from pathlib import Path

import click

from zoo_tupate.cli.common import console, handle_errors, home_from, print_json


def _columns(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [c.strip() for c in value.split(",") if c.strip()]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("./~")).strip("_") or "dataset"


@click.command("tune")
@click.option("--dataset", required=True,
              help="Hub dataset (org/name or org/name:config) or a folder with train.* and validation.* (or dev.*).")
@click.option("--method", type=click.Choice(["lora", "bitfit", "prefix", "bottleneck", "all"]),
              default="all", show_default=True,
              help="Tuning method (prefix = P-Tuning v2 deep prefixes; bottleneck = AdapterHub's Pfeiffer adapter, "
                   "saved in AdapterHub's format; all = lora, bitfit and prefix).")
@click.option("--base-model", required=True, help="Hub model id or a local model folder.")
@click.option("--base-model-id", default=None,
              help="Identity of the base model for embedding spaces when --base-model is a path.")
@click.option("--epochs", type=int, default=20, show_default=True,
              help="Training epochs (the paper's 20; on a CPU pass fewer).")
@click.option("--early-epochs", type=int, default=2, show_default=True,
              help="Epoch of the early checkpoint (at most --epochs).")
@click.option("--max-train", type=int, default=None, help="Keep at most this many training rows (seeded sample).")
@click.option("--max-eval", type=int, default=None, help="Keep at most this many validation rows (seeded sample).")
@click.option("--lr", type=float, default=None,
              help="Learning rate (default: the rate calibrated for the base model, else a search over a few "
                   "rates judged by validation; see zoo_tupate/tuning/recipes.py).")
@click.option("--lr-grid", is_flag=True, help="Search the paper's learning-rate grid; keep the best by validation.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-length", type=int, default=128, show_default=True, help="Tokens per example (truncated).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: <home>/runs/<dataset>).")
@click.option("--push", "push_repo", default=None,
              help="Publish each method's best adapter with its card to this Hub repo (org/name; "
                   "with several methods: org/name-<method>).")
@click.option("--text-columns", default=None, help="Comma-separated text column(s), e.g. premise,hypothesis.")
@click.option("--label-column", default=None, help="Label column (default: detected).")
@click.option("--seed", type=int, default=0, show_default=True, help="Data-order and dropout seed.")
@click.option("--init-seed", type=int, default=0, show_default=True,
              help="Initialisation seed (head, LoRA A, prefixes); keep it fixed so embeddings stay comparable.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.pass_context
@handle_errors
def command(ctx: click.Context, dataset: str, method: str, base_model: str, base_model_id: str | None, epochs: int,
            early_epochs: int, max_train: int | None, max_eval: int | None, lr: float | None, lr_grid: bool,
            batch_size: int, max_length: int, device: str, output: Path | None, push_repo: str | None,
            text_columns: str | None, label_column: str | None, seed: int, init_seed: int, threads: int | None,
            as_json: bool) -> None:
    """Tune parameter-efficient adapters on DATASET and save the early and best checkpoints with embedding cards."""
    import torch

    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.train import tune

    if threads:
        torch.set_num_threads(threads)
    if output is None:
        output = home_from(ctx) / "runs" / _slug(dataset)
    config = TuneConfig(
        dataset=dataset, base_model=base_model, method=method, base_model_id=base_model_id, epochs=epochs,
        early_epochs=early_epochs, max_train=max_train, max_eval=max_eval, lr=lr, lr_grid=lr_grid,
        batch_size=batch_size, max_length=max_length, device=device, output=output,
        text_columns=_columns(text_columns), label_column=label_column, seed=seed, init_seed=init_seed,
    )
    config.check()
    results = tune(config, progress=not as_json)
    summaries = [r.to_json() for r in results]
    if push_repo:
        for result, summary in zip(results, summaries, strict=True):
            summary["pushed"] = _push(result, push_repo, len(results) > 1)
    if as_json:
        print_json({"output": str(output), "results": summaries})
        return
    for s in summaries:
        console.print(
            f"[bold]{s['method']}[/bold] lr {s['lr']:g}: best {s['metric']} {s['best_metric']:.4f} at epoch "
            f"{s['best_epoch']}, early (epoch {early_epochs}) {s['early_metric']:.4f}; "
            f"{s['rows_per_s']:.1f} rows/s, {s['wall_s']:.1f}s -> {s['output']}"
        )
        for note in s["notes"]:
            console.print(f"  note: {note}")


def _push(result, repo: str, several: bool) -> dict:
    """Publish ``result``'s best adapter (early when no best was kept) through :mod:`zoo_tupate.hub`."""
    from zoo_tupate.hub import push

    folder = result.best_dir if result.best_dir is not None and result.best_dir.exists() else result.early_dir
    target = f"{repo}-{result.method}" if several else repo
    pushed = push(folder, target, extra={"tuning_log": result.log_path.name, "method": result.method})
    console.print(f"pushed {result.method} ({folder.name}) to {pushed.repo}: {pushed.pr_url or pushed.url}")
    return pushed.to_json()
