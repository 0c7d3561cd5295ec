"""Leave-one-out evaluation of the rankers against measured transfer (``zoo-tupate eval``).

For each target, the candidates are the other tasks with a measured transfer score (mean over seeds);
each method orders them by its score (ties: by name), and :mod:`zoo_tupate.ranking.metrics` scores the order:
ρ (rank of the truly best source), NDCG, Regret@1 and Regret@3. A target never ranks itself. The
per-target values are averaged over targets; 95% confidence intervals come from a bootstrap over
targets. ``random`` is the exact expectation of a uniformly random order; each method also gets its paired
difference from it (``vs_random``, bootstrap over the same targets).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from zoo_tupate.ranking import metrics

METRICS: tuple[str, ...] = ("rho", "ndcg", "regret@1", "regret@3")
RANDOM = "random"


def measured_scores(document: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{target: {source: mean measured score}}`` from a result document."""
    return {t: {s: float(v["mean"]) for s, v in entry.get("sources", {}).items()}
            for t, entry in document["measured"].items()}


def predicted_order(scores: Mapping[str, float], candidates: Iterable[str]) -> list[str]:
    """Candidates by descending score, ties broken by name."""
    return sorted(candidates, key=lambda s: (-scores[s], s))


def target_metrics(measured: Mapping[str, float], order: Sequence[str]) -> dict[str, float]:
    """ρ, NDCG, Regret@1 and Regret@3 of one predicted order."""
    return {
        "rho": float(metrics.rho(measured, order)),
        "ndcg": metrics.ndcg(measured, order),
        "regret@1": metrics.regret_at(measured, order, 1),
        "regret@3": metrics.regret_at(measured, order, min(3, len(order))),
    }


def expected_random(measured: Mapping[str, float]) -> dict[str, float]:
    """The exact expected metrics of a uniformly random order of ``measured``'s sources."""
    values = sorted(measured.values())
    n = len(values)
    best = values[-1]
    tied = sum(1 for v in values if v == best)
    low = values[0]
    rel = [v - low for v in values]
    discounts = sum(1.0 / math.log2(i + 2) for i in range(n))
    ideal = metrics.dcg(sorted(rel, reverse=True))
    ndcg = 100.0 if ideal == 0 else 100.0 * (sum(rel) / n) * discounts / ideal
    out = {"rho": (n + 1) / (tied + 1), "ndcg": ndcg}
    for k in (1, 3):
        kk = min(k, n)
        # P(the top-k subset's best is the i-th smallest value) = C(i-1, k-1) / C(n, k)
        expected_top = sum(values[i] * math.comb(i, kk - 1) for i in range(n)) / math.comb(n, kk)
        out[f"regret@{k}"] = 0.0 if best == 0 and expected_top == best else 100.0 * (best - expected_top) / abs(best)
    return out


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean of ``values`` (resampled with replacement)."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) == 0:
        return [math.nan, math.nan]
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(n_boot, len(data)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def select(names: Iterable[str], patterns: Sequence[str] | None) -> list[str]:
    """Names matching any of ``patterns`` (exact names or shell-style globs), in the document's order."""
    names = list(names)
    if not patterns:
        return names
    return [n for n in names if any(n == p or fnmatch.fnmatchcase(n, p) for p in patterns)]


def constant_targets(document: Mapping[str, Any]) -> list[str]:
    """Targets whose measured sources all score the same (no order to recover: every method scores ρ=1)."""
    return sorted(t for t, scores in measured_scores(document).items() if len(set(scores.values())) == 1)


def evaluate(document: Mapping[str, Any], methods: Sequence[str] | None = None, n_boot: int = 1000,
             seed: int = 0, skip_constant: bool = True) -> dict[str, dict[str, Any]]:
    """``{method: {"rho", "ndcg", "regret@1", "regret@3", "ci", "per_target", "n_targets"}}``.

    A target counts for a method when at least two of its measured sources have a score from it;
    with ``skip_constant``, targets whose sources all measure the same (see :func:`constant_targets`) are
    left out, since every ranking is then perfect.
    """
    measured = measured_scores(document)
    skipped = set(constant_targets(document)) if skip_constant else set()
    names = select([*document.get("predictions", {}), RANDOM], methods)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        per_target: dict[str, dict[str, Any]] = {}
        for target in sorted(set(measured) - skipped):
            truth = {s: v for s, v in measured[target].items() if s != target}
            if name == RANDOM:
                if len(truth) >= 2:
                    per_target[target] = {**expected_random(truth), "n_sources": len(truth)}
                continue
            scores = document["predictions"][name].get(target, {})
            candidates = [s for s in truth if s in scores and s != target]
            if len(candidates) < 2:
                continue
            order = predicted_order(scores, candidates)
            row: dict[str, Any] = target_metrics({s: truth[s] for s in candidates}, order)
            row.update({"n_sources": len(candidates), "top3": order[:3]})
            per_target[target] = row
        if not per_target:
            continue
        summary: dict[str, Any] = {"n_targets": len(per_target), "skipped_constant": sorted(skipped)}
        summary["ci"] = {}
        for metric in METRICS:
            values = [row[metric] for row in per_target.values()]
            summary[metric] = float(np.mean(values))
            summary["ci"][metric] = bootstrap_ci(values, n_boot, seed)
        summary["per_target"] = per_target
        out[name] = summary
    _add_paired_random(out, measured, skipped, n_boot, seed)
    return out


def _add_paired_random(out: dict[str, dict[str, Any]], measured: dict[str, dict[str, float]], skipped: set[str],
                       n_boot: int, seed: int) -> None:
    """Each method's mean difference from the random expectation on the same targets, with a paired
    bootstrap 95% interval (``vs_random``; negative ρ/regret and positive NDCG differences favour the method)."""
    random_rows = {t: expected_random({s: v for s, v in scores.items() if s != t})
                   for t, scores in measured.items() if t not in skipped and len(scores) >= 2}
    for name, summary in out.items():
        if name == RANDOM:
            continue
        targets = [t for t in summary["per_target"] if t in random_rows]
        if not targets:
            continue
        summary["vs_random"] = {}
        for metric in METRICS:
            diffs = [summary["per_target"][t][metric] - random_rows[t][metric] for t in targets]
            summary["vs_random"][metric] = {"diff": float(np.mean(diffs)), "ci": bootstrap_ci(diffs, n_boot, seed)}
