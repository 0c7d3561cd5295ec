"""Quality v3: score the pre-registered candidates LOO and apply the rule that picks the default.

Procedure fixed in docs/prediction-quality-v3-prereg.md. Candidates: ``datasize``, the leave-target-out
source ``prior``, the reliable ``embedding`` (independent probes of ``benchmarks/reliability_probes.py``,
``--recipe``/``--view``/``--k``), ``prior+embedding`` and ``size+embedding`` (equal-weight within-target
z-scores); reference rows: the matrix's own current default, the default-recipe embedding, random. Per
matrix: means over targets, paired differences against DataSize (95% bootstrap over targets), goals.

    python benchmarks/quality_v3.py --recipe default --view "delta/layer-mean (product default)" \\
        --out docs/results/quality-v3.json [--decide]

``--decide`` writes the rule's winner and its measurement to ``zoo_tupate/ranking/ranker/default.json`` (the one
file the product's default order is read from).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from reliability import VIEWS, averaged, complete_seeds, layer_view, load_recipe  # noqa: E402

from zoo_tupate.ranking.evaluate import (  # noqa: E402
    METRICS,
    bootstrap_ci,
    expected_random,
    measured_scores,
    predicted_order,
    target_metrics,
)

RESULTS = REPO / "docs" / "results"
LOWER = {"rho": True, "ndcg": False, "regret@1": True, "regret@3": True}
CURRENT_DEFAULT = "tupate/lora/delta/layer-mean/early/cos"
DEFAULT_VIEW = "delta/layer-mean (product default)"
CANDIDATES = ("datasize", "prior", "embedding", "prior+embedding", "size+embedding")
Scores = dict[str, float]


def zscore(scores: Scores) -> Scores:
    values = np.array(list(scores.values()), dtype=np.float64)
    std = float(values.std())
    return {k: (v - float(values.mean())) / std if std > 0 else 0.0 for k, v in scores.items()}


def source_prior(document: dict, held_out: str) -> Scores:
    """Mean within-target z-score of each source's measured transfer over the targets other than
    ``held_out`` and itself, with ``held_out`` dropped as a source everywhere."""
    measured = measured_scores(document)
    sums: dict[str, list[float]] = {}
    for target, row in measured.items():
        if target == held_out:
            continue
        for source, z in zscore({s: v for s, v in row.items() if s != held_out}).items():
            sums.setdefault(source, []).append(z)
    return {s: float(np.mean(v)) for s, v in sums.items()}


def choose(curve_file: Path) -> dict:
    """Prereg §2: the highest test-retest at ≤ 3× the default's probe time, on ≥ 3 complete independent probe
    sets of all 11 tasks (ties: the cheaper); today's default view when nothing beats it."""
    curve = json.loads(curve_file.read_text())
    default = next(p for p in curve if p["recipe"] == "default" and p["view"] == DEFAULT_VIEW)
    eligible = [p for p in curve if p["cost"] <= 3.0 and p["sets"] >= 3 and p["tasks"] == 11 and not p.get("predicted")]
    best = max(eligible, key=lambda p: (p["test_retest"], -p["cost"]))
    return best if best["test_retest"] > default["test_retest"] else default


def embedding_sets(work: Path, recipe: str, view: str, k: int, layers: list[int] | None = None) -> list[dict[str, Scores]]:
    """One ``{target: {source: similarity}}`` per probe set (k-subsets of the complete seeds when k > 1)."""
    _, by_seed = load_recipe(work / recipe)
    seeds = complete_seeds(by_seed)
    fn = layer_view(layers) if layers else VIEWS[view]
    if k == 1:
        return [fn(by_seed[s]) for s in seeds]
    return [fn(averaged(by_seed, group)) for group in itertools.combinations(seeds, k)]


def _metrics(row: Scores, sources: list[str], scores: Scores) -> dict[str, float]:
    return target_metrics(row, predicted_order(scores, sources))


