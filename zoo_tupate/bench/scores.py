"""Ranking scores from task vectors: cosines of a target with its candidate sources, and their averages."""

from __future__ import annotations

import numpy as np

from zoo_tupate.ranking.space_search import cosine_scores

Scores = dict[str, dict[str, float]]  # target -> source -> score


def pair_scores(target_vecs: dict[str, np.ndarray], source_vecs: dict[str, np.ndarray], center: bool) -> Scores:
    """Cosine of each target with every other task's source vector; ``center`` subtracts the mean of the
    target and its candidates first (the same rule as ``suggest --center``)."""
    out: Scores = {}
    for target, tvec in target_vecs.items():
        names = [s for s in source_vecs if s != target]
        if not names:
            continue
        matrix = np.vstack([source_vecs[s] for s in names])
        mean = np.vstack([matrix, tvec[None, :]]).mean(axis=0) if center else None
        scores = cosine_scores(tvec, matrix, mean)
        out[target] = {s: float(v) for s, v in zip(names, scores, strict=True)}
    return out


def average_scores(parts: list[Scores]) -> Scores:
    """The mean score per (target, source) over ``parts`` (only pairs every part scores)."""
    out: Scores = {}
    for target in parts[0]:
        if not all(target in p for p in parts):
            continue
        common = set.intersection(*(set(p[target]) for p in parts))
        out[target] = {s: float(np.mean([p[target][s] for p in parts])) for s in sorted(common)}
    return out
