"""Reliability of task embeddings: does an independent probe of the same tasks give the same ranking?

Reads the probes ``benchmarks/reliability_probes.py`` left under ``--work`` (one probe per task and seed;
data seed and init seed both set to the seed) and prints, per probe recipe:

- each probe's validation score beside its task's majority level (regression: correlation 0), its train
  loss and wall time;
- **test-retest**: for every target, the Spearman correlation between the orders of the other 10 sources
  given by two independent probe sets (every task probed at seed a vs at seed b), averaged over targets and
  over the pairs of seeds, with a 95% bootstrap interval over targets (1,000 resamples, seed 0);
- the same for post-hoc levers on the same checkpoints (no new probes): ΔW vs raw factors, layer-mean vs
  flattened layers, per-layer normalisation, centring against the zoo mean, shrunk whitening, one module,
  layers selected by their own reliability on other seeds, the average of k probes;
- each view's ranking quality against a measured transfer matrix (``--matrix``; mean over probe sets of
  ρ / NDCG, the ``eval`` metrics), so a lever that makes the embedding agree with itself but not with
  transfer is visible.

Cost is the training rows × epochs relative to the product's default probe (k probes cost k times one); the
measured wall time is reported beside it (other jobs on the shared CPU changed it several-fold).

    python benchmarks/reliability.py                       # every recipe found under .reliability-runs/
    python benchmarks/reliability.py --recipes default --plot docs/reliability-curve.png

Writes ``docs/results/reliability-<recipe>.json`` per recipe (records and per-view figures; the
checkpoints and their vectors stay under ``--work``) and ``docs/results/reliability-curve.json`` (the reliability-versus-cost points).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zoo_tupate.ranking.evaluate import bootstrap_ci, evaluate  # noqa: E402
from zoo_tupate.store.starter import STARTER_MODEL, STARTER_TASKS  # noqa: E402

TASKS = list(STARTER_TASKS)
LAYERS, MODULES = 6, 2
#: Views of one probe set: ``{task: bundle}`` -> ``{target: {source: score}}`` (``score`` higher = closer).
View = Callable[[dict[str, dict[str, np.ndarray]]], dict[str, dict[str, float]]]


# ------------------------------------------------------------------------------------------ vectors


def probe_vectors(checkpoint: Path, cache: Path) -> dict[str, np.ndarray]:
    """``raw`` (layers × 12,288 LoRA factors) and ``delta`` (layers × modules × 16,384 ΔW sketch) of a
    checkpoint, cached in ``cache`` (``vectors.npz``)."""
    if cache.is_file():
        with np.load(cache) as data:
            return {k: data[k] for k in data.files}
    from zoo_tupate.api import embed

    raw = embed(checkpoint, repr="raw", pooling="flatten", base_model_id=STARTER_MODEL).vector
    delta = embed(checkpoint, repr="delta", pooling="flatten", base_model_id=STARTER_MODEL).vector
    out = {"raw": raw.reshape(LAYERS, -1), "delta": delta.reshape(LAYERS, MODULES, -1)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def load_recipe(folder: Path) -> tuple[list[dict], dict[int, dict[str, dict[str, np.ndarray]]]]:
    """Records of one recipe's probes and ``{seed: {task: vectors}}`` of the seeds that probed every task
    (a seed cut short is reported in the records but left out of the comparisons)."""
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]
    by_seed: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    for record in records:
        cache = folder / f"{record['task']}-s{record['seed']}" / "vectors.npz"
        by_seed.setdefault(record["seed"], {})[record["task"]] = probe_vectors(Path(record["checkpoint"]), cache)
    return records, by_seed


# ------------------------------------------------------------------------------------------ views


def cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def flat_view(vector: Callable[[dict[str, np.ndarray]], np.ndarray], centre: bool = False,
              whiten: float | None = None, with_target: bool = False) -> View:
    """Cosine of ``vector(bundle)``; ``centre``: minus the mean of the target's candidate sources (the zoo;
    ``with_target``: of the sources and the target, as ``suggest --center`` computes it); ``whiten``: centred,
    then scaled by the sources' covariance shrunk towards its mean eigenvalue."""

    def view(bundles: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
        vecs = {t: vector(b).astype(np.float64).ravel() for t, b in bundles.items()}
        out = {}
        for target in vecs:
            sources = [s for s in vecs if s != target]
            if centre or whiten is not None:
                x = np.stack([vecs[s] for s in sources])
                mean = np.vstack([x, vecs[target][None, :]]).mean(axis=0) if with_target else x.mean(axis=0)
                transform = _whitener(x - mean, whiten) if whiten is not None else (lambda v: v)
                t = transform(vecs[target] - mean)
                out[target] = {s: cos(t, transform(vecs[s] - mean)) for s in sources}
            else:
                out[target] = {s: cos(vecs[target], vecs[s]) for s in sources}
        return out

    return view


def _whitener(centred: np.ndarray, shrink: float) -> Callable[[np.ndarray], np.ndarray]:
    """v -> Σ^(-1/2) v for Σ = (1 − shrink)·XᵀX/n + shrink·(mean eigenvalue)·I, in X's row space."""
    n = centred.shape[0]
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    eig = s ** 2 / n
    floor = shrink * eig.sum() / centred.shape[1] * centred.shape[1] / max(1, n)  # mean nonzero eigenvalue
    scale = 1 / np.sqrt((1 - shrink) * eig + floor)
    rest = 1 / np.sqrt(floor)

    def transform(v: np.ndarray) -> np.ndarray:
        coef = vt @ v
        return (v - vt.T @ coef) * rest + vt.T @ (coef * scale)

    return transform


def per_block_norm(blocks: np.ndarray) -> np.ndarray:
    """Every layer (and module) block scaled to unit norm, then concatenated."""
    flat = blocks.reshape(-1, blocks.shape[-1]).astype(np.float64)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat / np.where(norms > 0, norms, 1)).ravel()


