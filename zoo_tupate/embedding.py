"""The task embedding (paper §3.2), as pure functions of tuned parameters: no I/O here.

``raw``: tensors as stored (no α/r scaling). Within a layer, tensors are flattened and concatenated in
canonical order (sorted by canonical name, e.g. ``attention.self.query.lora_A`` <
``attention.self.query.lora_B`` < ``attention.self.value.lora_A``); ``layer-mean`` averages these layer
vectors element-wise (dim = one layer's tuned parameters), ``flatten`` concatenates layers in index
order. Tuned tensors outside layers (input-level prompts; heads with ``include_heads``) are appended,
flattened, in sorted order.

``delta`` (LoRA only): per module, ΔW = (α/r)·B·A. Layer-mean of ΔW has exact low-rank factors
(B_cat = [s·B_1 … s·B_L]/L, A_cat = [A_1; …; A_L]); the vector is ΔW itself when it has at most
``SKETCH_DIM``² entries, else the two-sided Gaussian sketch S₁·ΔW·S₂ᵀ (S fixed by seed and shape,
entries N(0, 1/p)), computed from the factors without forming d×k. Ranks and alphas then share a space.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from zoo_tupate.errors import UnsupportedCheckpoint
from zoo_tupate.readers.base import TunedParams

METHODS = ("lora", "bitfit", "prefix", "prompt", "ia3", "bottleneck")
REPRS = ("raw", "delta")
POOLINGS = ("layer-mean", "flatten")
SKETCH_DIM = 128
SKETCH_SEED = 20221207


@dataclass
class Embedding:
    """A task embedding and what it was computed from."""

    vector: np.ndarray
    method: str
    repr: str
    pooling: str
    space: str
    base_model: str
    layers: list[int] = field(default_factory=list)
    degenerate: bool = False
    degenerate_reason: str | None = None
    excluded_tensors: list[str] = field(default_factory=list)
    sha256: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Length of the vector."""
        return int(self.vector.shape[0])

    def to_json(self, with_vector: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the vector only when asked)."""
        data = asdict(self)
        data.pop("vector")
        data["dim"] = self.dim
        if with_vector:
            data["vector"] = self.vector.tolist()
        return data


def layer_layout(group: dict[str, np.ndarray]) -> list[list]:
    """Canonical ``[[name, shape], ...]`` of one layer."""
    return [[name, list(group[name].shape)] for name in sorted(group)]


def check_same_layout(params: TunedParams) -> list[list]:
    """The common layer layout, or an error naming the first layer that differs."""
    layouts = {idx: layer_layout(group) for idx, group in params.layers.items()}
    if not layouts:
        return []
    first_idx = next(iter(layouts))
    for idx, layout in layouts.items():
        if layout != layouts[first_idx]:
            raise UnsupportedCheckpoint(
                f"layers {first_idx} and {idx} have different tuned tensors or shapes; "
                "layer-mean needs one layout (use --pooling flatten)"
            )
    return layouts[first_idx]


def _shared_vector(params: TunedParams) -> tuple[np.ndarray, list[list]]:
    names = sorted(params.shared)
    parts = [params.shared[n].astype(np.float32).ravel() for n in names]
    layout = [[n, list(params.shared[n].shape)] for n in names]
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), layout


def raw_vector(params: TunedParams, pooling: str) -> tuple[np.ndarray, list]:
    """The paper's embedding: concatenate within a layer, then average (or concatenate) over layers."""
    shared, shared_layout = _shared_vector(params)
    if not params.layers:
        return shared, [["shared", shared_layout]]
    if pooling == "layer-mean":
        layout = check_same_layout(params)
        # float64 running sum in layer order (what np.mean(np.stack(rows), axis=0, dtype=float64) computes,
        # without building the rows)
        sizes = [math.prod(shape) for _, shape in layout]
        total = np.zeros(sum(sizes), np.float64)
        for group in params.layers.values():
            offset = 0
            for (name, _), size in zip(layout, sizes, strict=True):
                total[offset:offset + size] += group[name].ravel()
                offset += size
        pooled = (total / len(params.layers)).astype(np.float32)
        return np.concatenate([pooled, shared]), [layout, shared_layout]
    if pooling == "flatten":
        parts, layout = [], []
        for idx, group in params.layers.items():
            parts.extend(group[n].astype(np.float32).ravel() for n in sorted(group))
            layout.append([idx, layer_layout(group)])
        return np.concatenate([*parts, shared]), [layout, shared_layout]
    raise ValueError(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")


@lru_cache(maxsize=32)
def sketch_matrix(n: int, p: int = SKETCH_DIM) -> np.ndarray:
    """The fixed Gaussian sketch (p × n, entries N(0, 1/p)) for a side of length n."""
    rng = np.random.default_rng([SKETCH_SEED, n, p])
    return (rng.standard_normal((p, n)) / np.sqrt(p)).astype(np.float64)


def lora_modules(group: dict[str, np.ndarray]) -> list[str]:
    """Module names with both LoRA factors in a layer, sorted."""
    return sorted(n[: -len(".lora_A")] for n in group if n.endswith(".lora_A") and n[:-1] + "B" in group)


def delta_from_factors(b: np.ndarray, a: np.ndarray, p: int = SKETCH_DIM) -> np.ndarray:
    """ΔW = b·a flattened when small, else its two-sided sketch S₁·b·a·S₂ᵀ (never forming d×k)."""
    d, k = b.shape[0], a.shape[1]
    if d * k <= p * p:
        return (b @ a).ravel()
    return ((sketch_matrix(d, p) @ b) @ (a @ sketch_matrix(k, p).T)).ravel()


def delta_vector(params: TunedParams, pooling: str, p: int = SKETCH_DIM) -> tuple[np.ndarray, list]:
    """LoRA ΔW per module (layer-mean of ΔW or per layer), exact or sketched; layout ignores rank and α."""
    if params.method != "lora":
        raise UnsupportedCheckpoint(f"repr 'delta' applies to LoRA only; {params.method} has no factors (use raw)")
    layers = list(params.layers.values())
    modules = lora_modules(layers[0]) if layers else []
    if not modules or any(lora_modules(g) != modules for g in layers):
        if pooling == "layer-mean":
            raise UnsupportedCheckpoint("layers target different LoRA modules; use --pooling flatten")
    scale = params.scaling

    def factors(group: dict[str, np.ndarray], module: str) -> tuple[np.ndarray, np.ndarray]:
        b = group[module + ".lora_B"].astype(np.float64)
        a = group[module + ".lora_A"].astype(np.float64)
        return b * scale.get(module, 1.0), a

    parts, layout = [], []
    if pooling == "layer-mean":
        for module in modules:
            # mean over layers of (sketched) B_l·A_l, one layer at a time: the same value as the sketch of
            # [B_1 … B_L]/L · [A_1; …; A_L], without holding every layer's factors at once
            total = None
            for group in layers:
                b, a = factors(group, module)
                part = delta_from_factors(b, a, p)
                total = part if total is None else total + part
            parts.append(total / len(layers))
            layout.append([module, [b.shape[0], a.shape[1]]])
    elif pooling == "flatten":
        for idx, group in params.layers.items():
            for module in lora_modules(group):
                b, a = factors(group, module)
                parts.append(delta_from_factors(b, a, p))
                layout.append([idx, module, [b.shape[0], a.shape[1]]])
    else:
        raise ValueError(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")
    shared, shared_layout = _shared_vector(params)
    return np.concatenate([*parts, shared]).astype(np.float32), [layout, shared_layout, p]


def degenerate_reason(params: TunedParams) -> str | None:
    """Why an adapter carries no task signal, or None."""
    arrays = [(n, a) for g in params.layers.values() for n, a in g.items()] + list(params.shared.items())
    # one pass per tensor, no copies: a tensor's sum of squares is finite unless it holds a non-finite value
    # and non-zero only if the tensor is; overflow and underflow fall back to the exact checks
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        squares = [float(np.dot(a.ravel(), a.ravel())) for _, a in arrays]
    for (name, array), sq in zip(arrays, squares, strict=True):
        if not np.isfinite(sq):
            if not np.all(np.isfinite(array)):
                return f"non-finite values in {name}"
            return f"values too large to compare in {name} (their squares overflow float32)"
    if sum(squares) > float(np.finfo(np.float32).max):
        return "values too large to compare (the vector's squared norm overflows float32)"

    def nonzero(i: int) -> bool:
        return squares[i] != 0.0 or bool(np.any(arrays[i][1]))

    if params.method == "lora":
        if not any(nonzero(i) for i, (n, _) in enumerate(arrays) if n.endswith("lora_B")):
            return "every lora_B is zero: the adapter is a no-op (never trained)"
        if params.scaling and not any(params.scaling.values()):
            return "lora_alpha is 0: every ΔW = (α/r)·B·A is zero (the adapter is a no-op)"
    if not any(nonzero(i) for i in range(len(arrays))):
        return "all tuned tensors are zero"
    return None


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity (0 when either vector is zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)) / (na * nb))


def delta_inner(b1: np.ndarray, a1: np.ndarray, b2: np.ndarray, a2: np.ndarray) -> float:
    """Exact ⟨B₁A₁, B₂A₂⟩ = tr((B₁ᵀB₂)(A₂A₁ᵀ)) with r×r work."""
    return float(np.trace((b1.T @ b2) @ (a2 @ a1.T)))
