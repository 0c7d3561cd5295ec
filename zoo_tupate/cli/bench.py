"""``zoo-tupate bench transfer``: measure intermediate-task transfer and every ranker's predictions."""

from __future__ import annotations

import time
from pathlib import Path

import click

from zoo_tupate.cli.common import console, handle_errors

_DEFAULT_CACHE = Path(".bench-cache")


def _csv(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one value")
    return items


@click.group("bench")
def command() -> None:
    """Benchmarks: measured transfer for evaluating the rankers (see ``zoo-tupate eval``)."""


@command.command("transfer")
@click.option("--tasks-dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder with one sub-folder per task (train.jsonl, validation.jsonl).")
@click.option("--tasks", required=True, callback=_csv, help="Comma-separated task folder names (at least 2).")
@click.option("--base-model", required=True, help="Base model folder or id (loaded with local files).")
@click.option("--base-model-id", default=None, help="Identity of a local base model in embedding spaces.")
@click.option("--protocol", type=click.Choice(["full", "adapter"]), default="full", show_default=True,
              help="full: fine-tune everything, new head on the target; adapter: continue a LoRA adapter.")
@click.option("--train-rows", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Target training rows (also the probes' rows: LIMITED).")
@click.option("--source-rows", type=click.IntRange(min=2), default=2000, show_default=True)
@click.option("--source-epochs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--target-epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--val-rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Validation rows per target (a fixed sample).")
@click.option("--seeds", default="0", callback=_csv, show_default=True, help="Comma-separated seeds.")
@click.option("--max-length", type=click.IntRange(min=8), default=128, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True, help="Learning rate (full protocol).")
@click.option("--adapter-lr", type=float, default=2e-3, show_default=True, help="Learning rate (adapter).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--probe-epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--probe-early-epochs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--probe-val-rows", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--probe-methods", default="lora,bitfit,prefix", callback=_csv, show_default=True)
@click.option("--offshelf-methods", default="lora,prefix", callback=_csv, show_default=True,
              help="Methods whose sources are tuned again from another init seed (the off-the-shelf condition).")
@click.option("--stage", "stages", multiple=True,
              type=click.Choice(["transfer", "probes", "baselines", "report"]),
              help="Run only these stages (repeatable; default: all). Stages share the cache, so separate"
                   " processes can run them side by side.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Result file (JSON) written by the report stage.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=_DEFAULT_CACHE,
              show_default=True, help="Resumable cache (finished pairs are never recomputed).")
@handle_errors
def transfer(tasks_dir: Path, tasks: list[str], base_model: str, base_model_id: str | None, protocol: str,
             train_rows: int, source_rows: int, source_epochs: int, target_epochs: int, val_rows: int,
             seeds: list[str], max_length: int, lr: float, adapter_lr: float, batch_size: int,
             probe_epochs: int, probe_early_epochs: int, probe_val_rows: int, probe_methods: list[str],
             offshelf_methods: list[str],
             stages: tuple[str, ...], threads: int | None, out: Path | None, cache: Path) -> None:
    """Measure source→target transfer for every ordered pair of TASKS, and every ranker's scores."""
    import torch

    from zoo_tupate.bench.transfer import STAGES, TransferConfig, run
    from zoo_tupate.errors import TuningError

    if threads:
        torch.set_num_threads(threads)
    try:
        seed_list = [int(s) for s in seeds]
    except ValueError:
        raise TuningError(f"--seeds must be integers, got {','.join(seeds)}") from None
    config = TransferConfig(
        tasks_dir=tasks_dir, tasks=tasks, base_model=base_model, cache=cache, protocol=protocol,
        train_rows=train_rows, source_rows=source_rows, source_epochs=source_epochs,
        target_epochs=target_epochs, val_rows=val_rows, seeds=seed_list, max_length=max_length, lr=lr,
        adapter_lr=adapter_lr, batch_size=batch_size, base_model_id=base_model_id,
        probe_methods=tuple(probe_methods), offshelf_methods=tuple(offshelf_methods), probe_epochs=probe_epochs,
        probe_early_epochs=probe_early_epochs, probe_val_rows=probe_val_rows,
    )
    wanted = stages or STAGES
    if "report" in wanted and out is None:
        raise TuningError("the report stage needs --out FILE")
    started = time.perf_counter()
    run(config, stages=tuple(wanted), out=out)
    console.print(f"done in {time.perf_counter() - started:.0f}s" + (f"; results in {out}" if out else ""))
