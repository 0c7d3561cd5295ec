"""Will a source help? Predicted gain over target-only training (points), its uncertainty and P(helps).

Points: 100 × the target's validation metric (accuracy; STS-B: the Pearson–Spearman mean), the unit of
the transfer matrix and of ``suggest --verify``'s gain column. Standardised features are clipped to
±:data:`CLIP_Z` (a probe far outside the fitted range — e.g. a user's dataset against its own task's card —
is not extrapolated linearly), the interval is the leave-one-target-out calibrated 80% interval when the
model records one, and P(helps) stays within :data:`P_BOUNDS` (110 fitted pairs cannot justify certainty).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo_tupate.ranking.ranker.combined import RIDGE_LAMBDA, ridge
from zoo_tupate.ranking.ranker.signals import SIGNALS, Signals

GAIN_FEATURES: tuple[str, ...] = (*SIGNALS, "target_quality")
#: Half-width of the reported interval in σ (90%), for models without a calibrated interval.
Z90 = 1.645
#: Half-width of an 80% interval in σ (the uncalibrated fallback of :meth:`GainModel.interval`).
Z80 = 1.2816
#: Standardised features are clipped to ±CLIP_Z before the linear model sees them.
CLIP_Z = 2.5
#: P(helps) is reported within these bounds.
P_BOUNDS = (0.05, 0.95)


@dataclass
class GainModel:
    """Standardisation, ridge coefficients (intercept first) and the residual σ, all in points."""

    mean: list[float]
    std: list[float]
    coef: list[float]
    sigma: float
    half80: float | None = None  # calibrated half-width of the 80% interval (points), from LOO residuals

    def predict(self, features: Mapping[str, float | None]) -> tuple[float, float]:
        """(predicted gain in points, P(helps)); a missing feature sits at the training mean, every
        standardised feature is clipped to ±CLIP_Z, P(helps) to P_BOUNDS."""
        x = [float(np.clip((float(features[k]) - m) / s, -CLIP_Z, CLIP_Z)) if features.get(k) is not None and s > 0
             else 0.0 for k, m, s in zip(GAIN_FEATURES, self.mean, self.std, strict=True)]
        pred = self.coef[0] + float(np.dot(self.coef[1:], x))
        scale = self.half80 / Z80 if self.half80 else self.sigma
        return pred, float(np.clip(p_helps(pred, scale), *P_BOUNDS))

    def interval(self, pred: float) -> tuple[float, float]:
        """The 80% interval of a prediction (calibrated half-width when recorded, else Z80·σ)."""
        half = self.half80 if self.half80 else Z80 * self.sigma
        return pred - half, pred + half

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"features": list(GAIN_FEATURES), "mean": self.mean, "std": self.std, "coef": self.coef,
                "sigma": self.sigma, **({"half80": self.half80} if self.half80 else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GainModel:
        """Read :meth:`to_json`'s dict."""
        return cls(mean=list(data["mean"]), std=list(data["std"]), coef=list(data["coef"]),
                   sigma=float(data["sigma"]), half80=data.get("half80"))


def p_helps(pred: float, sigma: float) -> float:
    """Φ(pred / σ): the probability that the true gain is above 0."""
    if sigma <= 0:
        return 1.0 if pred > 0 else 0.0
    return 0.5 * (1.0 + math.erf(pred / sigma / math.sqrt(2.0)))


def pair_features(signals: Signals, target_quality: float | None) -> dict[str, float | None]:
    """The gain model's features of one pair: the raw signals plus the target's own probe quality."""
    return {**{k: signals.get(k) for k in SIGNALS}, "target_quality": target_quality}


def fit_gain(pairs: list[tuple[dict[str, float | None], float]], lam: float = RIDGE_LAMBDA) -> GainModel:
    """Fit on (features, gain in points) pairs; missing features are set to the column mean."""
    raw = np.array([[np.nan if f.get(k) is None else float(f[k]) for k in GAIN_FEATURES] for f, _ in pairs])
    mean = np.nanmean(raw, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    filled = np.where(np.isnan(raw), mean, raw)
    std = filled.std(axis=0)
    x = np.where(std > 0, (filled - mean) / np.where(std > 0, std, 1.0), 0.0)
    y = np.array([g for _, g in pairs], dtype=np.float64)
    coef = ridge(x, y, lam, intercept=True)
    resid = y - (coef[0] + x @ coef[1:])
    return GainModel(mean=mean.tolist(), std=std.tolist(), coef=coef.tolist(), sigma=float(resid.std()))
