"""``zoo-tupate bench transfer``: measure intermediate-task transfer and every ranker's predictions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zoo_tupate.cli.common import console, handle_errors
from zoo_tupate.cli.tables import number_column, show, text_column
from zoo_tupate.zoobuild.executors import executor_names

if TYPE_CHECKING:
    from zoo_tupate.bench.config import TransferConfig
    from zoo_tupate.zoobuild.executors import Executor

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


def _method_lrs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in values:
        method, sep, lr = value.partition("=")
        try:
            out[method.strip()] = float(lr)
        except ValueError:
            sep = ""
        if not sep or not method.strip():
            raise click.BadParameter(f"{value!r}: expected METHOD=LR, e.g. lora=2e-3")
    return out


def _run_options(function):  # noqa: ANN001, ANN202 - a click decorator
    """The options that define a transfer run (shared by ``transfer`` and ``calibrate``)."""
    options = [
        click.option("--tasks-dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
                     help="Folder with one sub-folder per task (train.jsonl, validation.jsonl)."),
        click.option("--tasks", required=True, callback=_csv, help="Comma-separated task folder names (at least 2)."),
        click.option("--targets", callback=_csv, default=None,
                     help="Measure only these of --tasks as targets (default: all); every task stays a source."),
        click.option("--base-model", required=True, help="Base model folder or id (loaded with local files)."),
        click.option("--base-model-id", default=None, help="Identity of a local base model in embedding spaces."),
        click.option("--protocol", type=click.Choice(["full", "adapter"]), default="full", show_default=True,
                     help="full: fine-tune everything, new head on the target; adapter: continue a LoRA adapter."),
        click.option("--train-rows", type=click.IntRange(min=2), default=1000, show_default=True,
                     help="Target training rows (also the probes' rows: LIMITED)."),
        click.option("--source-rows", type=click.IntRange(min=2), default=2000, show_default=True),
        click.option("--source-epochs", type=click.IntRange(min=1), default=2, show_default=True),
        click.option("--target-epochs", type=click.IntRange(min=1), default=3, show_default=True),
        click.option("--val-rows", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Validation rows per target (a fixed sample)."),
        click.option("--seeds", default="0", callback=_csv, show_default=True, help="Comma-separated seeds."),
        click.option("--data-seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Which rows are sampled for targets, sources and probes (a fresh matrix: not 0)."),
        click.option("--max-length", type=click.IntRange(min=8), default=128, show_default=True),
        click.option("--lr", type=float, default=5e-5, show_default=True, help="Learning rate (full protocol)."),
        click.option("--adapter-lr", type=float, default=2e-3, show_default=True,
                     help="Learning rate (adapter protocol)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True),
        click.option("--probe-epochs", type=click.IntRange(min=1), default=3, show_default=True),
        click.option("--probe-early-epochs", type=click.IntRange(min=1), default=2, show_default=True),
        click.option("--probe-val-rows", type=click.IntRange(min=1), default=200, show_default=True),
        click.option("--probe-methods", default="lora,bitfit,prefix", callback=_csv, show_default=True),
        click.option("--offshelf-methods", default="lora,prefix", callback=_csv, show_default=True,
                     help="Methods whose sources are tuned again from another init seed (off-the-shelf; none: no"
                          " off-the-shelf probes)."),
        click.option("--probe-lr", "probe_lrs", multiple=True, callback=_method_lrs, metavar="METHOD=LR",
                     help="A probe method's learning rate (repeatable; default: the first of the paper's grid)."),
        click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when present), cpu or cuda[:N]; not part of the cache key."),
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Worker processes sharing the device (several small models keep a GPU busy)."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="torch CPU threads per process (default: all cores / workers)."),
        click.option("--executor", type=click.Choice(executor_names()), default="local", show_default=True,
                     help="local: this process or --workers processes; ray: Ray tasks (pip install"
                          ' "zoo-tupate[ray]").'),
        click.option("--address", default=None,
                     help="--executor ray: the cluster (ray://head:10001, or auto on a cluster node; default:"
                          " a local Ray instance for this run)."),
        click.option("--gpus-per-job", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0,
                     show_default=True, help="--executor ray: the GPU share each job declares (0.25: four per GPU)."),
        click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=_DEFAULT_CACHE,
                     show_default=True, help="Resumable cache (finished pairs are never recomputed)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _executor(options: dict) -> Executor | None:
    """The executor the options ask for (``None``: the run's default, local), removed from ``options``."""
    from zoo_tupate.zoobuild.executors import make_executor

    name, address = options.pop("executor"), options.pop("address")
    if name == "local":
        if address:
            from zoo_tupate.core.errors import TuningError

            raise TuningError("--address needs --executor ray")
        return None
    return make_executor(name, address=address, progress=console.is_terminal)


def _config(options: dict) -> TransferConfig:
    """A :class:`TransferConfig` from the shared options (checked)."""
    import torch

    from zoo_tupate.bench.config import TransferConfig
    from zoo_tupate.core.errors import TuningError
    from zoo_tupate.tuning.device import resolve_device

    if options["threads"]:
        torch.set_num_threads(options["threads"])
    try:
        seeds = [int(s) for s in options.pop("seeds")]
    except ValueError:
        raise TuningError("--seeds must be integers") from None
    resolve_device(options["device"])  # a clear error before any work
    options["probe_methods"] = tuple(options["probe_methods"])
    offshelf = options["offshelf_methods"]
    options["offshelf_methods"] = () if offshelf == ["none"] else tuple(offshelf)
    options["targets"] = tuple(options["targets"] or ())
    config = TransferConfig(seeds=seeds, **options)
    config.check()
    return config


@command.command("transfer")
@_run_options
@click.option("--stage", "stages", multiple=True,
              type=click.Choice(["transfer", "probes", "baselines", "report"]),
              help="Run only these stages (repeatable; default: all). Stages share the cache, so separate"
                   " processes can run them side by side.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Result file (JSON) written by the report stage.")
@handle_errors
def transfer(stages: tuple[str, ...], out: Path | None, **options: object) -> None:
    """Measure source→target transfer for every ordered pair of TASKS, and every ranker's scores."""
    from zoo_tupate.bench.config import STAGES
    from zoo_tupate.bench.transfer import run
    from zoo_tupate.core.errors import TuningError

    executor = _executor(options)
    config = _config(options)
    wanted = stages or STAGES
    if "report" in wanted and out is None:
        raise TuningError("the report stage needs --out FILE")
    started = time.perf_counter()
    run(config, stages=tuple(wanted), out=out, executor=executor)
    console.print(f"done in {time.perf_counter() - started:.0f}s" + (f"; results in {out}" if out else ""))


@command.command("calibrate")
@_run_options
@click.option("--lrs", required=True, callback=_csv, help="Comma-separated learning rates to try.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@handle_errors
def calibrate_command(lrs: list[str], as_json: bool, **options: object) -> None:
    """Target-only runs at each learning rate; report which targets learn and choose the rate."""
    import json

    from rich.table import Table

    from zoo_tupate.bench.calibrate import calibrate
    from zoo_tupate.core.errors import TuningError

    try:
        rates = [float(v) for v in lrs]
    except ValueError:
        raise TuningError(f"--lrs must be numbers, got {','.join(lrs)}") from None
    executor = _executor(options)
    config = _config(options)
    result = calibrate(config, rates, executor=executor)
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True))
        return
    table = Table(title=f"target-only scores (seed {result['seed']}, {config.protocol} protocol)")
    text_column(table, "target")
    number_column(table, "majority")
    for row in result["rates"].values():
        number_column(table, f"lr {row['lr']:g}")
    for task in config.tasks:
        rate = result["majority_rate"][task]
        cells = [f"{100 * r['scores'][task]:.1f}" + ("*" if task in r["learned"] else "")
                 for r in result["rates"].values()]
        table.add_row(task, "—" if rate is None else f"{100 * rate:.1f}", *cells)
    show(console, table)
    console.print(f"* learned (> 2 SE above majority, or correlation > 2 SE). chosen lr: {result['chosen_lr']:g}")
