"""Bottleneck (AdapterHub Pfeiffer) probes on MiniLM: raw tensors vs the product form W_up·W_down (``delta``).

``tune``: one bottleneck probe per CR task (the starter zoo's recipe: 1,000 rows, 200 validation rows, 2 epochs,
batch 32, max length 128, init seed 0; data seed ``--seed``; rate ``--lr``), embedded raw and delta
(layer-mean); vectors and validation scores go to ``WORK/seed<S>.npz`` / ``.json`` (resumable, task by task).
``score``: leave-one-target-out against the measured transfer matrix (as benchmarks/starter_quality.py): for
each target the other tasks' seed-0 probes are ranked by cosine with the target's probe (seed 0: the same
probes; ``--retest-seed S``: the target re-probed with data seed S, what a fresh ``suggest`` gets), scored with
ρ, NDCG and Regret@k, 95% bootstrap over targets, and paired delta − raw. Test-retest: per task, the cosine
between its seed-0 and seed-S vectors.

    python benchmarks/bottleneck_quality.py tune --data-dir ../shared/data/cr --work W --seed 0
    python benchmarks/bottleneck_quality.py score --work W --retest-seed 1 --json docs/results/bottleneck-minilm-loo.json
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

from zoo_tupate.store.starter import STARTER_MODEL, STARTER_TASKS  # noqa: E402

REPRS = ("raw", "delta")


def _tag(seed: int, init_seed: int = 0) -> str:
    return f"seed{seed}" if init_seed == 0 else f"seed{seed}-init{init_seed}"


def tune_all(data_dir: Path, work: Path, seed: int, lr: float, tasks: list[str], init_seed: int = 0) -> None:
    """Tune and embed every task's probe (skips tasks already in ``seed<S>.npz``)."""
    import torch

    from zoo_tupate import embed
    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.recipes import Recipe
    from zoo_tupate.tuning.train import tune

    torch.set_num_threads(1)
    work.mkdir(parents=True, exist_ok=True)
    npz, meta_path = work / f"{_tag(seed, init_seed)}.npz", work / f"{_tag(seed, init_seed)}.json"
    vectors = dict(np.load(npz)) if npz.exists() else {}
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    recipe = Recipe(lr=lr, lr_source="given", seed=seed, init_seed=init_seed)
    for task in tasks:
        if all(f"{task}/{r}" in vectors for r in REPRS):
            continue
        started = time.perf_counter()
        config = TuneConfig(
            dataset=str(data_dir / task), base_model=STARTER_MODEL, method="bottleneck", epochs=recipe.epochs,
            early_epochs=recipe.epochs, max_train=recipe.max_train, max_eval=recipe.max_eval, lr=recipe.lr,
            batch_size=recipe.batch_size, max_length=recipe.max_length, device="cpu", output=work / f"runs-{_tag(seed, init_seed)}" / task,
            seed=recipe.seed, init_seed=recipe.init_seed, save_best=False, cards=False,
        )
        result = tune(config)[0]
        for repr_ in REPRS:
            vectors[f"{task}/{repr_}"] = embed(result.early_dir, repr=repr_, base_model_id=STARTER_MODEL).vector
        meta[task] = {"metric": result.chosen.metric, "early_metric": result.chosen.history[-1]["metric"],
                      "wall_s": round(time.perf_counter() - started, 1), "recipe": recipe.to_json()}
        np.savez(npz, **vectors)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        print(f"{task}: {meta[task]}", flush=True)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def score(work: Path, matrix: Path, retest: int | None, out: Path | None, cross_init: int | None = None) -> None:
    from zoo_tupate.ranking.evaluate import METRICS, bootstrap_ci, evaluate

    document = json.loads(matrix.read_text(encoding="utf-8"))
    base = dict(np.load(work / "seed0.npz"))
    tasks = sorted(document["measured"])
    missing = [t for t in tasks if f"{t}/raw" not in base]
    if missing:
        sys.exit(f"error: no seed-0 probe for {', '.join(missing)}")
    views: dict[str, tuple[str, dict]] = {f"bottleneck/{r}": (r, base) for r in REPRS}
    retest_vectors = dict(np.load(work / f"seed{retest}.npz")) if retest is not None else {}
    if retest is not None:
        views.update({f"bottleneck/{r}/retest{retest}": (r, retest_vectors) for r in REPRS})
    cross_vectors = dict(np.load(work / f"{_tag(0, cross_init)}.npz")) if cross_init is not None else {}
    if cross_init is not None:  # the target probe from another initialisation: a Hub zoo's situation
        views.update({f"bottleneck/{r}/init{cross_init}": (r, cross_vectors) for r in REPRS})
    predictions = {}
    for name, (repr_, targets) in views.items():
        predictions[name] = {t: {s: _cos(targets[f"{t}/{repr_}"], base[f"{s}/{repr_}"]) for s in tasks if s != t}
                             for t in tasks if f"{t}/{repr_}" in targets}
    document["predictions"] = {**predictions, "datasize": document["predictions"]["datasize"]}
    names = [*views, "datasize", "random"]
    results = evaluate(document, methods=names)
    print(f"bottleneck probes on {STARTER_MODEL}, leave-one-target-out against {matrix.name} (95% bootstrap)")
    print(f"{'ranking':28s} {'n':>3s} " + " ".join(f"{m:>22s}" for m in METRICS))
    for name in names:
        r = results[name]
        print(f"{name:28s} {r['n_targets']:3d} " + " ".join(
            f"{r[m]:6.2f} [{r['ci'][m][0]:6.2f},{r['ci'][m][1]:6.2f}]".rjust(22) for m in METRICS))
    report = {"matrix": str(matrix.relative_to(REPO)) if matrix.is_relative_to(REPO) else str(matrix),
              "command": " ".join(sys.argv), "probes": json.loads((work / "seed0.json").read_text()),
              "results": {n: {k: v for k, v in results[n].items() if k != "per_target"} for n in names},
              "per_target": {n: results[n]["per_target"] for n in names}, "paired": {}, "retest": {}}
    pairs = [("bottleneck/delta", "bottleneck/raw"), ("bottleneck/delta", "random"), ("bottleneck/raw", "random"),
             ("bottleneck/delta", "datasize"), ("bottleneck/raw", "datasize")]
    if retest is not None:
        pairs.append((f"bottleneck/delta/retest{retest}", f"bottleneck/raw/retest{retest}"))
    if cross_init is not None:
        pairs += [(f"bottleneck/delta/init{cross_init}", f"bottleneck/raw/init{cross_init}"),
                  (f"bottleneck/delta/init{cross_init}", "random"), (f"bottleneck/raw/init{cross_init}", "random")]
    print("\npaired differences (a − b; ρ and regret: lower is better; NDCG: higher is better)")
    for a, b in pairs:
        if b == "random":
            diff = results[a]["vs_random"]
        else:
            common = sorted(set(results[a]["per_target"]) & set(results[b]["per_target"]))
            diff = {}
            for metric in METRICS:
                d = [results[a]["per_target"][t][metric] - results[b]["per_target"][t][metric] for t in common]
                diff[metric] = {"diff": float(np.mean(d)), "ci": bootstrap_ci(d, 1000)}
        report["paired"][f"{a} - {b}"] = diff
        print(f"{a:28s} − {b:18s} " + "  ".join(
            f"{m} {d['diff']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]" for m, d in diff.items()))
    if retest is not None:
        print(f"\ntest-retest: cosine between each task's seed-0 and seed-{retest} probe")
        for repr_ in REPRS:
            cos = {t: _cos(base[f"{t}/{repr_}"], retest_vectors[f"{t}/{repr_}"]) for t in tasks
                   if f"{t}/{repr_}" in retest_vectors}
            # how often the retest probe's nearest seed-0 probe is its own task's
            own = [max(tasks, key=lambda s, t=t: _cos(retest_vectors[f"{t}/{repr_}"], base[f"{s}/{repr_}"])) == t
                   for t in cos]
            report["retest"][repr_] = {"cosine": cos, "mean": float(np.mean(list(cos.values()))),
                                       "own_task_nearest": int(sum(own)), "n": len(cos)}
            print(f"{repr_:6s} mean {np.mean(list(cos.values())):.3f} (min {min(cos.values()):.3f}); own task "
                  f"nearest in {sum(own)}/{len(cos)}")
    for repr_ in REPRS if cross_init is not None else ():
        cos = {t: _cos(base[f"{t}/{repr_}"], cross_vectors[f"{t}/{repr_}"]) for t in tasks
               if f"{t}/{repr_}" in cross_vectors}
        report["retest"][f"{repr_}/init{cross_init}"] = {"cosine": cos, "mean": float(np.mean(list(cos.values())))}
        print(f"{repr_:6s} same task, init seed 0 vs {cross_init}: mean cosine {np.mean(list(cos.values())):.3f}")
    if out:
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    t = sub.add_parser("tune")
    t.add_argument("--data-dir", type=Path, required=True)
    t.add_argument("--work", type=Path, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--init-seed", type=int, default=0)
    t.add_argument("--tasks", default=",".join(STARTER_TASKS))
    s = sub.add_parser("score")
    s.add_argument("--work", type=Path, required=True)
    s.add_argument("--matrix", type=Path, default=REPO / "docs" / "results" / "cr11-minilm-full.json")
    s.add_argument("--retest-seed", type=int, default=None)
    s.add_argument("--json", type=Path, default=None)
    s.add_argument("--cross-init", type=int, default=None, help="targets probed from this init seed (seed 0 data)")
    args = parser.parse_args()
    if args.step == "tune":
        tune_all(args.data_dir, args.work, args.seed, args.lr, [x for x in args.tasks.split(",") if x], args.init_seed)
    else:
        score(args.work, args.matrix, args.retest_seed, args.json, args.cross_init)


if __name__ == "__main__":
    main()
