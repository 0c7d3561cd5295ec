"""Calibrate the gain model's 80% interval leave-one-target-out and measure its coverage (issue 24, part 6).

    python benchmarks/calibrate_gain.py [--write]

On the committed matrix the model is refitted without each held-out task (as target and source) and
predicts the held-out target's 10 pairs (features clipped, as ``suggest --explain`` predicts). The 80%
half-width is the 80th percentile of the absolute LOO residuals; its coverage is measured nested (each
target's pairs judged by the half-width of the other targets' residuals). The shipped model (no refit) is
then checked on the fresh matrix. ``--write`` stores the half-width and the measurement in
``zoo_tupate/ranking/ranker/weights.json`` (``gain.half80``, ``gain.calibration``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zoo_tupate.ranking.ranker.combined import packaged  # noqa: E402
from zoo_tupate.ranking.ranker.gain import CLIP_Z, P_BOUNDS, GainModel  # noqa: E402
from zoo_tupate.ranking.ranker.loo import gain_pairs, loo_gains  # noqa: E402

RESULTS = REPO / "docs" / "results"
WEIGHTS = REPO / "zoo_tupate" / "ranking" / "ranker" / "weights.json"


def nested_coverage(pairs: list[dict]) -> tuple[float, dict[str, float]]:
    """Share of pairs inside the 80% half-width computed from the other targets' LOO residuals."""
    inside, per_target = [], {}
    for target in sorted({p["target"] for p in pairs}):
        others = [abs(p["gain"] - p["pred"]) for p in pairs if p["target"] != target]
        half = float(np.percentile(others, 80))
        hits = [abs(p["gain"] - p["pred"]) <= half for p in pairs if p["target"] == target]
        per_target[target] = float(np.mean(hits))
        inside.extend(hits)
    return float(np.mean(inside)), per_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", type=Path, default=RESULTS / "cr11-minilm-full-probelr.json")
    parser.add_argument("--fresh", type=Path, default=RESULTS / "fresh-cpu-full.json")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    document = json.loads(args.matrix.read_text())
    pairs = loo_gains(document)
    resid = np.array([p["gain"] - p["pred"] for p in pairs])
    half80 = float(np.percentile(np.abs(resid), 80))
    coverage, per_target = nested_coverage(pairs)
    ps = np.array([p["p_helps"] for p in pairs])
    shipped = GainModel.from_json(packaged()["gain"])
    shipped.half80 = half80
    fresh_pairs = gain_pairs(json.loads(args.fresh.read_text()))
    fresh_inside = []
    for p in fresh_pairs:
        pred, _ = shipped.predict(p["features"])
        low, high = shipped.interval(pred)
        fresh_inside.append(low <= p["gain"] <= high)
    calibration = {
        "matrix": str(args.matrix.relative_to(REPO)), "pairs": len(pairs), "half80_points": round(half80, 3),
        "sigma_points": round(shipped.sigma, 3), "uncalibrated_80_half_width": round(1.2816 * shipped.sigma, 3),
        "loo_coverage80_nested": round(coverage, 3), "loo_coverage80_per_target": per_target,
        "fresh_matrix": str(args.fresh.relative_to(REPO)), "fresh_pairs": len(fresh_pairs),
        "fresh_coverage80_shipped_model": round(float(np.mean(fresh_inside)), 3),
        "loo_p_helps_range": [round(float(ps.min()), 3), round(float(ps.max()), 3)],
        "clip_z": CLIP_Z, "p_bounds": list(P_BOUNDS),
        "command": "python benchmarks/calibrate_gain.py --write",
    }
    print(json.dumps(calibration, indent=1))
    if args.write:
        weights = json.loads(WEIGHTS.read_text())
        weights["gain"]["half80"] = round(half80, 4)
        weights["gain"]["calibration"] = calibration
        WEIGHTS.write_text(json.dumps(weights, indent=2) + "\n")
        print(f"wrote {WEIGHTS}")


if __name__ == "__main__":
    main()
