"""Print the figures of docs/prediction-quality.md from a ``bench transfer`` result file (markdown).

    python benchmarks/analyze_transfer.py docs/results/cr11-minilm-full.json [--methods PATTERN ...]

Sections: the measured matrix (mean over seeds, ×100); how much signal it carries (transfers that beat the
target-only score, split-half agreement of the sources' order between disjoint seed sets, and how well one
half of the seeds ranks the sources for the other: the ceiling any predictor faces); the ranking table of
the chosen methods (``zoo-tupate eval``'s numbers with paired differences from random); and paired
comparisons of the TuPaTE options (each variant against the one that differs only in that option).
"""

from __future__ import annotations

import argparse
import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.ranking.evaluate import (
    METRICS,
    bootstrap_ci,
    evaluate,
    expected_random,
    predicted_order,
    target_metrics,
)

MAIN_METHODS = [
    "tupate/lora/raw/layer-mean/best/cos", "tupate/lora/raw/layer-mean/best/centered",
    "tupate/lora/delta/layer-mean/best/cos", "tupate/lora/delta/layer-mean/best/centered",
    "tupate/bitfit/raw/layer-mean/best/cos", "tupate/prefix/raw/layer-mean/best/cos",
    "tupate/ensemble/raw/layer-mean/best/cos", "tupate/ensemble-delta/mixed/layer-mean/best/cos",
    "tupate/lora/raw/layer-mean/early/cos", "tupate/lora/delta/layer-mean/early/cos",
    "offshelf/lora/raw/layer-mean/best/cos", "offshelf/lora/delta/layer-mean/best/cos",
    "offshelf/prefix/raw/layer-mean/best/cos", "offshelf/ensemble-delta/mixed/layer-mean/best/cos",
    "textemb", "taskemb", "datasize", "random",
]
OPTIONS = {"sim": ("cos", "centered"), "pooling": ("layer-mean", "flatten"), "checkpoint": ("early", "best"),
           "repr": ("raw", "delta")}
PARTS = ("condition", "method", "repr", "pooling", "checkpoint", "sim")


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def measured_table(doc: dict[str, Any]) -> list[str]:
    tasks = doc["tasks"]
    lines = ["| target (val rows) | majority | target-only | " + " | ".join(tasks) + " | best source |",
             "|---|---|---|" + "---|" * len(tasks) + "---|"]
    for target in tasks:
        entry = doc["measured"][target]
        only = entry["target_only"]
        cells = []
        for source in tasks:
            cells.append("·" if source == target else pct(entry["sources"][source]["mean"]))
        best = max(entry["sources"], key=lambda s: entry["sources"][s]["mean"])
        lines.append(f"| {target} ({entry['validation_rows']}) | {pct(entry['majority_rate'])} | "
                     f"{pct(only['mean'])} ± {pct(only['std'])} | " + " | ".join(cells) + f" | {best} |")
    return lines


def probe_table(doc: dict[str, Any]) -> list[str]:
    """Each same-init probe's best validation score on its own task (×100), beside the majority rate."""
    quality = doc.get("probe_quality") or {}
    groups = [g for g in quality if g.startswith("init0/")]
    if not groups:
        return ["(no probe records in this file)"]
    lrs = {g: sorted({v["lr"] for v in quality[g].values() if v.get("lr")}) for g in groups}
    head = " | ".join(f"{g.split('/')[1]} (lr {', '.join(f'{x:g}' for x in lrs[g])})" for g in groups)
    lines = [f"| task | majority | {head} |", "|---|---|" + "---|" * len(groups)]
    for task in doc["tasks"]:
        cells = [pct(quality[g].get(task, {}).get("best")) for g in groups]
        lines.append(f"| {task} | {pct(doc['measured'][task]['majority_rate'])} | " + " | ".join(cells) + " |")
    return lines


def _mean(values: dict[str, float], seeds: list[str]) -> float:
    return float(np.mean([values[s] for s in seeds]))


