"""What ``suggest --verify K`` buys: Regret@1 of the top pick before and after the verify stage, and its cost.

For each CR target of the committed transfer matrix, the starter zoo is ranked for the target's data
exactly as ``suggest --target ../shared/data/cr/<task> --base-model sentence-transformers/all-MiniLM-L6-v2
--methods lora`` does (the target's own LoRA probe, suggest's default LoRA ΔW ranking), leaving the target's
own starter card out; the top K sources are then verified (a proxy transfer from each source's shipped LoRA
adapter with the probe's recipe, re-ranked by the measured gain). Regret@1 of the top pick before and after,
and Regret@3 of the similarity ranking (the best verify can reach with K = 3), are scored against the
measured 5-seed matrix with :func:`zoo_tupate.ranking.evaluate.target_metrics`.

Resumable: probes and proxy transfers are cached under ``--home`` (a rerun recomputes only what is missing),
and the output is rewritten after each target.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/verify_quality.py --targets wnli,mrpc   # a check
    python benchmarks/verify_quality.py                                                     # all 11 targets
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zoo_tupate.answer.targets import resolve_target  # noqa: E402
from zoo_tupate.answer.verify import verify_ranking  # noqa: E402
from zoo_tupate.ranking.evaluate import bootstrap_ci, measured_scores, target_metrics  # noqa: E402
from zoo_tupate.ranking.zoo import Zoo  # noqa: E402
from zoo_tupate.store.starter import STARTER_HUB_ID, STARTER_TASKS  # noqa: E402

TASK_OF = {v: k for k, v in STARTER_TASKS.items()}


def run_target(zoo: Zoo, task: str, data_dir: Path, k: int, measured: dict[str, float], device: str) -> dict:
    """Rank, verify and score one target; returns its record."""
    dataset = str(data_dir / task)
    started = time.perf_counter()
    resolved = resolve_target(zoo, dataset, kind="dataset", base_model=STARTER_HUB_ID, methods=["lora"],
                              progress=True, announce=lambda plans: [print(f"{task}: probe {p.method}: "
                                                                          f"{'cached' if p.cached else 'tuning'}")
                                                                    for p in plans])
    ranking = zoo.suggest(resolved.embeddings, exclude={STARTER_TASKS[task]}, top_k=None, methods=["lora"],
                          reprs=["delta"])
    probe_s = time.perf_counter() - started
    before = [TASK_OF[row.name] for row in ranking]
    checked = verify_ranking(zoo, dataset, STARTER_HUB_ID, ranking, k, device=device, progress=True,
                             announce=lambda text: print(f"{task}: {text}", flush=True))
    verified = [TASK_OF[row.name] for row in checked.rows]
    after = verified + [name for name in before if name not in verified]
    scores = {s: v for s, v in measured.items() if s in before}
    metrics_before, metrics_after = target_metrics(scores, before), target_metrics(scores, after)
    measured_rows = [r for r in checked.rows if r.proxy_score is not None]
    return {
        "target": task, "k": k, "metric": checked.metric, "target_only_score": checked.target_score,
        "before": before, "after": after, "top1_before": before[0], "top1_after": after[0],
        "best": max(scores, key=lambda s: scores[s]),
        "regret@1_before": metrics_before["regret@1"], "regret@1_after": metrics_after["regret@1"],
        "regret@3_before": metrics_before["regret@3"],
        "rows": [{"name": r.name, "sim_rank": r.sim_rank, "rank": r.rank, "proxy_score": r.proxy_score,
                  "gain": r.gain, "seconds": r.seconds, "cached": r.cached, "reason": r.reason,
                  "matrix_mean": scores.get(TASK_OF[r.name])} for r in checked.rows],
        "cost_s": checked.cost_s, "seconds_per_candidate": (checked.cost_s / len(measured_rows)
                                                            if measured_rows else None),
        "probe_and_rank_wall_s": round(probe_s, 1), "verify_wall_s": round(checked.wall_s, 1),
    }


def summary(records: list[dict]) -> dict:
    """Means over targets with 95% bootstrap intervals, the paired change, and the cost."""
    out: dict = {"n_targets": len(records)}
    for key in ("regret@1_before", "regret@1_after", "regret@3_before"):
        values = [r[key] for r in records]
        out[key] = {"mean": float(np.mean(values)), "ci": bootstrap_ci(values)}
    diffs = [r["regret@1_after"] - r["regret@1_before"] for r in records]
    out["regret@1_after_minus_before"] = {"mean": float(np.mean(diffs)), "ci": bootstrap_ci(diffs)}
    out["top1_changed"] = sum(r["top1_before"] != r["top1_after"] for r in records)
    seconds = [row["seconds"] for r in records for row in r["rows"] if row["seconds"] is not None]
    out["seconds_per_candidate"] = {"mean": float(np.mean(seconds)) if seconds else None,
                                    "min": min(seconds, default=None), "max": max(seconds, default=None)}
    out["verify_cost_s_total"] = round(sum(r["cost_s"] for r in records), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", type=Path, default=REPO / "docs" / "results" / "cr11-minilm-full.json")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "cr")
    parser.add_argument("--targets", default=None, help="comma-separated (default: every target of the matrix)")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--home", type=Path, default=REPO / ".bench-cache" / "verify",
                        help="zoo-tupate home holding the probe and verify caches")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="default: docs/results/verify-k<K>.json")
    args = parser.parse_args()
    document = json.loads(args.matrix.read_text(encoding="utf-8"))
    measured = measured_scores(document)
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else sorted(measured)
    unknown = [t for t in targets if t not in measured or t not in STARTER_TASKS]
    if unknown:
        sys.exit(f"error: {args.matrix}: no measured row or starter card for target(s) {', '.join(unknown)}")
    missing = [t for t in targets if not (args.data_dir / t).is_dir()]
    if missing:
        sys.exit(f"error: {args.data_dir}: no data folder for {', '.join(missing)}")
    out = args.out or REPO / "docs" / "results" / f"verify-k{args.k}.json"
    zoo = Zoo(args.home)
    records = []
    for task in targets:
        record = run_target(zoo, task, args.data_dir, args.k, measured[task], args.device)
        records.append(record)
        print(f"{task}: top-1 {record['top1_before']} -> {record['top1_after']} (best {record['best']}); Regret@1 "
              f"{record['regret@1_before']:.1f} -> {record['regret@1_after']:.1f}; verify {record['cost_s']:.0f} s",
              flush=True)
        report = {"matrix": str(args.matrix.relative_to(REPO)) if args.matrix.is_relative_to(REPO) else str(args.matrix),
                  "k": args.k, "protocol": "adapter: the target's LoRA probe recipe started from each source's "
                  "shipped LoRA adapter (new head); scored against the matrix's full-protocol 5-seed means",
                  "targets": targets, "done": [r["target"] for r in records], "summary": summary(records),
                  "per_target": {r["target"]: r for r in records}}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    s = report["summary"]
    print(f"\n{s['n_targets']} target(s), K = {args.k}: Regret@1 {s['regret@1_before']['mean']:.1f} -> "
          f"{s['regret@1_after']['mean']:.1f} (paired {s['regret@1_after_minus_before']['mean']:+.1f} "
          f"[{s['regret@1_after_minus_before']['ci'][0]:+.1f}, {s['regret@1_after_minus_before']['ci'][1]:+.1f}]); "
          f"Regret@3 of the similarity ranking {s['regret@3_before']['mean']:.1f}; top-1 changed on "
          f"{s['top1_changed']}; {s['seconds_per_candidate']['mean']:.0f} s per candidate, "
          f"{s['verify_cost_s_total']:.0f} s of proxy transfers in all; wrote {out}")


if __name__ == "__main__":
    main()