def _over_sets(row: Scores, target: str, sets: list[dict[str, Scores]], combine: Scores | None = None) -> dict[str, float]:
    """Mean over probe sets of the metrics of the embedding (plus ``combine``, equal-weight z-scores)."""
    sources = sorted(row)
    values = []
    for scores in sets:
        emb = {s: scores[target][s] for s in sources}
        if combine is not None:
            ze, zc = zscore(emb), zscore(combine)
            emb = {s: ze[s] + zc[s] for s in sources}
        values.append(_metrics(row, sources, emb))
    return {m: float(np.mean([v[m] for v in values])) for m in METRICS}


def per_target(document: dict, prior_doc: dict, embeddings: list[dict[str, Scores]],
               reference: list[dict[str, Scores]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{target: {ranking: {metric: value}}}`` (rankings from probe sets: mean over the sets)."""
    measured = measured_scores(document)
    out = {}
    for target, row in measured.items():
        if len(set(row.values())) < 2:
            continue
        sources = sorted(row)
        size = {s: math.log10(document["predictions"]["datasize"][target][s]) for s in sources}
        prior_all = source_prior(prior_doc, target)
        prior = {s: prior_all.get(s, 0.0) for s in sources}
        result = {"random": expected_random(row), "datasize": _metrics(row, sources, size),
                  "prior": _metrics(row, sources, prior)}
        if prior_doc is not document:
            own = source_prior(document, target)
            result["prior (within-matrix LOO, info)"] = _metrics(row, sources, {s: own.get(s, 0.0) for s in sources})
        result["embedding"] = _over_sets(row, target, embeddings)
        result["prior+embedding"] = _over_sets(row, target, embeddings, prior)
        result["size+embedding"] = _over_sets(row, target, embeddings, size)
        result["embedding, default recipe and view (ref)"] = _over_sets(row, target, reference)
        current = document["predictions"].get(CURRENT_DEFAULT, {}).get(target)
        if current:
            result["matrix's own current default (ref)"] = _metrics(row, sources, {s: current[s] for s in sources})
        out[target] = result
    return out


def summarise(rows: dict[str, dict[str, dict[str, float]]]) -> dict:
    """Means, paired differences against DataSize, goals."""
    targets = sorted(rows)
    names = list(rows[targets[0]])
    means = {n: {m: float(np.mean([rows[t][n][m] for t in targets])) for m in METRICS} for n in names}
    paired = {}
    for name in names:
        if name == "datasize":
            continue
        paired[name] = {}
        for m in METRICS:
            diffs = [rows[t][name][m] - rows[t]["datasize"][m] for t in targets]
            paired[name][m] = {"diff": float(np.mean(diffs)), "ci": bootstrap_ci(diffs, 1000, 0)}
    beats = {}
    for name, diff in paired.items():
        better_ci = diff["ndcg"]["ci"][0] > 0 or diff["rho"]["ci"][1] < 0
        not_worse = means[name]["ndcg"] >= means["datasize"]["ndcg"] and means[name]["rho"] <= means["datasize"]["rho"]
        beats[name] = bool(better_ci and not_worse)
    goals = {n: {"rho<=3.2": means[n]["rho"] <= 3.2, "ndcg>=93": means[n]["ndcg"] >= 93,
                 "regret@3<=1": means[n]["regret@3"] <= 1.0, "beats_datasize": beats.get(n)} for n in names}
    return {"targets": targets, "means": means, "paired_minus_datasize": paired, "beats_datasize": beats,
            "goals": goals, "per_target": rows}


def decide(primary: dict, secondary: dict) -> dict:
    """The pre-registered rule (§4)."""
    qualified = []
    for name in CANDIDATES:
        if name == "datasize" or not primary["beats_datasize"].get(name):
            continue
        sec = secondary["means"]
        if sec[name]["rho"] <= sec["datasize"]["rho"] and sec[name]["ndcg"] >= sec["datasize"]["ndcg"]:
            qualified.append(name)
    if qualified:
        winner = max(qualified, key=lambda n: primary["means"][n]["ndcg"])
        why = f"{winner} beats DataSize on the primary matrix and is no worse on the secondary"
    else:
        winner = "datasize"
        why = ("no candidate beats DataSize on the primary matrix (paired interval excluding 0, no worse point "
               "estimates) while being no worse than DataSize on the secondary matrix")
    return {"winner": winner, "qualified": qualified, "why": why}


def table(title: str, summary: dict) -> list[str]:
    lines = [f"### {title} ({len(summary['targets'])} targets)", "",
             "| ranking | ρ ↓ | NDCG ↑ | Regret@1 ↓ | Regret@3 ↓ | − DataSize: ρ | − DataSize: NDCG | − DataSize: Regret@3 | beats DataSize |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, m in summary["means"].items():
        d = summary["paired_minus_datasize"].get(name)
        cells = [f"{d[k]['diff']:+.2f} [{d[k]['ci'][0]:+.2f}, {d[k]['ci'][1]:+.2f}]" for k in ("rho", "ndcg", "regret@3")] \
            if d else ["", "", ""]
        beat = summary["beats_datasize"].get(name)
        lines.append(f"| {name} | {m['rho']:.2f} | {m['ndcg']:.1f} | {m['regret@1']:.1f} | {m['regret@3']:.1f} | "
                     + " | ".join(cells) + f" | {'' if beat is None else 'yes' if beat else 'no'} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / ".reliability-runs")
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--view", default=DEFAULT_VIEW, choices=sorted(VIEWS))
    parser.add_argument("--k", type=int, default=1, help="probes averaged per task")
    parser.add_argument("--auto", type=Path, default=None, metavar="CURVE.json",
                        help="choose recipe/view/k by prereg §2 from reliability.py's curve file")
    parser.add_argument("--primary", type=Path, default=RESULTS / "cr11-minilm-full.json")
    parser.add_argument("--secondary", type=Path, default=RESULTS / "fresh-cpu-full.json")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--decide", action="store_true", help="write the winner to zoo_tupate/ranking/ranker/default.json")
    args = parser.parse_args()
    primary_doc = json.loads(args.primary.read_text())
    secondary_doc = json.loads(args.secondary.read_text())
    layers = None
    if args.auto:
        chosen = choose(args.auto)
        args.recipe, args.k, layers = chosen["recipe"], chosen["k"], chosen["layers"]
        args.view = chosen["base_view"] or chosen["view"]
        print(f"prereg §2 choice from {args.auto.name}: {chosen['recipe']} / {chosen['view']} (test-retest "
              f"{chosen['test_retest']:.3f}, cost {chosen['cost']:.1f}x)")
    embeddings = embedding_sets(args.work, args.recipe, args.view, args.k, layers)
    reference = embedding_sets(args.work, "default", DEFAULT_VIEW, 1)
    primary = summarise(per_target(primary_doc, primary_doc, embeddings, reference))
    secondary = summarise(per_target(secondary_doc, primary_doc, embeddings, reference))
    decision = decide(primary, secondary)
    embedding = {"recipe": args.recipe, "view": args.view, "k": args.k, "layers": layers,
                 "probe_sets": len(embeddings)}
    print(f"embedding candidate: recipe {args.recipe}, view {args.view}, k {args.k} ({len(embeddings)} probe sets)\n")
    print("\n".join(table(f"primary: {args.primary.name}", primary)))
    print()
    print("\n".join(table(f"secondary: {args.secondary.name}", secondary)))
    print(f"\ndecision: {decision['winner']} ({decision['why']}); qualified: {decision['qualified'] or 'none'}")
    result = {"prereg": "docs/prediction-quality-v3-prereg.md", "embedding": embedding,
              "primary": {"file": str(args.primary.relative_to(REPO)), **primary},
              "secondary": {"file": str(args.secondary.relative_to(REPO)), **secondary}, "decision": decision}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.decide:
        from zoo_tupate.ranking.ranker.default import DEFAULT_FILE, decision_record

        DEFAULT_FILE.write_text(json.dumps(decision_record(result, primary_doc), indent=1) + "\n")
        print(f"wrote {DEFAULT_FILE}")


if __name__ == "__main__":
    main()
