"""Leave-one-target-out fitting and scoring of the combined ranker and the gain model on a result file.

For a held-out task, every pair with it as target or as source is dropped from the fit; its own sources
are then ranked (and their gains predicted) with what the other tasks taught. See
docs/prediction-quality-v2-prereg.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zoo_tupate.ranking.evaluate import METRICS, bootstrap_ci, evaluate, measured_scores
from zoo_tupate.ranking.ranker.combined import fit_weights, score
from zoo_tupate.ranking.ranker.gain import Z90, GainModel, fit_gain, pair_features
from zoo_tupate.ranking.ranker.signals import matrix_signals, probe_margin

LOO_NAME = "combined/loo"


def loo_rankings(document: Mapping[str, Any]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(``{target: {source: LOO combined score}}``, ``{target: weights fitted without it}``)."""
    signals = matrix_signals(document)
    measured = measured_scores(document)
    targets = sorted(measured)
    scores: dict[str, dict[str, float]] = {}
    weights: dict[str, dict[str, float]] = {}
    for held in targets:
        w = fit_weights(signals, measured, targets, exclude=held)
        weights[held] = w
        rows = {s: v for s, v in signals[held].items() if s != held}
        scores[held] = {r.name: r.score for r in score(rows, w)}
    return scores, weights


def gain_pairs(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every measured pair: features, gain in points (×100) and whether it is beyond 2 standard errors."""
    signals = matrix_signals(document)
    out = []
    for target, entry in sorted(document["measured"].items()):
        only = entry["target_only"]
        tq = probe_margin(document, target)
        for source, value in sorted(entry["sources"].items()):
            se = math.sqrt(value["std"] ** 2 / value["n_seeds"] + only["std"] ** 2 / only["n_seeds"])
            gain = 100.0 * (value["mean"] - only["mean"])
            out.append({"target": target, "source": source, "gain": gain,
                        "significant": se > 0 and abs(value["mean"] - only["mean"]) > 2 * se,
                        "features": pair_features(signals[target][source], tq)})
    return out


def loo_gains(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """:func:`gain_pairs` with each pair's LOO prediction (``pred``, ``sigma``, ``p_helps``)."""
    pairs = gain_pairs(document)
    for held in sorted({p["target"] for p in pairs}):
        train = [(p["features"], p["gain"]) for p in pairs if held not in (p["target"], p["source"])]
        model = fit_gain(train)
        for p in pairs:
            if p["target"] == held:
                p["pred"], p["p_helps"] = model.predict(p["features"])
                p["sigma"] = model.sigma
    return pairs


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (ties count one half); NaN without both classes."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _target_bootstrap(pairs: list[dict[str, Any]], stat, n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95% percentile interval of ``stat(pairs)`` resampling targets with replacement."""
    targets = sorted({p["target"] for p in pairs})
    by_target = {t: [p for p in pairs if p["target"] == t] for t in targets}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        drawn = [p for i in rng.integers(0, len(targets), len(targets)) for p in by_target[targets[i]]]
        value = stat(drawn)
        if not math.isnan(value):
            values.append(value)
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values else [math.nan] * 2


def gain_report(pairs: list[dict[str, Any]], n_boot: int = 1000) -> dict[str, Any]:
    """AUC (all pairs, beyond-2-SE pairs, size alone), interval coverage, Brier score and reliability bins."""
    def auc_of(key):
        return lambda ps: auc([key(p) for p in ps], [p["gain"] > 0 for p in ps])
    p_of = auc_of(lambda p: p["p_helps"])
    size_of = auc_of(lambda p: p["features"]["size"] or 0.0)
    strong = [p for p in pairs if p["significant"]]
    inside = [abs(p["gain"] - p["pred"]) <= Z90 * p["sigma"] for p in pairs]
    bins = []
    for low, high in ((0, .2), (.2, .4), (.4, .6), (.6, .8), (.8, 1.0001)):
        chosen = [p for p in pairs if low <= p["p_helps"] < high]
        bins.append({"bin": [low, min(high, 1.0)], "pairs": len(chosen),
                     "mean_p": float(np.mean([p["p_helps"] for p in chosen])) if chosen else None,
                     "helped": float(np.mean([p["gain"] > 0 for p in chosen])) if chosen else None})
    return {
        "pairs": len(pairs), "helps": sum(p["gain"] > 0 for p in pairs),
        "auc": {"value": p_of(pairs), "ci": _target_bootstrap(pairs, p_of, n_boot)},
        "auc_significant": {"value": p_of(strong), "pairs": len(strong),
                            "ci": _target_bootstrap(strong, p_of, n_boot)},
        "auc_size_alone": {"value": size_of(pairs), "ci": _target_bootstrap(pairs, size_of, n_boot)},
        "coverage90": float(np.mean(inside)),
        "brier": float(np.mean([(p["p_helps"] - (p["gain"] > 0)) ** 2 for p in pairs])),
        "mae_points": float(np.mean([abs(p["gain"] - p["pred"]) for p in pairs])),
        "reliability": bins,
    }


def paired(results: Mapping[str, Any], a: str, b: str, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per metric, mean of (a − b) over their common targets with a bootstrap 95% interval."""
    ta, tb = results[a]["per_target"], results[b]["per_target"]
    common = sorted(set(ta) & set(tb))
    out: dict[str, Any] = {"targets": len(common)}
    for metric in METRICS:
        diffs = [ta[t][metric] - tb[t][metric] for t in common]
        out[metric] = {"diff": float(np.mean(diffs)), "ci": bootstrap_ci(diffs, n_boot, seed)}
    return out


def evaluate_loo(document: Mapping[str, Any], compare: Sequence[str], n_boot: int = 1000) -> dict[str, Any]:
    """The LOO ranking metrics of the combined ranker beside ``compare`` methods, with paired differences."""
    scores, weights = loo_rankings(document)
    doc = {**document, "predictions": {**document["predictions"], LOO_NAME: scores}}
    names = [LOO_NAME, *[c for c in compare if c in doc["predictions"] or c == "random"]]
    results = evaluate(doc, methods=names, n_boot=n_boot)
    versus = {c: paired(results, LOO_NAME, c, n_boot) for c in names[1:] if c in results}
    return {"results": results, "paired": versus, "fold_weights": weights}


def full_fit(document: Mapping[str, Any]) -> tuple[dict[str, float], GainModel]:
    """Ranking weights and gain model fitted on every pair of ``document`` (what the package ships)."""
    signals = matrix_signals(document)
    measured = measured_scores(document)
    weights = fit_weights(signals, measured, sorted(measured))
    model = fit_gain([(p["features"], p["gain"]) for p in gain_pairs(document)])
    return weights, model
