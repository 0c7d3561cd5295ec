"""``suggest``'s view of the combined ranker: ``--explain`` (per-source parts and gain) and the help verdict."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from zoo_tupate.ranking.ranker.product import FITTED_BASE, Explained, explain, fitted_for, verdict
from zoo_tupate.ranking.ranker.signals import SIGNALS, family_of, task_key
from zoo_tupate.ranking.result import Ranking

EXPLAIN_KEY = "explain"


def explain_option(func: Any) -> Any:
    """The ``--explain`` flag; stored in ``ctx.meta`` so the command's signature does not change."""
    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta[EXPLAIN_KEY] = value
        return value
    return click.option("--explain", is_flag=True, expose_value=False, callback=remember,
                        help="One block per source: its similarity in every space, training rows, the predicted "
                             "effect in points (100 × the target's metric, as --verify and the matrix) with its "
                             "calibrated 80% interval and P(helps), and the combined ranker's parts (LoRA ΔW, "
                             "prefix, size, probe quality, family).")(func)


def _target_name(target: str) -> str | None:
    """The target's task name when it is a known task (its last path part), for the family signal."""
    name = task_key(target.rstrip("/"))
    return name if family_of(name) else None


def table(rows: list[Explained], title: str) -> Table:
    """The explained rows: rank, name, score, one column per signal's part, gain [80%], P(helps)."""
    out = Table(title=title)
    for column in ("rank", "name", "score", *SIGNALS, "gain [80%] (points)", "P(helps)", "rows"):
        out.add_column(column, justify="left" if column in ("name", "rows") else "right")
    for i, row in enumerate(rows, 1):
        parts = [f"{row.parts[k]:+.2f}" if k in row.parts else "n/a" for k in SIGNALS]
        out.add_row(str(i), row.name, f"{row.score:+.2f}", *parts,
                    f"{row.gain:+.1f} [{row.gain_low:+.1f}, {row.gain_high:+.1f}]", f"{row.p_helps:.2f}",
                    ",".join(row.rows))
    return out


def report(ctx: click.Context, ranking: Ranking, target: str, as_json: bool, console: Any,
           print_json: Any, printer: Any = None) -> bool:
    """Print the help verdict (always, as a note) and, under ``--explain``, the explained rows.

    Returns True when it printed the ranking itself (``--explain``), so the caller stops there.
    """
    fitted = fitted_for(ranking)
    if not fitted and not ctx.meta.get(EXPLAIN_KEY):
        return False  # the gain model says nothing about other base models or methods
    rows = explain(ranking, target_name=_target_name(target))
    sentence = verdict(rows) if fitted else None
    if sentence:
        console.print(f"[yellow]note:[/yellow] {sentence}")
    if not ctx.meta.get(EXPLAIN_KEY):
        return False
    if not fitted:
        console.print(f"[yellow]note:[/yellow] the combined ranker and gain model were fitted on {FITTED_BASE} "
                      "LoRA/prefix probes of 11 CR tasks; for this zoo they are an extrapolation")
    if as_json:
        print_json([row.to_json() for row in rows])
        return True
    (printer or console.print)(table(rows, f"sources for {target}: combined ranker, opt-in (suggest's default order is "
                              "by cosine; see docs/prediction-quality.md)"))
    dropped = rows[0].dropped if rows else []
    if dropped:
        lacking = {k: sorted(r.name for r in rows if r.signals.get(k) is None) for k in dropped}
        console.print("[yellow]note:[/yellow] dropped for this ranking (not known for every source): " + "; ".join(
            f"{k} (missing for {', '.join(v)})" for k, v in lacking.items()))
    console.print("parts: weight × z-score of the signal among these sources (n/a: not known for this source); "
                  "gain: predicted change of the target's validation score over target-only training, "
                  "×100 (points: accuracy, or Pearson–Spearman for regression), with an 80% interval calibrated "
                  "leave-one-target-out (measured coverage in docs/prediction-quality-v3.md)")
    return True
