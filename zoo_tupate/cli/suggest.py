"""``zoo-tupate suggest --target T``: rank the zoo's sources for a target."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from zoo_tupate.answer.single_list import build_answer
from zoo_tupate.answer.targets import KINDS, is_dataset_folder, resolve_target
from zoo_tupate.cli.answer_view import render
from zoo_tupate.cli.common import console, handle_errors, home_from, print_json
from zoo_tupate.cli.tables import number_column, show, text_column
from zoo_tupate.core.errors import TuningError
from zoo_tupate.embedding.segments import short_modules
from zoo_tupate.embedding.space import short_space
from zoo_tupate.embedding.vectors import METHODS, POOLINGS, REPRS
from zoo_tupate.hub.deadline import using_timeout
from zoo_tupate.ranking import defaults
from zoo_tupate.ranking.crosslayout import MODES
from zoo_tupate.ranking.ranker.show import EXPLAIN_KEY, explain_option, report
from zoo_tupate.ranking.zoo import STARTER, USER, Zoo
from zoo_tupate.store.starter import STARTER_SOURCE


@click.command("suggest")
@click.option("--target", "-t", required=True,
              help="A checkpoint folder, an index entry, a Hub repo (org/name[@rev]) or a dataset.")
@click.option("--target-kind", type=click.Choice(KINDS), default="auto", show_default=True,
              help="How to read --target (auto: local path, then index entry, then Hub).")
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=defaults.SUGGEST_TOP_K, show_default=True,
              help="How many sources to list (with --by-space: per space).")
@click.option("--methods", "-m", multiple=True, type=click.Choice(METHODS + ("external",)),
              help="Only these methods (repeatable).")
@click.option("--repr", "reprs", multiple=True, type=click.Choice(REPRS),
              help=f"Representation(s) to compare in (default: {defaults.describe_reprs()}).")
@click.option("--pooling", type=click.Choice(POOLINGS), default=defaults.SUGGEST_POOLING, show_default=True)
@click.option("--ensemble/--no-ensemble", default=defaults.SUGGEST_ENSEMBLE, show_default=True,
              help="One row per source, score averaged over methods.")
@click.option("--center/--no-center", default=defaults.SUGGEST_CENTER, show_default=True,
              help="Subtract the space's mean vector before cosine.")
@click.option("--exact", is_flag=True,
              help="Scan every vector (default: large spaces are searched through sketches, best ones re-ranked exactly).")
@click.option("--cross-layout", type=click.Choice(MODES), default="auto", show_default=True,
              help="Score entries of other layouts (target modules, ranks, bias subsets) of the same base model "
                   "and method on the modules both tune: auto when the target's own space has no entry.")
@explain_option
@click.option("--base-model-id", default=None, help="Identity of a local target's base model.")
@click.option("--base-model", default=None,
              help="Dataset targets: the model (Hub id or folder) their probes are tuned on.")
@click.option("--max-train", type=click.IntRange(min=2), default=None,
              help="Dataset targets: cap on the probe's training rows.")
@click.option("--timeout", default=None, metavar="SECONDS",
              help="Hub targets: deadline for the repo's Hub traffic (default: $ZOO_TUPATE_HUB_TIMEOUT or 300).")
@click.option("--starter/--no-starter", default=True, show_default=True,
              help="Rank the built-in starter zoo too (11 CR tasks on all-MiniLM-L6-v2), beneath your entries.")
@click.option("--verify", "verify", type=click.IntRange(min=0), default=0, show_default=True, metavar="K",
              help="Dataset targets, opt-in: proxy-transfer the top K sources (LoRA, from each source's adapter, "
                   "the probe's recipe) and re-rank them by the measured gain over target-only training (points). "
                   "Measured on the 11 CR tasks it did not track real transfer: Spearman 0.03 over 33 pairs; vs a "
                   "random pick among the same top 3, Regret@1 -4.49 [-11.0, +0.54] (docs/prediction-quality-v3.md).")
@click.option("--text-columns", default=None,
              help="Dataset targets: comma-separated text column(s), e.g. review or premise,hypothesis "
                   "(default: detected).")
@click.option("--label-column", default=None, help="Dataset targets: the label column (default: detected).")
@click.option("--by-space", is_flag=True,
              help="One table per space (method/repr), each ranked by its own cosine, instead of one list per "
                   "source; with --json, the per-space rows as a list.")
@click.option("--wide", is_flag=True, help="Show full space ids and sources (wider than 80 columns).")
@click.option("--json", "as_json", is_flag=True,
              help="Print only JSON on stdout: the advice, one row per source (score, rows, similarity per "
                   "space, effect) and the per-space rows.")
@click.pass_context
@handle_errors
def command(ctx: click.Context, target: str, target_kind: str, top_k: int, methods: tuple[str, ...],
            reprs: tuple[str, ...], pooling: str, ensemble: bool, center: bool, exact: bool, cross_layout: str,
            base_model_id: str | None, base_model: str | None, max_train: int | None, timeout: str | None,
            starter: bool, verify: int, text_columns: str | None, label_column: str | None, by_space: bool,
            wide: bool, as_json: bool) -> None:
    """Rank the zoo's sources for TARGET: one list, one row per source, best first, with one sentence of
    advice (see docs/reading-the-answer.md)."""
    if verify and not (target_kind == "dataset" or target_kind == "auto" and is_dataset_folder(Path(target).expanduser())):
        raise TuningError(f"{target}: --verify needs a dataset target (a folder with train.* rows, or "
                          "--target-kind dataset for a Hub dataset id): the proxy transfers train on its rows")
    index = Zoo(home_from(ctx), starter=starter)
    probe_methods = [m for m in methods if m in ("lora", "bitfit", "prefix", "bottleneck")] or None
    columns = [c.strip() for c in text_columns.split(",") if c.strip()] if text_columns else None
    with using_timeout(timeout):
        resolved = resolve_target(index, target, kind=target_kind, reprs=reprs or REPRS, pooling=pooling,
                                  base_model_id=base_model_id, base_model=base_model, methods=probe_methods,
                                  max_train=max_train, text_columns=columns, label_column=label_column,
                                  announce=_announce, progress=True)
    per_space = by_space or ensemble
    wanted = max(top_k, verify) if per_space else max(5 * top_k, 100, verify)
    ranking = index.suggest(resolved.embeddings, exclude=resolved.exclude, top_k=wanted,
                            methods=methods or None, reprs=reprs or None, ensemble=ensemble, center=center,
                            exact=exact, cross_layout=cross_layout)
    notes = resolved.notes + ranking.notes
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    answer = None
    if per_space:
        explained = report(ctx, ranking, target, as_json and not verify, console, print_json,
                           printer=lambda t: show(console, t))
        if explained and as_json and not verify:
            return
        if not explained and not as_json:
            show(console, ranking_table(ranking, f"sources for {target}" + (" (ensemble)" if ensemble else ""),
                                        ensemble, wide))
    else:
        task = next(iter(resolved.exclude)) if resolved.kind == "entry" and len(resolved.exclude) == 1 else target
        answer = build_answer(ranking, target, top_k, zoo_of=_zoo_of, notes=notes, task=task)
        if not as_json:
            render(console, answer, explain=bool(ctx.meta.get(EXPLAIN_KEY)), wide=wide)
    checked = None
    if verify:
        from zoo_tupate.answer.verify import verify_ranking
        from zoo_tupate.cli.verify_view import show as show_verify

        checked = verify_ranking(index, target, str(base_model), ranking, verify, base_model_id=base_model_id,
                                 overrides={"max_train": max_train}, progress=True, announce=console.print,
                                 probes=resolved.probes)
        if not as_json:
            show_verify(console, checked)
    if as_json:
        if answer is not None:
            out = answer.to_json()
            print_json(out if checked is None else {**out, "verify": checked.to_json()})
            return
        rows = [row.to_json() for row in ranking]
        print_json(rows if checked is None else {"ranking": rows, "verify": checked.to_json()})


def _zoo_of(row) -> str:
    return STARTER if row.source == STARTER_SOURCE else USER


def ranking_table(ranking, title: str, ensemble: bool, wide: bool) -> Table:
    """The ranked rows as a table that fits 80 columns: spaces as ``method/repr`` (plus the layout hash when
    two spaces share those; a cross-layout row adds ``shared: <modules>``, the modules its score used), the
    ``zoo`` column only when both layers appear (``wide``: full ids, sources)."""
    rows = list(ranking)
    layers = {STARTER if row.source == STARTER_SOURCE else USER for row in rows}
    label = _space_labels({row.space for row in rows})
    table = Table(title=title + (f" ({next(iter(layers))} zoo)" if len(layers) == 1 else ""))
    number_column(table, "rank", min_width=2)
    text_column(table, "name")
    number_column(table, "score", min_width=7)
    cross = any(row.cross_layout for row in rows)  # then the cell names the modules the score used: wraps
    table.add_column("weights" if ensemble else "method/repr", no_wrap=not cross, overflow="fold")
    if len(layers) > 1:
        table.add_column("zoo")
    if wide:
        table.add_column("space", overflow="fold")
        table.add_column("source", overflow="fold")
    for i, row in enumerate(rows):
        what = " ".join(f"{m}×{w:g}" for m, w in row.weights.items()) if ensemble else label[row.space]
        if row.cross_layout:
            what += f" shared: {','.join(short_modules(row.modules))}"
        cells = [str(row.rank), row.name, f"{row.score:.4f}", what]
        if len(layers) > 1:
            cells.append(STARTER if row.source == STARTER_SOURCE else USER)
        if wide:
            cells += [row.space, row.source]
        last_of_space = (i + 1 < len(rows) and not ensemble
                         and (rows[i + 1].space, rows[i + 1].cross_layout) != (row.space, row.cross_layout))
        table.add_row(*cells, end_section=last_of_space)
    return table


def _space_labels(spaces: set[str]) -> dict[str, str]:
    """``method/repr`` per space, with the layout hash where two spaces would read the same."""
    short = {space: short_space(space) for space in spaces}
    plain = {space: label.rsplit("/", 1)[0] if label.count("/") >= 2 else label for space, label in short.items()}
    clashes = {p for p in plain.values() if list(plain.values()).count(p) > 1}
    return {space: short[space] if plain[space] in clashes else plain[space] for space in spaces}


def _announce(plans: list) -> None:
    """Say what will be tuned for a dataset target, and roughly how long it takes."""
    for plan in plans:
        if plan.cached:
            console.print(f"probe {plan.method}: cached ({plan.folder})")
            continue
        eta = f"~{plan.est_seconds:.0f} s" if plan.est_seconds is not None else "time unknown"
        rate = (f"lr {plan.lr:g} ({plan.recipe['lr_source']})" if plan.lr is not None
                else "lr searched by the probe's own validation score")
        console.print(f"probe {plan.method}: tuning {plan.rows} rows × {plan.epochs} epochs, {rate}, "
                      f"for {len(plan.spaces)} space(s), {eta} (model load, training and evaluation)")
