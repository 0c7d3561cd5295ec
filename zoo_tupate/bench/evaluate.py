"""Leave-one-out evaluation of the rankers against measured transfer (``zoo-tupate eval``).

For each target, the candidates are the other tasks with a measured transfer score (mean over seeds);
each method orders them by its score (ties: by name), and :mod:`zoo_tupate.metrics` scores the order:
ρ (rank of the truly best source), NDCG, Regret@1 and Regret@3. A target never ranks itself. The
per-target values are averaged over targets; 95% confidence intervals come from a bootstrap over
targets. ``random`` is the exact expectation of a uniformly random order.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from zoo_tupate import metrics

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


def evaluate(document: Mapping[str, Any], methods: Sequence[str] | None = None, n_boot: int = 1000,
             seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{method: {"rho", "ndcg", "regret@1", "regret@3", "ci", "per_target", "n_targets"}}``.

    A target counts for a method when at least two of its measured sources have a score from it.
    """
    measured = measured_scores(document)
    names = select([*document.get("predictions", {}), RANDOM], methods)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        per_target: dict[str, dict[str, Any]] = {}
        for target in sorted(measured):
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
        summary: dict[str, Any] = {"n_targets": len(per_target)}
        summary["ci"] = {}
        for metric in METRICS:
            values = [row[metric] for row in per_target.values()]
            summary[metric] = float(np.mean(values))
            summary["ci"][metric] = bootstrap_ci(values, n_boot, seed)
        summary["per_target"] = per_target
        out[name] = summary
    return out
