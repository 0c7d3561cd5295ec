"""Cross-layout comparison: LoRA ΔW (or bias vectors) compared on the modules two checkpoints share.

Adapters of one base model often differ in their target modules (``query,value`` vs ``key,query,value``)
and rank; their vectors then land in different spaces. Here each checkpoint is split into per-module
vectors keyed by (module name, shape): LoRA ΔW layer-mean per module (exact or sketched, as in
:func:`zoo_tupate.embedding.vectors.delta_from_factors`; ranks and α drop out), bias vectors layer-mean per tensor.
Two checkpoints are compared by the cosine of the concatenation over their shared keys, and the result
names those modules and the ones left out.

The index does the same on stored vectors: :func:`slice_parts` cuts a vector into the same per-module parts
by its recorded segments (:mod:`zoo_tupate.embedding.segments`), and :func:`shared_parts`/:func:`score_parts` are
the one comparison both use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoo_tupate.core.errors import IncompatibleSpace
from zoo_tupate.embedding.segments import Key, segment_keys
from zoo_tupate.embedding.space import normalize_base_model
from zoo_tupate.embedding.vectors import SKETCH_DIM, cosine, delta_from_factors, lora_modules
from zoo_tupate.readers.base import TunedParams


@dataclass
class SharedScore:
    """A cosine computed on shared modules, and which modules it used or left out."""

    score: float
    modules: list[str]
    only_first: list[str] = field(default_factory=list)
    only_second: list[str] = field(default_factory=list)


def lora_module_vectors(params: TunedParams, p: int = SKETCH_DIM) -> dict[Key, np.ndarray]:
    """Per (module, ΔW shape): the layer-mean ΔW over the layers that adapt that module."""
    by_key: dict[Key, list[tuple[np.ndarray, np.ndarray]]] = {}
    for group in params.layers.values():
        for module in lora_modules(group):
            b = group[module + ".lora_B"].astype(np.float64) * params.scaling.get(module, 1.0)
            a = group[module + ".lora_A"].astype(np.float64)
            by_key.setdefault((module, (b.shape[0], a.shape[1])), []).append((b, a))
    out = {}
    for key, pairs in by_key.items():
        b_cat = np.concatenate([b for b, _ in pairs], axis=1) / len(pairs)
        a_cat = np.concatenate([a for _, a in pairs], axis=0)
        out[key] = delta_from_factors(b_cat, a_cat, p)
    return out


def bias_vectors(params: TunedParams) -> dict[Key, np.ndarray]:
    """Per (bias tensor name, shape): the layer-mean of that bias over the layers that tune it."""
    by_key: dict[Key, list[np.ndarray]] = {}
    for group in params.layers.values():
        for name, array in group.items():
            if name.endswith("bias"):
                by_key.setdefault((name, tuple(array.shape)), []).append(array.astype(np.float64).ravel())
    return {key: np.mean(arrays, axis=0) for key, arrays in by_key.items()}


def module_vectors(params: TunedParams) -> dict[Key, np.ndarray]:
    """LoRA: ΔW per module; any other method: its bias tensors (BitFit and bias-only checkpoints)."""
    return lora_module_vectors(params) if params.method == "lora" else bias_vectors(params)


def slice_parts(vector: np.ndarray, segments: list[list]) -> dict[Key, np.ndarray]:
    """A stored vector cut into its per-module parts by its segments (views, no copies)."""
    return {key: vector[offset:offset + length] for key, (offset, length) in segment_keys(segments).items()}


def shared_parts(first: dict[Key, int], second: dict[Key, int]) -> list[Key]:
    """The keys both sides have with the same length (name, shape and, for sketches, sketch size), sorted:
    the order in which both sides' parts are concatenated."""
    return sorted(k for k in set(first) & set(second) if first[k] == second[k])


def score_parts(first: dict[Key, np.ndarray], second: dict[Key, np.ndarray]) -> SharedScore:
    """The cosine of two sets of per-module parts on the keys both have; refused when they share none."""
    shared = shared_parts({k: v.size for k, v in first.items()}, {k: v.size for k, v in second.items()})
    if not shared:
        raise IncompatibleSpace("the two checkpoints share no module with the same name and shape")
    score = cosine(np.concatenate([first[k] for k in shared]), np.concatenate([second[k] for k in shared]))
    return SharedScore(score=score, modules=[k[0] for k in shared],
                       only_first=sorted(k[0] for k in set(first) - set(shared)),
                       only_second=sorted(k[0] for k in set(second) - set(shared)))


def shared_cosine(first: TunedParams, second: TunedParams) -> SharedScore:
    """Cosine of two checkpoints on the modules both tune with the same shape (same base model required)."""
    bases = {normalize_base_model(first.base_model), normalize_base_model(second.base_model)}
    if len(bases) != 1 or "unknown" in bases:
        raise IncompatibleSpace(f"different or unknown base models ({', '.join(sorted(bases))}): "
                                "modules of different models are not comparable")
    return score_parts(module_vectors(first), module_vectors(second))