def signal(doc: dict[str, Any]) -> list[str]:
    """Beats of the target-only score, and split-half agreement of the sources' order per target."""
    seeds = [str(s) for s in doc["seeds"]]
    halves = [(list(a), [s for s in seeds if s not in a]) for a in combinations(seeds, len(seeds) // 2)]
    lines = ["| target | sources beating target-only by > 2 SE | hurting by > 2 SE | range of source means |"
             " split-half ρ_s of the sources' order | split-half: same best source | ceiling ρ (half ranks half) |",
             "|---|---|---|---|---|---|---|"]
    totals = {"beat": 0, "hurt": 0, "pairs": 0}
    ceiling_all = []
    for target in doc["tasks"]:
        entry = doc["measured"][target]
        only = entry["target_only"]
        n = only["n_seeds"]
        beat = hurt = 0
        for s in entry["sources"].values():
            se = math.sqrt((s["std"] ** 2) / s["n_seeds"] + (only["std"] ** 2) / n)
            diff = s["mean"] - only["mean"]
            beat += se > 0 and diff > 2 * se
            hurt += se > 0 and diff < -2 * se
        totals["beat"] += beat
        totals["hurt"] += hurt
        totals["pairs"] += len(entry["sources"])
        sources = sorted(entry["sources"])
        corrs, same_best, ceilings = [], [], []
        for a, b in halves:
            ma = {s: _mean(entry["sources"][s]["per_seed"], a) for s in sources}
            mb = {s: _mean(entry["sources"][s]["per_seed"], b) for s in sources}
            ra, rb = _ranks([ma[s] for s in sources]), _ranks([mb[s] for s in sources])
            corrs.append(float(np.corrcoef(ra, rb)[0, 1]) if np.std(ra) and np.std(rb) else float("nan"))
            same_best.append(max(ma, key=ma.get) == max(mb, key=mb.get))
            ceilings.append(target_metrics(mb, predicted_order(ma, sources))["rho"])
        ceiling_all.append(float(np.mean(ceilings)))
        means = [v["mean"] for v in entry["sources"].values()]
        lines.append(f"| {target} | {beat} | {hurt} | {pct(max(means) - min(means))} | "
                     f"{np.nanmean(corrs):+.2f} | {sum(same_best)}/{len(halves)} | {np.mean(ceilings):.2f} |")
    lines.append("")
    lines.append(f"Over all {totals['pairs']} ordered pairs: {totals['beat']} sources beat the target-only score by"
                 f" more than 2 standard errors of the difference, {totals['hurt']} hurt by more. Ceiling ρ over"
                 f" targets: {np.mean(ceiling_all):.2f} (a perfect predictor of one half of the seeds, scored"
                 f" against the other half; random {np.mean([expected_random(_means(doc, t))['rho'] for t in doc['tasks']]):.2f}).")
    return lines


def _means(doc: dict[str, Any], target: str) -> dict[str, float]:
    return {s: v["mean"] for s, v in doc["measured"][target]["sources"].items()}


def _ranks(values: list[float]) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def method_table(scored: dict[str, Any], methods: list[str]) -> list[str]:
    lines = ["| method | targets | ρ ↓ | NDCG ↑ | Regret@1 ↓ | Regret@3 ↓ | ρ − random | NDCG − random |",
             "|---|---|---|---|---|---|---|---|"]
    for name in methods:
        if name not in scored:
            continue
        row = scored[name]
        cells = [f"{row[m]:.2f} [{row['ci'][m][0]:.2f}, {row['ci'][m][1]:.2f}]" if m == "rho" else
                 f"{row[m]:.1f} [{row['ci'][m][0]:.1f}, {row['ci'][m][1]:.1f}]" for m in METRICS]
        paired = row.get("vs_random")
        diffs = ["—", "—"] if not paired else [
            f"{paired[m]['diff']:+.2f} [{paired[m]['ci'][0]:+.2f}, {paired[m]['ci'][1]:+.2f}]" for m in ("rho", "ndcg")]
        lines.append(f"| `{name}` | {row['n_targets']} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
    return lines


def option_table(scored: dict[str, Any]) -> list[str]:
    """Each option's A→B change, paired over the variants that differ only in it."""
    names = [n for n in scored if len(n.split("/")) == 6]
    lines = ["| condition: option A → B | pairs | A: ρ / NDCG / Regret@3 | B: ρ / NDCG / Regret@3 |"
             " B better (NDCG) | per-target ρ difference B − A |",
             "|---|---|---|---|---|---|"]
    for condition in ("tupate", "offshelf"):
        for option, (a_value, b_value) in OPTIONS.items():
            index = PARTS.index(option)
            pairs = []
            for name in names:
                parts = name.split("/")
                if parts[0] != condition or parts[index] != a_value:
                    continue
                other = "/".join(parts[:index] + [b_value] + parts[index + 1:])
                if option == "repr" and parts[1] != "lora":
                    continue
                if other in scored:
                    pairs.append((name, other))
            if not pairs:
                continue
            a = {m: np.mean([scored[x][m] for x, _ in pairs]) for m in METRICS}
            b = {m: np.mean([scored[y][m] for _, y in pairs]) for m in METRICS}
            better = sum(scored[y]["ndcg"] > scored[x]["ndcg"] for x, y in pairs)
            diffs = []
            for x, y in pairs:
                common = sorted(set(scored[x]["per_target"]) & set(scored[y]["per_target"]))
                diffs.extend(scored[y]["per_target"][t]["rho"] - scored[x]["per_target"][t]["rho"] for t in common)
            lo, hi = bootstrap_ci(diffs)
            lines.append(f"| {condition}: {option} {a_value} → {b_value} | {len(pairs)} | "
                         f"{a['rho']:.2f} / {a['ndcg']:.1f} / {a['regret@3']:.1f} | "
                         f"{b['rho']:.2f} / {b['ndcg']:.1f} / {b['regret@3']:.1f} | {better}/{len(pairs)} | "
                         f"{np.mean(diffs):+.2f} [{lo:+.2f}, {hi:+.2f}] |")
    single = [n for n in names if n.startswith("tupate/") and n.split("/")[1] in ("lora", "bitfit", "prefix")
              and n.split("/")[2] == "raw"]
    ensemble = [n for n in names if n.startswith("tupate/ensemble/")]
    for label, group in (("tupate single methods (raw)", single), ("tupate ensemble (raw)", ensemble)):
        lines.append(f"| {label}: mean of {len(group)} variants | — | "
                     + " / ".join(f"{np.mean([scored[n][m] for n in group]):.2f}" for m in ("rho", "ndcg", "regret@3"))
                     + " | | | |")
    lines.append("")
    lines.append("The per-target ρ difference pools every (pair, target); its interval is a bootstrap over those"
                 " values, which are not independent (the same targets recur across pairs): read it as a summary.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--methods", nargs="*", default=MAIN_METHODS)
    args = parser.parse_args()
    doc = json.loads(args.matrix.read_text(encoding="utf-8"))
    scored = evaluate(doc)
    print(f"## {args.matrix}: {len(doc['tasks'])} tasks, seeds {doc['seeds']}\n")
    print("### Measured transfer (mean over seeds, ×100)\n")
    print("\n".join(measured_table(doc)) + "\n")
    print("### Signal in the measured matrix\n")
    print("\n".join(signal(doc)) + "\n")
    print("### How well the probes learned their own tasks (best validation score, ×100)\n")
    print("\n".join(probe_table(doc)) + "\n")
    print("### Ranking quality\n")
    print("\n".join(method_table(scored, args.methods)) + "\n")
    print("### TuPaTE options, paired\n")
    print("\n".join(option_table(scored)))


if __name__ == "__main__":
    main()
