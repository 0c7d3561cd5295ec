"""Defaults of ``suggest``, in one place (chosen from the prediction-quality measurements; see README)."""

from __future__ import annotations

#: Representation a method is compared in when ``--repr`` is not given (LoRA: ``delta`` ranks sources
#: better than ``raw``, above all across uploaders with different random initialisations).
PREFERRED_REPR: dict[str, str] = {"lora": "delta"}
#: Representation of every method not in ``PREFERRED_REPR`` (and the fallback when the preferred one
#: cannot be compared).
DEFAULT_REPR = "raw"
#: Pooling over layers.
SUGGEST_POOLING = "layer-mean"
#: Subtract the space's mean vector before cosine.
SUGGEST_CENTER = False
#: Average scores over methods.
SUGGEST_ENSEMBLE = False
SUGGEST_TOP_K = 10


def preferred_repr(method: str) -> str:
    """The representation ``method`` is compared in by default."""
    return PREFERRED_REPR.get(method, DEFAULT_REPR)


def describe_reprs() -> str:
    """The per-method default in words, e.g. ``delta for lora, raw otherwise``."""
    parts = [f"{r} for {m}" for m, r in PREFERRED_REPR.items()]
    return ", ".join([*parts, f"{DEFAULT_REPR} otherwise"])
