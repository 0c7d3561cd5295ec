"""What a user should expect from the starter zoo: leave-one-target-out ranking quality of its cards.

For each of the 11 CR tasks as the target, the other 10 starter cards are ranked by cosine with the
target's own starter card — exactly what ``suggest --target <that task's data> --base-model
sentence-transformers/all-MiniLM-L6-v2`` computes, since a target's probe is tuned with the cards' recipe
(tests/test_starter.py checks that the probe reproduces the card) — and the order is scored against the
measured transfer matrix (5 seeds, docs/results/cr11-minilm-full.json) with ρ, NDCG and Regret@k, 95%
bootstrap intervals over targets and paired differences with random and DataSize.

    python benchmarks/starter_quality.py [docs/results/cr11-minilm-full.json] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zoo_tupate.cards.cardfile import read_card, read_document  # noqa: E402
from zoo_tupate.ranking.defaults import ensemble_weight  # noqa: E402
from zoo_tupate.ranking.evaluate import METRICS, bootstrap_ci, evaluate  # noqa: E402
from zoo_tupate.store.starter import STARTER_TASKS, starter_cards  # noqa: E402

#: The rankings a user gets: suggest's default per method, and --ensemble.
VIEWS = {"starter/lora-delta": ("lora", "delta"), "starter/prefix": ("prefix", "raw"),
         "starter/lora-raw": ("lora", "raw")}
CATALOG_TO_TASK = {v: k for k, v in STARTER_TASKS.items()}


def card_vectors() -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """``{task: {(method, repr): vector}}`` of the packaged starter cards."""
    out = {}
    for card in starter_cards():
        task = CATALOG_TO_TASK[read_document(card)["extra"]["task"]]
        out[task] = {(e.method, e.repr): e.vector for e in read_card(card)}
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def predictions(vectors: dict[str, dict[tuple[str, str], np.ndarray]]) -> dict[str, dict[str, dict[str, float]]]:
    """Scores of every view and the default ensemble (ΔW and prefix, weighted as ``suggest --ensemble``)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, key in VIEWS.items():
        out[name] = {t: {s: cosine(vectors[t][key], vectors[s][key]) for s in vectors if s != t} for t in vectors}
    weights = {("lora", "delta"): ensemble_weight("lora", "delta"), ("prefix", "raw"): ensemble_weight("prefix", "raw")}
    total = sum(weights.values())
    out["starter/ensemble"] = {
        t: {s: sum(w * cosine(vectors[t][k], vectors[s][k]) for k, w in weights.items()) / total
            for s in vectors if s != t} for t in vectors}
    return out


def paired(results: dict, a: str, b: str, n_boot: int = 1000) -> dict[str, dict[str, float | list[float]]]:
    """Mean per-target difference a − b and its 95% paired bootstrap interval, per metric."""
    targets = sorted(set(results[a]["per_target"]) & set(results[b]["per_target"]))
    out = {}
    for metric in METRICS:
        diffs = [results[a]["per_target"][t][metric] - results[b]["per_target"][t][metric] for t in targets]
        out[metric] = {"diff": float(np.mean(diffs)), "ci": bootstrap_ci(diffs, n_boot)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("matrix", nargs="?", type=Path, default=REPO / "docs" / "results" / "cr11-minilm-full.json")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    document = json.loads(args.matrix.read_text(encoding="utf-8"))
    vectors = card_vectors()
    missing = sorted(set(document["measured"]) - set(vectors))
    if missing:
        sys.exit(f"error: {args.matrix}: no starter card for target(s) {', '.join(missing)}")
    document["predictions"] = {**predictions(vectors), "datasize": document["predictions"]["datasize"]}
    names = [*VIEWS, "starter/ensemble", "datasize", "random"]
    results = evaluate(document, methods=names)
    print(f"starter zoo, leave-one-target-out against {args.matrix.name} "
          f"({len(document.get('seeds', []))} seeds; 95% bootstrap over targets)")
    print(f"{'method':22s} {'n':>3s} " + " ".join(f"{m:>22s}" for m in METRICS))
    for name in names:
        r = results[name]
        cells = [f"{r[m]:6.2f} [{r['ci'][m][0]:6.2f},{r['ci'][m][1]:6.2f}]" for m in METRICS]
        print(f"{name:22s} {r['n_targets']:3d} " + " ".join(f"{c:>22s}" for c in cells))
    report = {"matrix": str(args.matrix.relative_to(REPO)) if args.matrix.is_relative_to(REPO) else str(args.matrix),
              "results": {n: {k: v for k, v in results[n].items() if k != "per_target"} for n in names},
              "per_target": {n: results[n]["per_target"] for n in names}, "paired": {}}
    print("\npaired differences (method − other; ρ and regret: lower is better; NDCG: higher is better)")
    for name in [*VIEWS, "starter/ensemble"]:
        for other in ("random", "datasize"):
            diff = results[name]["vs_random"] if other == "random" else paired(results, name, other)
            report["paired"][f"{name} - {other}"] = diff
            print(f"{name:22s} − {other:9s} " + "  ".join(
                f"{m} {d['diff']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]" for m, d in diff.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
