"""How ``suggest --verify K`` shows its outcome: a table that fits 80 columns, the cost, and why rows were skipped."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from zoo_tupate.answer.verify import Verification
from zoo_tupate.cli.tables import number_column, text_column
from zoo_tupate.cli.tables import show as show_table


def verify_table(result: Verification) -> Table:
    """Verified order, similarity rank, name, proxy score, gain over target-only training and seconds."""
    table = Table(title=f"verify: top {len(result.rows)} (target-only {result.metric} {result.target_score:.4f})")
    number_column(table, "rank")
    number_column(table, "sim")
    text_column(table, "name")
    for column in ("proxy", "gain (points)", "s"):
        number_column(table, column)
    for row in result.rows:
        measured = row.proxy_score is not None
        seconds = f"{row.seconds:.0f}{'*' if row.cached else ''}" if row.seconds is not None else "-"
        table.add_row(str(row.rank), str(row.sim_rank), row.name,
                      f"{row.proxy_score:.4f}" if measured else "n/a",
                      f"{100 * row.gain:+.1f}" if row.gain is not None else "n/a", seconds if measured else "-")
    return table


def show(console: Any, result: Verification) -> None:
    """The table, the skipped rows' reasons and the total cost, on ``console``."""
    show_table(console, verify_table(result))
    for row in result.rows:
        if row.proxy_score is None:
            console.print(f"[yellow]note:[/yellow] {row.name}: not verified ({row.reason})")
    cached = sum(1 for r in result.rows if r.cached)
    measured = sum(1 for r in result.rows if r.proxy_score is not None)
    console.print(f"verify cost: {result.cost_s:.0f} s for {measured} proxy transfer(s)"
                  + (f" ({cached} cached from an earlier run, marked *)" if cached else "")
                  + f"; this run {result.wall_s:.0f} s. gain = (proxy {result.metric} − target-only "
                  f"{result.metric}) × 100, in points like --explain and the transfer matrix; same rows, recipe "
                  "and seeds as the target's probe.")
    console.print("[yellow]note:[/yellow] measured on the 11 CR tasks, the proxy gain did not track real transfer "
                  "(Spearman 0.03 over 33 pairs; the verified top pick vs a random one of the same top 3: "
                  "Regret@1 −4.49 [−11.0, +0.54] points, not separated from chance): treat it as a smoke test of "
                  "the source's weights, not as a ranking.")
