"""``zoo-tupate zoo build PATTERN... --base-model M``: pull what the Hub has, tune and push what is missing."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_tupate.cli.common import console, fail, handle_errors, home_from, print_json
from zoo_tupate.cli.tables import show, text_column
from zoo_tupate.zoobuild.executors import executor_names


def _methods(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    if not items:
        raise click.BadParameter("give at least one method, e.g. lora,prefix")
    return items


@click.group("zoo")
def command() -> None:
    """Build a zoo: task embeddings of catalog tasks on one base model."""


@command.command("build")
@click.argument("patterns", nargs=-1, required=True)
@click.option("--base-model", required=True, help="Base model (Hub id or local folder) the zoo is for.")
@click.option("--base-model-id", default=None, help="Identity of a local base model in embedding spaces.")
@click.option("--methods", default="lora,prefix", show_default=True, callback=_methods,
              help="Comma-separated methods (tuned: lora, bitfit, prefix, bottleneck; any method can be pulled).")
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder with one data folder per task (rte/, sst2/ ...); else the catalog's Hub dataset.")
@click.option("--push", "push_org", default=None, metavar="ORG",
              help="Publish each tuned adapter with its embedding card to ORG/<model>-<task>-<method>.")
@click.option("--private", is_flag=True, help="Create pushed repos private.")
@click.option("--executor", type=click.Choice(executor_names()), default="local", show_default=True,
              help='Where tuning jobs run: local processes, or Ray tasks (pip install "zoo-tupate[ray]").')
@click.option("--address", default=None,
              help="--executor ray: the cluster (ray://head:10001, or auto on a cluster node; default: a local"
                   " Ray instance for this build).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="--executor local: worker processes (1: tune in this process).")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="--executor ray without --address: CPUs of the local Ray instance (default: all).")
@click.option("--gpus-per-job", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0,
              show_default=True, help="On CUDA: the GPU share a tuning job declares (0.25: four per GPU).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build folder: tuned adapters and per-item state (default: <home>/builds/<model>).")
@click.option("--max-train", type=click.IntRange(min=2), default=None,
              help="Cap on each task's training rows (default: the probe recipe's, 1,000 for MiniLM).")
@click.option("--dry-run", is_flag=True, help="Print the plan and a time estimate; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan or the results as JSON on stdout.")
@click.pass_context
@handle_errors
def build_command(ctx: click.Context, patterns: tuple[str, ...], base_model: str, base_model_id: str | None,
                  methods: tuple[str, ...], data_dir: Path | None, push_org: str | None, private: bool,
                  executor: str, address: str | None, workers: int, num_cpus: int | None, gpus_per_job: float,
                  device: str, work: Path | None, max_train: int | None, dry_run: bool, as_json: bool) -> None:
    """Build the zoo of PATTERNs (catalog tasks: 'glue/*', rte) on --base-model: pull the adapters or cards
    the catalog knows for it, tune the others with the probe recipe, index them and, with --push, publish
    them. Rerunning redoes only what is missing. Exit status 1 if any item failed."""
    from zoo_tupate.core.errors import TuningError
    from zoo_tupate.store.index import Index
    from zoo_tupate.tuning.device import resolve_device
    from zoo_tupate.tuning.probe import probe_root
    from zoo_tupate.zoobuild.executors import make_executor
    from zoo_tupate.zoobuild.notes import offline_downloads, starter_overlap
    from zoo_tupate.zoobuild.plan import BuildConfig, estimate_s, plan
    from zoo_tupate.zoobuild.rates import build_rates

    if address and executor != "ray":
        raise TuningError("--address needs --executor ray")
    resolve_device(device)
    home = home_from(ctx)
    config = BuildConfig(patterns=list(patterns), base_model=base_model, work=Path(), methods=methods,
                         base_model_id=base_model_id, data_dir=data_dir, push_org=push_org, private=private,
                         device=device, gpus_per_job=gpus_per_job, max_train=max_train)
    config.work = work if work is not None else home / "builds" / config.base_short()
    items = plan(config)
    runner = make_executor(executor, workers=workers, address=address, num_cpus=num_cpus,
                           progress=console.is_terminal and not as_json)
    # the rate is measured on this machine: not for a remote Ray cluster; a dry run writes nothing
    rates = build_rates(items, config, probe_root(home), measure=address is None, write=not dry_run)
    seconds, basis = estimate_s(items, config, runner.slots if executor == "local" else (num_cpus or 1), rates)
    notes = [n for n in (starter_overlap(items, config), offline_downloads(items)) if n]
    if dry_run:
        _show_plan(items, seconds, basis, as_json, notes)
        return
    if executor == "ray":  # a missing Ray is the one thing to say, before any estimate
        from zoo_tupate.zoobuild.executors.ray import import_ray

        import_ray()
    if not as_json:
        for note in notes:
            console.print(f"[yellow]note:[/yellow] {note}")
        if any(i.steps() for i in items):
            console.print(f"estimate: about {_duration(seconds)} ({basis})")
    from zoo_tupate.zoobuild.executors.base import log_line
    from zoo_tupate.zoobuild.run import build, counts

    results = build(config, items, Index(home), runner, log=log_line, console=console,
                    progress=console.is_terminal and not as_json, job_progress=True)
    tally = counts(results)
    if as_json:
        print_json({"dry_run": False, "work": str(config.work), "counts": tally,
                    "items": [r.to_json() for r in results]})
    else:
        _show_results(results, tally)
    if tally["failed"]:
        first = next(r for r in results if r.outcome == "failed")
        more = f" (and {tally['failed'] - 1} more, see above)" if tally["failed"] > 1 else ""
        fail(f"{first.item.key}: {tally['failed']} of {len(results)} items failed: "
             f"{first.reason or first.item.problem}{more}")


def _show_plan(items: list, seconds: float, basis: str, as_json: bool, notes: list[str]) -> None:
    from rich.table import Table

    if as_json:
        print_json({"dry_run": True, "estimate_s": round(seconds, 1), "estimate_basis": basis, "notes": notes,
                    "items": [i.to_json() for i in items]})
        return
    table = Table(title=f"zoo build plan: {len(items)} item(s)")
    for column in ("task", "method", "from", "to do", "entry / push"):
        text_column(table, column)
    for i in items:
        source = f"Hub {i.repo}" if i.action == "pull" else f"tune on {i.dataset}"
        todo = "[red]cannot: " + i.problem + "[/]" if i.problem else (", ".join(i.steps()) or "nothing (done)")
        table.add_row(i.task, i.method, source, todo, i.entry + (f" -> {i.push_repo}" if i.push_repo else ""))
    show(console, table)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"estimate: about {_duration(seconds)} ({basis}). Nothing was changed (--dry-run).")


def _show_results(results: list, tally: dict[str, int]) -> None:
    from rich.table import Table

    summary = ", ".join(f"{n} {k}" for k, n in tally.items() if n or k in ("skipped", "failed"))
    table = Table(title=f"zoo build: {summary}")
    for column in ("task", "method", "pull", "tune", "index", "push", "outcome", "reason"):
        text_column(table, column)
    colours = {"done": "green", "skipped": "cyan", "failed": "red"}
    for r in results:
        cells = [f"[{colours.get(r.steps.get(s, ''), 'white')}]{r.steps.get(s, '—')}[/]"
                 for s in ("pull", "tune", "index", "push")]
        colour = "red" if r.outcome == "failed" else ("cyan" if r.outcome == "skipped" else "green")
        table.add_row(r.item.task, r.item.method, *cells, f"[{colour}]{r.outcome}[/]",
                      r.reason or r.item.problem)
    show(console, table)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
