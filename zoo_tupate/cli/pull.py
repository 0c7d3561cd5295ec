"""``zoo-tupate pull PATTERN...``: fetch adapters or embedding cards from the Hub and index them."""

from __future__ import annotations

import click
from rich.table import Table

from zoo_tupate.cli.common import console, fail, handle_errors, home_from, print_json
from zoo_tupate.cli.tables import show, text_column
from zoo_tupate.embedding.vectors import METHODS, POOLINGS
from zoo_tupate.store.index import Index


@click.command("pull")
@click.argument("patterns", nargs=-1, required=True)
@click.option("--base-model", default=None, help="Base model whose adapters to pull (catalog tasks, --search).")
@click.option("--methods", "-m", multiple=True, type=click.Choice(METHODS),
              help="Only adapters of these methods from the catalog and --search (repeatable).")
@click.option("--revision", default=None, help="Branch, tag or commit for repos without their own @revision.")
@click.option("--search", is_flag=True, help="Also search the Hub for PEFT adapters of --base-model; shows them first.")
@click.option("--jobs", "-j", type=click.IntRange(min=1, max=32), default=4, show_default=True,
              help="Repos fetched in parallel.")
@click.option("--repr", "repr_", type=click.Choice(["raw", "delta", "both"]), default="both", show_default=True,
              help="Representations to index (delta only applies to LoRA).")
@click.option("--pooling", type=click.Choice(POOLINGS), default="layer-mean", show_default=True)
@click.option("--force", is_flag=True, help="Re-index repos already indexed at this commit; index degenerate ones.")
@click.option("--timeout", default=None, metavar="SECONDS",
              help="Deadline for each repo's Hub traffic (default: $ZOO_TUPATE_HUB_TIMEOUT or 300; 0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the per-repo results as JSON on stdout.")
@click.pass_context
@handle_errors
def command(ctx: click.Context, patterns: tuple[str, ...], base_model: str | None, methods: tuple[str, ...],
            revision: str | None, search: bool, jobs: int, repr_: str, pooling: str, force: bool,
            timeout: str | None, as_json: bool) -> None:
    """Pull PATTERNs into the index: catalog tasks (glue/*, rte), AdapterHub ids (nli/rte@ukp) or Hub repos
    (org/name[@rev], hub:org/name[@rev]). Only adapter files are downloaded; entries are named by repo id.
    A repo already indexed at the same commit is not downloaded again. Exit status 1 if any repo failed."""
    from zoo_tupate.hub import pull
    from zoo_tupate.hub.deadline import using_timeout

    index = Index(home_from(ctx))
    reprs = ("raw", "delta") if repr_ == "both" else (repr_,)
    with using_timeout(timeout):
        results = pull(patterns, index, base_model=base_model, methods=methods or None, revision=revision,
                       search=search, jobs=jobs, progress=True, reprs=reprs, pooling=pooling, force=force,
                       console=console)
    if as_json:
        print_json([r.to_json() for r in results])
    else:
        outcomes = [r.outcome for r in results]
        counts = ", ".join(f"{outcomes.count(o)} {o}" for o in ("indexed", "unchanged", "failed") if o in outcomes)
        table = Table(title=f"pulled {len(results)} repo(s): {counts}" if counts else "pulled 0 repos")
        for column in ("repo", "revision", "outcome", "reason"):
            text_column(table, column)
        colours = {"indexed": "green", "unchanged": "cyan", "failed": "red"}
        for r in results:
            rev = (r.revision or "main") + (f" ({r.sha[:12]})" if r.sha else "")
            reason = (r.reason or "").removeprefix(f"{r.repo}: ").removeprefix(f"hub:{r.repo}: ")
            table.add_row(r.repo, rev, f"[{colours[r.outcome]}]{r.outcome}[/]", reason)
        show(console, table)
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        more = f" (and {len(failed) - 1} more, see above)" if len(failed) > 1 else ""
        fail(f"{len(failed)} of {len(results)} repos failed: {failed[0].reason}{more}")
