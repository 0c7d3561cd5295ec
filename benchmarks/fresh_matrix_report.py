"""Score a fresh matrix once, as pre-registered (docs/prediction-quality-v2-prereg.md §2, §3, §5).

    python benchmarks/fresh_matrix_report.py FRESH_FULL.json [FRESH_ADAPTER.json] [--out FILE.json]

Per result file: the current default (LoRA ΔW, early, cosine), the combined ranker with the shipped weights
(no refit), DataSize, random (exact expectation) and the split-half ceiling, each with the mean over targets;
paired differences of the default against the others with 95% intervals from a bootstrap over targets and,
within each drawn target, over seeds (the measured means are recomputed from the drawn seeds; the ceiling is
resampled over targets only); the shipped gain model's helps-vs-hurts AUC; the off-the-shelf (independent
init) default beside the shared-init one; and the issue's goals, each marked met or not. Markdown on stdout,
everything in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.ranking.evaluate import METRICS, expected_random, predicted_order, target_metrics
from zoo_tupate.ranking.ranker import PACKAGED_NAME, packaged_predictions
from zoo_tupate.ranking.ranker.combined import packaged
from zoo_tupate.ranking.ranker.gain import GainModel
from zoo_tupate.ranking.ranker.loo import gain_pairs, gain_report
from zoo_tupate.ranking.ranker.signals import MATRIX_PREDICTIONS

DEFAULT = MATRIX_PREDICTIONS["lora"]
OFFSHELF = DEFAULT.replace("tupate/", "offshelf/", 1)
RANKERS = {"default": DEFAULT, "combined": PACKAGED_NAME, "datasize": "datasize", "offshelf": OFFSHELF}
LOWER_IS_BETTER = {"rho": True, "ndcg": False, "regret@1": True, "regret@3": True}
N_BOOT, SEED = 1000, 0


def measured_seeds(doc: dict[str, Any]) -> list[str]:
    """The seeds measured for every pair (a run cut short reports only these)."""
    sets = [set(v["per_seed"]) for e in doc["measured"].values() for v in e["sources"].values()]
    return sorted(set.intersection(*sets), key=int) if sets else []


def _means(entry: dict[str, Any], seeds: list[str]) -> dict[str, float]:
    return {s: float(np.mean([v["per_seed"][k] for k in seeds if k in v["per_seed"]]))
            for s, v in entry["sources"].items()}


def per_target(doc: dict[str, Any], predictions: dict[str, Any], seeds: list[str]) -> dict[str, dict[str, float]]:
    """``{target: {ranker: {metric: value}}}`` on the measured means over ``seeds`` (random: expectation)."""
    out = {}
    for target, entry in doc["measured"].items():
        measured = _means(entry, seeds)
        if len(set(measured.values())) < 2:
            continue  # no order to recover
        row = {"random": expected_random(measured)}
        for name, key in RANKERS.items():
            scores = predictions.get(key, {}).get(target)
            if scores:
                row[name] = target_metrics(measured, predicted_order(scores, measured))
        out[target] = row
    return out


def ceiling(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per target, the split-half ceiling: one half of the seeds ranks the sources for the other (mean)."""
    seeds = measured_seeds(doc)
    if len(seeds) < 2:
        return {}  # one seed: no half to rank the other (prereg §7)
    halves = [(list(a), [s for s in seeds if s not in a]) for a in combinations(seeds, len(seeds) // 2)]
    out = {}
    for target, entry in doc["measured"].items():
        values = [target_metrics(_means(entry, b), predicted_order(_means(entry, a), entry["sources"]))
                  for a, b in halves]
        out[target] = {m: float(np.mean([v[m] for v in values])) for m in METRICS} if values else {}
    return out


def paired_bootstrap(doc: dict[str, Any], predictions: dict[str, Any], ceil: dict[str, Any]) -> dict[str, Any]:
    """Default minus each other ranker per metric: mean and 95% interval over targets and seeds."""
    seeds = measured_seeds(doc)
    base = per_target(doc, predictions, seeds)
    targets = sorted(base)
    others = [o for o in ("random", "datasize", "combined", "offshelf") if any(o in base[t] for t in targets)]
    others += ["ceiling"] if ceil else []
    rng = np.random.default_rng(SEED)
    draws: dict[str, dict[str, list[float]]] = {o: {m: [] for m in METRICS} for o in others}
    for _ in range(N_BOOT):
        picked = [targets[i] for i in rng.integers(0, len(targets), len(targets))]
        seed_draw = [seeds[i] for i in rng.integers(0, len(seeds), len(seeds))]
        resampled = per_target({"measured": {t: doc["measured"][t] for t in set(picked)}}, predictions, seed_draw)
        for other in others:
            for metric in METRICS:
                diffs = []
                for t in picked:
                    row = resampled.get(t) or base[t]
                    if other == "ceiling":
                        diffs.append(base[t]["default"][metric] - ceil[t][metric])
                    elif other in row and "default" in row:
                        diffs.append(row["default"][metric] - row[other][metric])
                if diffs:
                    draws[other][metric].append(float(np.mean(diffs)))
    out = {}
    for other in others:
        out[other] = {}
        for metric in METRICS:
            point = [base[t]["default"][metric] - (ceil[t][metric] if other == "ceiling" else base[t][other][metric])
                     for t in targets if other == "ceiling" or other in base[t]]
            values = draws[other][metric]
            out[other][metric] = {"diff": float(np.mean(point)) if point else math.nan,
                                  "ci": [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
                                  if values else [math.nan, math.nan]}
    return out


def harm(doc: dict[str, Any]) -> dict[str, Any]:
    """The shipped gain model (no refit) on every measured pair of ``doc``."""
    model = GainModel.from_json(packaged()["gain"])
    pairs = gain_pairs(doc)
    for p in pairs:
        p["pred"], p["p_helps"] = model.predict(p["features"])
        p["sigma"] = model.sigma
    return gain_report(pairs, N_BOOT)


def report(path: Path) -> dict[str, Any]:
    """Every figure of one result file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    predictions = {**doc["predictions"], PACKAGED_NAME: packaged_predictions(doc)}
    seeds = measured_seeds(doc)
    rows = per_target(doc, predictions, seeds)
    ceil = ceiling(doc)
    names = [n for n in ("default", "combined", "datasize", "random", "offshelf") if any(n in r for r in rows.values())]
    means = {n: {m: float(np.mean([r[n][m] for r in rows.values() if n in r])) for m in METRICS} for n in names}
    if ceil:
        means["ceiling"] = {m: float(np.mean([ceil[t][m] for t in rows])) for m in METRICS}
    paired = paired_bootstrap(doc, predictions, ceil)
    gain = harm(doc)
    d, ds = means["default"], paired["datasize"]
    ahead = all((ds[m]["ci"][1] < 0) if LOWER_IS_BETTER[m] else (ds[m]["ci"][0] > 0) for m in METRICS)
    goals = {"rho<=3.2": d["rho"] <= 3.2, "ndcg>=93": d["ndcg"] >= 93, "regret@3<=1": d["regret@3"] <= 1.0,
             "ahead_of_datasize_every_metric_ci_excludes_0": ahead, "harm_auc>=0.8": gain["auc"]["value"] >= 0.8,
             "offshelf_within_0.5_rho": (abs(means["offshelf"]["rho"] - d["rho"]) <= 0.5) if "offshelf" in means
             else None}
    return {"file": str(path), "protocol": doc["config"].get("protocol"), "data_seed": doc["config"].get("data_seed"),
            "seeds": seeds, "targets": len(rows), "means": means, "paired_default_minus": paired,
            "harm": gain, "goals": goals, "per_target": rows, "ceiling_per_target": ceil}


def _verdict(value: bool | None) -> str:
    return "not measured" if value is None else "met" if value else "NOT met"


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [f"### {result['file']} (protocol {result['protocol']}, data seed {result['data_seed']}, seeds "
             f"{','.join(map(str, result['seeds']))}, {result['targets']} targets)", "",
             "| ranking | ρ | NDCG | Regret@1 | Regret@3 |", "|---|---|---|---|---|"]
    for name, m in result["means"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m[k]:.2f}" for k in METRICS) + " |")
    lines += ["", "| default minus | ρ | NDCG | Regret@1 | Regret@3 |", "|---|---|---|---|---|"]
    for other, diff in result["paired_default_minus"].items():
        lines.append(f"| {other} | " + " | ".join(
            f"{diff[k]['diff']:+.2f} [{diff[k]['ci'][0]:+.2f}, {diff[k]['ci'][1]:+.2f}]" for k in METRICS) + " |")
    auc = result["harm"]["auc"]
    lines += ["", f"Harm: AUC {auc['value']:.2f} [{auc['ci'][0]:.2f}, {auc['ci'][1]:.2f}] on "
              f"{result['harm']['pairs']} pairs ({result['harm']['helps']} help); 90% interval covers "
              f"{100 * result['harm']['coverage90']:.0f}%.", "",
              "Goals: " + ", ".join(f"{k} {_verdict(v)}" for k, v in result["goals"].items()), ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrices", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = [report(path) for path in args.matrices]
    for result in results:
        print("\n".join(markdown(result)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
