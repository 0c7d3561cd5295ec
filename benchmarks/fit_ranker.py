"""Fit and score the combined ranker and the gain model leave-one-target-out; optionally write weights.json.

    python benchmarks/fit_ranker.py docs/results/cr11-minilm-full-probelr.json [--write]

Prints (markdown) the LOO ranking table of the combined ranker beside the current default, DataSize and
random with paired differences, the weights of each fold, and the gain model's helps-vs-hurts AUC and
calibration. ``--write`` stores the weights fitted on every pair, with these figures, in
``zoo_tupate/ranker/weights.json``. The procedure is fixed in docs/prediction-quality-v2-prereg.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from zoo_tupate.ranking.ranker.loo import LOO_NAME, evaluate_loo, full_fit, gain_report, loo_gains
from zoo_tupate.ranking.ranker.signals import MATRIX_PREDICTIONS, SIGNALS

DEFAULT = MATRIX_PREDICTIONS["lora"]
COMPARE = [DEFAULT, "tupate/lora/delta/layer-mean/best/cos", MATRIX_PREDICTIONS["prefix"], "datasize", "random"]
WEIGHTS = Path(__file__).resolve().parents[1] / "zoo_tupate" / "ranker" / "weights.json"


def _ci(value: float, ci: list[float], digits: int) -> str:
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _diff(d: dict) -> str:
    return f"{d['diff']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--write", action="store_true", help="store the full-fit weights in the package")
    args = parser.parse_args()
    document = json.loads(args.matrix.read_text(encoding="utf-8"))
    loo = evaluate_loo(document, COMPARE)
    results = loo["results"]
    print(f"## Leave-one-target-out ranking quality ({args.matrix.name})\n")
    print("| method | targets | ρ ↓ | NDCG ↑ | Regret@1 ↓ | Regret@3 ↓ |\n|---|---|---|---|---|---|")
    for name, s in results.items():
        print(f"| `{name}` | {s['n_targets']} | {_ci(s['rho'], s['ci']['rho'], 2)} | {_ci(s['ndcg'], s['ci']['ndcg'], 1)}"
              f" | {_ci(s['regret@1'], s['ci']['regret@1'], 1)} | {_ci(s['regret@3'], s['ci']['regret@3'], 1)} |")
    print(f"\nPaired differences, `{LOO_NAME}` − other (same targets, bootstrap over targets):\n")
    print("| other | ρ | NDCG | Regret@1 | Regret@3 |\n|---|---|---|---|---|")
    for name, d in loo["paired"].items():
        print(f"| `{name}` | {_diff(d['rho'])} | {_diff(d['ndcg'])} | {_diff(d['regret@1'])} | {_diff(d['regret@3'])} |")
    print("\nWeights of each fold (fitted without the held-out task):\n")
    print("| held out | " + " | ".join(SIGNALS) + " |\n|---|" + "---|" * len(SIGNALS))
    for held, w in loo["fold_weights"].items():
        print(f"| {held} | " + " | ".join(f"{w[k]:+.3f}" for k in SIGNALS) + " |")
    pairs = loo_gains(document)
    report = gain_report(pairs)
    print("\n## Will it help? (gain model, leave-one-target-out)\n")
    print(f"- pairs: {report['pairs']}, of which {report['helps']} helped (measured mean above target-only)")
    print(f"- AUC helps-vs-hurts: {_ci(report['auc']['value'], report['auc']['ci'], 3)}")
    print(f"- AUC on the {report['auc_significant']['pairs']} pairs beyond 2 SE: "
          f"{_ci(report['auc_significant']['value'], report['auc_significant']['ci'], 3)}")
    print(f"- AUC of source size alone: {_ci(report['auc_size_alone']['value'], report['auc_size_alone']['ci'], 3)}")
    print(f"- 90% interval coverage: {report['coverage90']:.2f}; Brier: {report['brier']:.3f}; "
          f"mean |error|: {report['mae_points']:.1f} points")
    print("\n| P(helps) bin | pairs | mean P | share that helped |\n|---|---|---|---|")
    for b in report["reliability"]:
        mean_p = "—" if b["mean_p"] is None else f"{b['mean_p']:.2f}"
        helped = "—" if b["helped"] is None else f"{b['helped']:.2f}"
        print(f"| [{b['bin'][0]:.1f}, {b['bin'][1]:.1f}) | {b['pairs']} | {mean_p} | {helped} |")
    weights, model = full_fit(document)
    print("\nFull-fit weights: " + ", ".join(f"{k} {weights[k]:+.3f}" for k in SIGNALS)
          + f"; gain σ {model.sigma:.1f} points")
    if args.write:
        combined = results[LOO_NAME]
        default = results.get(DEFAULT, {})
        payload = {
            "format": "zoo-tupate/ranker-weights/v1",
            "matrix": args.matrix.name,
            "command": f"python benchmarks/fit_ranker.py {args.matrix.as_posix()} --write",
            "procedure": "docs/prediction-quality-v2-prereg.md",
            "ranking": {"signals": list(SIGNALS), "weights": weights,
                        "loo": {m: {"value": combined[m], "ci": combined["ci"][m]} for m in
                                ("rho", "ndcg", "regret@1", "regret@3")},
                        "loo_current_default": {m: default.get(m) for m in ("rho", "ndcg", "regret@1", "regret@3")},
                        "loo_paired": loo["paired"]},
            "gain": {**model.to_json(), "loo": {k: v for k, v in report.items() if k != "reliability"}},
        }
        WEIGHTS.write_text(json.dumps(payload, indent=1, default=float) + "\n", encoding="utf-8")
        print(f"\nwritten: {WEIGHTS}")
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
