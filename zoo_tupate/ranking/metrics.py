"""Ranking quality metrics against measured transfer (used by ``eval``).

Given, for one target, the measured score after transfer from each candidate source and a predicted
order of those sources (best first):

- ρ: the 1-based position of the truly best source in the predicted order (lower is better).
- NDCG: DCG of the predicted order / DCG of the ideal order × 100, relevance of a source = its measured
  score minus the lowest measured score among the candidates, linear gain, discount log2(position + 1).
- Regret@k: (best score − best score among the top k predicted) / best score × 100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _check(measured: Mapping[str, float], predicted: Sequence[str]) -> None:
    if not predicted:
        raise ValueError("empty predicted ranking")
    missing = [s for s in predicted if s not in measured]
    if missing:
        raise ValueError(f"no measured score for {missing}")
    if len(set(predicted)) != len(predicted):
        raise ValueError("predicted ranking repeats a source")


def rho(measured: Mapping[str, float], predicted: Sequence[str]) -> int:
    """1-based rank of the truly best source in ``predicted`` (ties: the best-placed of the tied)."""
    _check(measured, predicted)
    best = max(measured[s] for s in predicted)
    return min(i + 1 for i, s in enumerate(predicted) if measured[s] == best)


def dcg(relevances: Sequence[float]) -> float:
    """Σ rel_i / log2(i + 1) over 1-based positions i."""
    return sum(rel / math.log2(i + 2) for i, rel in enumerate(relevances))


def ndcg(measured: Mapping[str, float], predicted: Sequence[str]) -> float:
    """NDCG ×100 with relevance = measured − min(measured); 100 when all candidates score the same."""
    _check(measured, predicted)
    low = min(measured[s] for s in predicted)
    rel = [measured[s] - low for s in predicted]
    ideal = dcg(sorted(rel, reverse=True))
    return 100.0 if ideal == 0 else 100.0 * dcg(rel) / ideal


def regret_at(measured: Mapping[str, float], predicted: Sequence[str], k: int) -> float:
    """(best − best among the top k predicted) / best × 100."""
    _check(measured, predicted)
    if k < 1:
        raise ValueError("k must be at least 1")
    best = max(measured[s] for s in predicted)
    top = max(measured[s] for s in predicted[:k])
    if best == 0:
        return 0.0 if top == best else math.inf
    return 100.0 * (best - top) / abs(best)
