"""The combined ranker: a weighted sum of within-target z-scored signals, with the parts kept for --explain."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from zoo_tupate.ranking.ranker.signals import SIGNALS, Signals, usable, zscores

RIDGE_LAMBDA = 1.0


@dataclass
class Scored:
    """One candidate's combined score and its parts (weight × z-score per signal)."""

    name: str
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    signals: Signals = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # signals dropped for this ranking (not known for all)


def ridge(x: np.ndarray, y: np.ndarray, lam: float = RIDGE_LAMBDA, intercept: bool = False) -> np.ndarray:
    """Ridge coefficients (an unpenalised intercept first when ``intercept``)."""
    if intercept:
        x = np.hstack([np.ones((len(x), 1)), x])
    penalty = lam * np.eye(x.shape[1])
    if intercept:
        penalty[0, 0] = 0.0
    return np.linalg.solve(x.T @ x + penalty, x.T @ y)


def fit_weights(signals: Mapping[str, Mapping[str, Signals]], measured: Mapping[str, Mapping[str, float]],
                targets: list[str], exclude: str | None = None, lam: float = RIDGE_LAMBDA) -> dict[str, float]:
    """Ranking weights fitted on ``targets`` (pairs with ``exclude`` as target or source left out).

    Ridge without intercept of the within-target z-scored measured transfer on the z-scored signals.
    """
    xs, ys = [], []
    for target in targets:
        if target == exclude:
            continue
        rows = {s: v for s, v in signals[target].items() if s not in (exclude, target) and s in measured[target]}
        if len(rows) < 2:
            continue
        z = zscores(usable(rows)[0])
        truth = np.array([measured[target][s] for s in rows], dtype=np.float64)
        if truth.std() == 0:
            continue
        ys.extend((truth - truth.mean()) / truth.std())
        xs.extend([[z[s][k] for k in SIGNALS] for s in rows])
    coef = ridge(np.array(xs), np.array(ys), lam)
    return {k: float(c) for k, c in zip(SIGNALS, coef, strict=True)}


def score(rows: Mapping[str, Signals], weights: Mapping[str, float]) -> list[Scored]:
    """Candidates scored and sorted (best first, ties by name); each row keeps its parts.

    A signal not known for every candidate is dropped for the whole ranking (no part for anyone); each row
    names the dropped signals in ``dropped``, and ``signals`` keeps what was known."""
    kept, dropped = usable(rows)
    z = zscores(kept)
    out = []
    for name, signals in rows.items():
        parts = {k: float(weights.get(k, 0.0)) * z[name][k] for k in SIGNALS if kept[name].get(k) is not None}
        out.append(Scored(name=name, score=float(sum(parts.values())), parts=parts, signals=dict(signals),
                          dropped=list(dropped)))
    out.sort(key=lambda r: (-r.score, r.name))
    return out


@lru_cache(maxsize=1)
def packaged() -> dict[str, Any]:
    """The shipped ``weights.json``: ranking weights, gain model and the measurement behind them."""
    text = resources.files("zoo_tupate.ranking.ranker").joinpath("weights.json").read_text(encoding="utf-8")
    return json.loads(text)


def packaged_weights() -> dict[str, float]:
    """The shipped ranking weights."""
    return dict(packaged()["ranking"]["weights"])