def layer_view(layers: list[int], repr_: str = "delta") -> View:
    """Cosine of the per-block normalised vector of the chosen layers only."""
    return flat_view(lambda b: per_block_norm(b[repr_][layers]))


#: Views whose k-probe averages are also shown as Spearman–Brown predictions (marked, never chosen).
PREDICT_FOR = ("delta/layer-mean (product default)", "delta/layer-mean/centred")

#: The post-hoc views of one probe set (same checkpoints, no new probes).
VIEWS: dict[str, View] = {
    "delta/layer-mean (product default)": flat_view(lambda b: b["delta"].mean(axis=0)),
    "raw/layer-mean": flat_view(lambda b: b["raw"].mean(axis=0)),
    "delta/flatten": flat_view(lambda b: b["delta"]),
    "raw/flatten": flat_view(lambda b: b["raw"]),
    "delta/per-layer-norm": flat_view(lambda b: per_block_norm(b["delta"])),
    "raw/per-layer-norm": flat_view(lambda b: per_block_norm(b["raw"])),
    "delta/layer-mean/centred": flat_view(lambda b: b["delta"].mean(axis=0), centre=True),
    "delta/layer-mean/centred (suggest --center)": flat_view(lambda b: b["delta"].mean(axis=0), centre=True,
                                                              with_target=True),
    "delta/flatten/centred": flat_view(lambda b: b["delta"], centre=True),
    "delta/per-layer-norm/centred": flat_view(lambda b: per_block_norm(b["delta"]), centre=True),
    "raw/layer-mean/centred": flat_view(lambda b: b["raw"].mean(axis=0), centre=True),
    "delta/layer-mean/whitened-0.5": flat_view(lambda b: b["delta"].mean(axis=0), whiten=0.5),
    "delta/per-layer-norm/whitened-0.5": flat_view(lambda b: per_block_norm(b["delta"]), whiten=0.5),
    "delta/query-only/layer-mean": flat_view(lambda b: b["delta"][:, 0].mean(axis=0)),
    "delta/value-only/layer-mean": flat_view(lambda b: b["delta"][:, 1].mean(axis=0)),
}


# ------------------------------------------------------------------------------------------ agreement


def spearman(a: dict[str, float], b: dict[str, float]) -> float:
    keys = sorted(a)
    ra = np.argsort(np.argsort([-a[k] for k in keys], kind="stable"), kind="stable")
    rb = np.argsort(np.argsort([-b[k] for k in keys], kind="stable"), kind="stable")
    if np.std(ra) == 0 or np.std(rb) == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def test_retest(scores: list[tuple[dict, dict]], n_boot: int = 1000) -> dict:
    """Per-target Spearman between the two score sets of each pair; mean over pairs, then over targets."""
    per_target: dict[str, list[float]] = {}
    for a, b in scores:
        for target in sorted(set(a) & set(b)):
            per_target.setdefault(target, []).append(spearman(a[target], b[target]))
    means = {t: float(np.mean(v)) for t, v in per_target.items()}
    values = list(means.values())
    return {"test_retest": float(np.mean(values)) if values else None,
            "ci": bootstrap_ci(values, n_boot) if len(values) > 1 else None,
            "pairs": len(scores), "per_target": {t: round(v, 4) for t, v in means.items()}}


