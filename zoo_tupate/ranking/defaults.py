"""Defaults of ``suggest``, in one place (chosen from the prediction-quality measurements; see README)."""

from __future__ import annotations

#: Representation a method is compared in when ``--repr`` is not given (LoRA: ``delta`` ranks sources
#: better than ``raw``, above all across uploaders with different random initialisations; bottleneck:
#: AdapterHub's adapters never share a probe's initialisation, and only W_up·W_down is invariant to the
#: permutation of hidden units that separates them: docs/bottleneck.md).
PREFERRED_REPR: dict[str, str] = {"lora": "delta", "bottleneck": "delta"}
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

#: ``--ensemble`` weights per ``method/repr``: each member's NDCG gain over random's 82.6 (11 CR targets,
#: early layer-mean probes, docs/results/cr11-minilm-full-probelr.json: LoRA ΔW 87.8, prefix 87.0, LoRA raw
#: 90.0, BitFit 82.2 → below random, dropped). In-sample: the weights and their check come from one matrix
#: (docs/prediction-quality.md, "--ensemble weights").
ENSEMBLE_WEIGHTS: dict[str, float] = {"lora/delta": 5.2, "prefix/raw": 4.4, "lora/raw": 7.4, "bitfit/raw": 0.0}
#: Weight of a member no measurement covers (ia3, bottleneck, ...): the smallest measured positive one.
ENSEMBLE_UNMEASURED = 4.4


def ensemble_weight(method: str, repr_: str) -> float:
    """The ``--ensemble`` weight of one member (``method/repr``)."""
    return ENSEMBLE_WEIGHTS.get(f"{method}/{repr_}", ENSEMBLE_UNMEASURED)


def preferred_repr(method: str) -> str:
    """The representation ``method`` is compared in by default."""
    return PREFERRED_REPR.get(method, DEFAULT_REPR)


def describe_reprs() -> str:
    """The per-method default in words, e.g. ``delta for lora, raw otherwise``."""
    parts = [f"{r} for {m}" for m, r in PREFERRED_REPR.items()]
    return ", ".join([*parts, f"{DEFAULT_REPR} otherwise"])
