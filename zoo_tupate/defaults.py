"""Defaults of ``suggest``, in one place (chosen from the prediction-quality measurements; see README)."""

from __future__ import annotations

#: Representation(s) a target is compared in when ``--repr`` is not given.
SUGGEST_REPRS: tuple[str, ...] = ("raw",)
#: Pooling over layers.
SUGGEST_POOLING = "layer-mean"
#: Subtract the space's mean vector before cosine.
SUGGEST_CENTER = False
#: Average scores over methods.
SUGGEST_ENSEMBLE = False
SUGGEST_TOP_K = 10