def averaged(by_seed: dict, seeds: tuple[int, ...]) -> dict[str, dict[str, np.ndarray]]:
    """Every task's vectors averaged over the probes of ``seeds`` (k-probe averaging)."""
    return {t: {k: np.mean([by_seed[s][t][k] for s in seeds], axis=0) for k in by_seed[seeds[0]][t]}
            for t in by_seed[seeds[0]]}


def disjoint_pairs(seeds: list[int], k: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Pairs of disjoint k-subsets of ``seeds`` (each unordered pair once)."""
    subsets = list(itertools.combinations(seeds, k))
    return [(a, b) for a, b in itertools.combinations(subsets, 2) if not set(a) & set(b)]


def quality(document: dict | None, scores: list[dict]) -> dict | None:
    """Mean over probe sets of the eval metrics of these scores against a transfer matrix."""
    if document is None or not scores or set(scores[0]) != set(TASKS):
        return None  # only on all 11 tasks: a partial run's rankings are over fewer sources
    rows = []
    for score in scores:
        doc = {**document, "predictions": {"view": {t: s for t, s in score.items() if t in document["measured"]}}}
        result = evaluate(doc, methods=["view"], n_boot=10)["view"]
        rows.append({m: result[m] for m in ("rho", "ndcg", "regret@1", "regret@3")})
    return {m: round(float(np.mean([r[m] for r in rows])), 3) for m in rows[0]}


def complete_seeds(by_seed: dict, tasks: list[str] | None = None) -> list[int]:
    """Seeds that probed every task of ``tasks`` (default: all 11)."""
    return sorted(s for s, done in by_seed.items() if set(done) >= set(tasks or TASKS))


def shared_tasks(by_seed: dict, minimum: int = 5) -> list[str]:
    """All 11 tasks when two seeds probed them all; else (a run cut short) the tasks every seed with at least
    ``minimum`` tasks probed, so a partial run still gives a test-retest (over fewer sources: reported)."""
    if len(complete_seeds(by_seed)) >= 2:
        return list(TASKS)
    sets = [set(done) for done in by_seed.values() if len(done) >= minimum]
    common = set.intersection(*sets) if len(sets) >= 2 else set()
    return [t for t in TASKS if t in common]


def analyse(name: str, records: list[dict], by_seed: dict, document: dict | None, base_time: float | None) -> dict:
    """Every figure of one recipe."""
    tasks = shared_tasks(by_seed)
    seeds = complete_seeds(by_seed, tasks)
    probe_time = float(np.mean([r["wall_s"] for r in records if r["wall_s"] is not None]))
    # cost: training rows × epochs relative to the default probe (what the time scales with); measured wall
    # times are reported too, but other jobs' load on the shared CPU changed them several-fold during the runs
    recipe = records[0]["recipe"]
    cost = recipe["max_train"] * recipe["epochs"] / (1000 * 2)
    out: dict = {"recipe": name, "seeds_complete": seeds, "tasks_compared": tasks, "probe_wall_s_mean": round(probe_time, 2),
                 "wall_vs_default_under_load": round(probe_time / base_time, 3) if base_time else None,
                 "cost_vs_default": round(cost, 3), "views": {}, "averaging": {}, "layer_selection": None}
    full = {s: {t: by_seed[s][t] for t in tasks} for s in seeds}
    pairs = list(itertools.combinations(seeds, 2))
    for view_name, view in VIEWS.items():
        per_seed = {s: view(full[s]) for s in seeds}
        rel = test_retest([(per_seed[a], per_seed[b]) for a, b in pairs])
        rel["quality"] = quality(document, list(per_seed.values()))
        rel["cost_vs_default"] = round(cost, 3)
        out["views"][view_name] = rel
    for k in range(2, len(seeds) // 2 + 1):
        for view_name in ("delta/layer-mean (product default)", "delta/layer-mean/centred", "raw/per-layer-norm"):
            view = VIEWS[view_name]
            groups = disjoint_pairs(seeds, k)
            cache: dict = {}
            for group in {g for pair in groups for g in pair}:
                cache[group] = view(averaged(full, group))
            rel = test_retest([(cache[a], cache[b]) for a, b in groups])
            rel["quality"] = quality(document, list(cache.values()))
            rel["cost_vs_default"] = round(cost * k, 3)
            out["averaging"][f"{view_name} x{k}"] = rel
    if len(seeds) >= 4:
        out["layer_selection"] = select_layers(full, seeds, document, cost)
    return out


def select_layers(full: dict, seeds: list[int], document: dict | None, cost: float) -> dict:
    """Layers chosen by their own test-retest on the first two seeds, judged on the pairs of the others."""
    choose, judge = seeds[:2], seeds[2:]
    per_layer = {}
    for layer in range(LAYERS):
        view = layer_view([layer])
        a, b = view(full[choose[0]]), view(full[choose[1]])
        per_layer[layer] = test_retest([(a, b)])["test_retest"]
    ranked = sorted(per_layer, key=lambda k: -per_layer[k])
    results = {}
    for top in (1, 2, 3):
        layers = sorted(ranked[:top])
        view = layer_view(layers)
        scores = {s: view(full[s]) for s in judge}
        rel = test_retest([(scores[a], scores[b]) for a, b in itertools.combinations(judge, 2)])
        rel["quality"] = quality(document, list(scores.values()))
        rel["cost_vs_default"] = round(cost, 3)
        results[f"top{top} layers {layers}"] = rel
    return {"chosen_on_seeds": choose, "judged_on_seeds": judge,
            "per_layer_test_retest_on_choice_seeds": {str(k): round(v, 4) for k, v in per_layer.items()},
            "results": results}


# ------------------------------------------------------------------------------------------ output


def probe_table(records: list[dict]) -> list[str]:
    lines = [f"{'task':8s} {'seed':>4s} {'score':>6s} {'major.':>6s} {'margin':>7s} {'loss first→last':>17s} {'wall s':>7s}"]
    for r in sorted(records, key=lambda r: (TASKS.index(r["task"]), r["seed"])):
        loss = f"{r['train_loss'][0]:.3f}→{r['train_loss'][-1]:.3f}" if r["train_loss"] else "(starter card)"
        wall = f"{r['wall_s']:7.1f}" if r["wall_s"] is not None else "      -"
        lines.append(f"{r['task']:8s} {r['seed']:4d} {r['score']:6.3f} {r['majority']:6.3f} "
                     f"{r['score'] - r['majority']:+7.3f} {loss:>17s} {wall}")
    return lines


def task_summary(records: list[dict]) -> dict:
    """Per task: mean score, majority level, share of probes above it, mean final train loss."""
    out = {}
    for task in TASKS:
        rows = [r for r in records if r["task"] == task]
        if rows:
            out[task] = {"probes": len(rows), "score_mean": round(float(np.mean([r["score"] for r in rows])), 4),
                         "majority": round(float(np.mean([r["majority"] for r in rows])), 4),
                         "above_majority": sum(r["score"] > r["majority"] + 0.02 for r in rows),
                         "train_loss_last": _mean([r["train_loss"][-1] for r in rows if r["train_loss"]]),
                         "wall_s_mean": _mean([r["wall_s"] for r in rows if r["wall_s"] is not None])}
    return out


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def print_rel(name: str, rel: dict) -> None:
    ci = rel["ci"] or [float("nan")] * 2
    q = rel.get("quality") or {}
    print(f"  {name:44s} {rel['test_retest']:6.3f} [{ci[0]:6.3f}, {ci[1]:6.3f}]  pairs {rel['pairs']:2d}  "
          f"cost {rel['cost_vs_default']:4.1f}x  ρ {q.get('rho', float('nan')):.2f}  NDCG {q.get('ndcg', float('nan')):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / ".reliability-runs")
    parser.add_argument("--recipes", default=None, help="comma-separated (default: every folder under --work)")
    parser.add_argument("--matrix", type=Path, default=REPO / "docs" / "results" / "cr11-minilm-full.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--plot", type=Path, default=None, help="write the reliability-versus-cost curve (PNG)")
    args = parser.parse_args()
    document = json.loads(args.matrix.read_text()) if args.matrix and args.matrix.is_file() else None
    names = args.recipes.split(",") if args.recipes else sorted(
        p.name for p in args.work.iterdir() if (p / "records.jsonl").is_file())
    if "default" in names:
        names.remove("default")
        names.insert(0, "default")
    base_time, curve = None, []
    for name in names:
        records, by_seed = load_recipe(args.work / name)
        if name == "default":
            base_time = float(np.mean([r["wall_s"] for r in records if r["wall_s"] is not None]))
        result = analyse(name, records, by_seed, document, base_time)
        result["records"] = records
        result["tasks"] = task_summary(records)
        print(f"\n== recipe {name}: {len(records)} probes, seeds compared {result['seeds_complete']} on "
              f"{len(result['tasks_compared'])} tasks, "
              f"mean probe wall {result['probe_wall_s_mean']:.1f} s under load; cost {result['cost_vs_default']:.2f}x default (rows × epochs)")
        print("\n".join("  " + line for line in probe_table(records)))
        print("  per task: " + "; ".join(f"{t} {v['score_mean']:.3f} vs {v['majority']:.3f} "
                                         f"({v['above_majority']}/{v['probes']} above +0.02)"
                                         for t, v in result["tasks"].items()))
        if len(result["seeds_complete"]) < 2:
            print("  fewer than 2 complete probe sets: no test-retest yet")
        else:
            print(f"  test-retest (per-target Spearman, mean over targets and {len(result['seeds_complete'])} "
                  "seeds' pairs, 95% bootstrap over targets); quality vs matrix: mean over probe sets")
            for view_name, rel in {**result["views"], **result["averaging"]}.items():
                print_rel(view_name, rel)
                base, _, k = view_name.rpartition(" x")
                curve.append({"recipe": name, "view": view_name, "base_view": base if k.isdigit() else view_name,
                              "k": int(k) if k.isdigit() else 1, "layers": None,
                              "sets": len(result["seeds_complete"]), "tasks": len(result["tasks_compared"]),
                              "cost": rel["cost_vs_default"], "test_retest": rel["test_retest"], "ci": rel["ci"],
                              "quality": rel["quality"]})
            if result["layer_selection"]:
                sel = result["layer_selection"]
                print(f"  layers chosen on seeds {sel['chosen_on_seeds']} (per-layer test-retest "
                      f"{sel['per_layer_test_retest_on_choice_seeds']}), judged on {sel['judged_on_seeds']}:")
                for view_name, rel in sel["results"].items():
                    print_rel(view_name, rel)
                    layers = json.loads(view_name.split(" layers ")[1])
                    curve.append({"recipe": name, "view": view_name, "base_view": None, "k": 1, "layers": layers,
                                  "sets": len(sel["judged_on_seeds"]), "tasks": len(result["tasks_compared"]),
                                  "cost": rel["cost_vs_default"], "test_retest": rel["test_retest"],
                                  "ci": rel["ci"], "quality": rel["quality"]})
        path = args.out / f"reliability-{name}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    for point in [p for p in curve if p["recipe"] == "default" and p["view"] in PREDICT_FOR and p["k"] == 1]:
        for k in (2, 3):  # Spearman–Brown: the reliability of the mean of k parallel measurements
            r = point["test_retest"]
            curve.append({**point, "view": f"{point['view']} x{k} (predicted)", "k": k, "cost": point["cost"] * k,
                          "test_retest": k * r / (1 + (k - 1) * r), "ci": None, "quality": None, "predicted": True})
    if curve:
        (args.out / "reliability-curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    if args.plot and curve:
        plot(curve, args.plot)


def plot(curve: list[dict], path: Path) -> None:
    """Test-retest (with its interval) against probe cost, one point per recipe and view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    for point in curve:
        ci = point["ci"] or [point["test_retest"]] * 2
        ax.errorbar(point["cost"], point["test_retest"], yerr=[[point["test_retest"] - ci[0]], [ci[1] - point["test_retest"]]],
                    fmt="o", ms=4, alpha=0.7, capsize=2, mfc="none" if point.get("predicted") else None)
        ax.annotate(f"{point['recipe']}: {point['view']}", (point["cost"], point["test_retest"]), fontsize=6,
                    xytext=(3, 2), textcoords="offset points")
    ax.axhline(0.85, ls="--", c="grey", lw=0.8)
    ax.axvline(3.0, ls=":", c="grey", lw=0.8)
    ax.set_xlabel("probe cost (training rows × epochs, × today's default probe); hollow: predicted, not measured")
    ax.set_ylabel("test-retest (per-target Spearman of source orders)")
    ax.set_title("Task-embedding reliability vs cost (goal: ≥ 0.85 at ≤ 3×)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
