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

``delta`` (bottleneck): per adapter, the product W_up·W_down (d×d) of its up- and down-projection weights,
exact or sketched as above. Permuting the m bottleneck units (W_down → P·W_down, b_down → P·b_down,
W_up → W_up·Pᵀ) leaves the adapter's function and this product unchanged, so independently trained
adapters (AdapterHub's and a probe) become comparable; the biases are left out (docs/bottleneck.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.embedding.rankable import FLOAT32_TINY
from zoo_tupate.readers.base import TunedParams

METHODS = ("lora", "bitfit", "prefix", "prompt", "ia3", "bottleneck")
REPRS = ("raw", "delta")
POOLINGS = ("layer-mean", "flatten")
SKETCH_DIM = 128
SKETCH_SEED = 20221207
#: Elements pooled, copied or squared at a time when a large mapped file drops its pages as it goes (bounds
#: the float64 accumulator and the touched pages; every element is still summed over layers in layer order,
#: so the result does not depend on it). Small files pool whole tensors or layers in one call.
POOL_CHUNK = 1 << 14
#: Bytes of a LoRA factor converted to float64 at a time when sketching (bounds the temporaries).
SKETCH_CHUNK_BYTES = 1 << 18


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


def _shared_layout(params: TunedParams) -> tuple[list[str], list[list], int]:
    names = sorted(params.shared)
    return names, [[n, list(params.shared[n].shape)] for n in names], sum(params.shared[n].size for n in names)


def _fill_shared(out: np.ndarray, offset: int, params: TunedParams, names: list[str]) -> np.ndarray:
    """Write the shared tensors, flattened in ``names`` order, into ``out`` from ``offset`` on."""
    for name in names:
        offset = _copy_flat(out, offset, params.shared[name].reshape(-1))
        _release(params)
    return out


def _copy_flat(out: np.ndarray, offset: int, flat: np.ndarray) -> int:
    """Copy a flat tensor into ``out`` at ``offset`` (:data:`POOL_CHUNK` at a time); returns the next offset."""
    for start in range(0, flat.size, POOL_CHUNK):
        piece = flat[start:start + POOL_CHUNK]
        out[offset + start:offset + start + piece.size] = piece
    return offset + flat.size


def _release(params: TunedParams) -> None:
    if params.release is not None:
        params.release()


def raw_vector(params: TunedParams, pooling: str) -> tuple[np.ndarray, list]:
    """The paper's embedding: concatenate within a layer, then average (or concatenate) over layers.

    The vector is allocated once and filled tensor by tensor (layer-mean: chunk by chunk, a float64 sum
    in layer order, as ``np.mean(np.stack(rows), axis=0, dtype=float64)`` computes, without the rows).
    """
    shared_names, shared_layout, shared_size = _shared_layout(params)
    if not params.layers:
        out = np.empty(shared_size, np.float32)
        return _fill_shared(out, 0, params, shared_names), [["shared", shared_layout]]
    if pooling == "layer-mean":
        layout = check_same_layout(params)
        groups = list(params.layers.values())
        sizes = [math.prod(shape) for _, shape in layout]
        out = np.empty(sum(sizes) + shared_size, np.float32)
        offset, release = 0, params.release
        for size, flats in _segments(params, layout, sizes):
            step = POOL_CHUNK if release is not None else max(size, 1)
            for start in range(0, size, step):
                stop = min(start + step, size)
                total = flats[0][start:stop].astype(np.float64)  # 0.0 + x = x: the same sum as from zeros
                for flat in flats[1:]:
                    total += flat[start:stop]
                    if release is not None:
                        release()
                total /= len(groups)
                out[offset + start:offset + stop] = total
                if release is not None:
                    release()
            offset += size
        return _fill_shared(out, offset, params, shared_names), [layout, shared_layout]
    if pooling == "flatten":
        layout = [[idx, layer_layout(group)] for idx, group in params.layers.items()]
        total_size = sum(a.size for group in params.layers.values() for a in group.values())
        out = np.empty(total_size + shared_size, np.float32)
        offset = 0
        for idx, group in params.layers.items():
            row = params.rows.get(idx)
            for flat in [row] if row is not None else [group[name].reshape(-1) for name in sorted(group)]:
                offset = _copy_flat(out, offset, flat)
                _release(params)
        return _fill_shared(out, offset, params, shared_names), [layout, shared_layout]
    raise ValueError(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")


def _segments(params: TunedParams, layout: list[list], sizes: list[int]) -> list[tuple[int, list[np.ndarray]]]:
    """What layer-mean sums, as (size, one flat array per layer): whole layer rows when every layer has one
    (:attr:`TunedParams.rows`), else tensor by tensor in layout order. Either way the same values."""
    rows = [params.rows.get(idx) for idx in params.layers]
    if rows and all(row is not None and row.size == sum(sizes) for row in rows):
        return [(sum(sizes), rows)]  # type: ignore[list-item]
    groups = params.layers.values()
    return [(size, [group[name].reshape(-1) for group in groups]) for (name, _), size in zip(layout, sizes, strict=True)]


@lru_cache(maxsize=32)
def sketch_matrix(n: int, p: int = SKETCH_DIM) -> np.ndarray:
    """The fixed Gaussian sketch (p × n, entries N(0, 1/p)) for a side of length n."""
    sketch = np.random.default_rng([SKETCH_SEED, n, p]).standard_normal((p, n))
    sketch /= np.sqrt(p)  # in place: one p × n float64 matrix, no temporaries
    return sketch


def lora_modules(group: dict[str, np.ndarray]) -> list[str]:
    """Module names with both LoRA factors in a layer, sorted."""
    return sorted(n[: -len(".lora_A")] for n in group if n.endswith(".lora_A") and n[:-1] + "B" in group)


#: Per method with a product form: (suffix of the left factor B, suffix of the right factor A); ΔW = B·A.
FACTORS: dict[str, tuple[str, str]] = {
    "lora": (".lora_B", ".lora_A"),
    "bottleneck": (".adapter_up.weight", ".adapter_down.0.weight"),
}


def factor_modules(group: dict[str, np.ndarray], method: str) -> list[str]:
    """Module names with both factors of ``method``'s product in a layer, sorted."""
    left, right = FACTORS[method]
    return sorted(n[: -len(right)] for n in group if n.endswith(right) and n[: -len(right)] + left in group)


def delta_from_factors(b: np.ndarray, a: np.ndarray, p: int = SKETCH_DIM, scale: float = 1.0,
                       release: Callable[[], None] | None = None) -> np.ndarray:
    """ΔW = scale·b·a flattened when small, else its two-sided sketch S₁·(scale·b)·a·S₂ᵀ (never forming d×k).

    Large factors are converted to float64 a slab at a time (:data:`SKETCH_CHUNK_BYTES`), not whole;
    ``release`` (if given) is called after each slab (see :attr:`TunedParams.release`).
    """
    d, k = b.shape[0], a.shape[1]
    if d * k <= p * p:
        return ((b.astype(np.float64) * scale) @ a.astype(np.float64)).ravel()
    s1, s2 = sketch_matrix(d, p), sketch_matrix(k, p)
    rows = max(1, SKETCH_CHUNK_BYTES // (8 * max(1, b.shape[1])))
    left = right = 0.0
    for i in range(0, d, rows):
        slab = b[i:i + rows].astype(np.float64)
        slab *= scale
        left = left + s1[:, i:i + rows] @ slab
        if release is not None:
            release()
    cols = max(1, SKETCH_CHUNK_BYTES // (8 * max(1, a.shape[0])))
    for j in range(0, k, cols):
        right = right + a[:, j:j + cols].astype(np.float64) @ s2[:, j:j + cols].T
        if release is not None:
            release()
    return (left @ right).ravel()


def delta_vector(params: TunedParams, pooling: str, p: int = SKETCH_DIM) -> tuple[np.ndarray, list]:
    """ΔW per module (layer-mean of ΔW or per layer), exact or sketched: LoRA's (α/r)·B·A (layout ignores
    rank and α) or a bottleneck adapter's W_up·W_down (layout ignores the bottleneck width)."""
    if params.method not in FACTORS:
        raise UnsupportedCheckpoint(f"repr 'delta' applies to LoRA and bottleneck adapters only; {params.method} "
                                    "has no factors (use raw)")
    left, right = FACTORS[params.method]
    layers = list(params.layers.values())
    modules = factor_modules(layers[0], params.method) if layers else []
    if not modules or any(factor_modules(g, params.method) != modules for g in layers):
        if pooling == "layer-mean":
            raise UnsupportedCheckpoint(f"layers hold different {params.method} modules; use --pooling flatten")
    scale = params.scaling

    def product(group: dict[str, np.ndarray], module: str) -> np.ndarray:
        out = delta_from_factors(group[module + left], group[module + right], p, scale.get(module, 1.0),
                                 params.release)
        _release(params)
        return out

    def shape(group: dict[str, np.ndarray], module: str) -> list[int]:
        return [group[module + left].shape[0], group[module + right].shape[1]]

    parts, layout = [], []
    if pooling == "layer-mean":
        # mean over layers of (sketched) B_l·A_l, one layer at a time (layer order, as the sketch of
        # [B_1 … B_L]/L · [A_1; …; A_L]), without holding every layer's factors at once
        totals: dict[str, np.ndarray] = {}
        for group in layers:
            for module in modules:
                part = product(group, module)
                totals[module] = part if module not in totals else totals[module] + part
        for module in modules:
            parts.append(totals[module] / len(layers))
            layout.append([module, shape(layers[0], module)])
    elif pooling == "flatten":
        for idx, group in params.layers.items():
            for module in factor_modules(group, params.method):
                parts.append(product(group, module))
                layout.append([idx, module, shape(group, module)])
    else:
        raise ValueError(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")
    shared_names, shared_layout, shared_size = _shared_layout(params)
    size = sum(part.size for part in parts)
    out = np.empty(size + shared_size, np.float32)
    offset = 0
    for part in parts:
        out[offset:offset + part.size] = part
        offset += part.size
    return _fill_shared(out, offset, params, shared_names), [layout, shared_layout, p]


_PER_TENSOR = "per tensor"


def _square(array: np.ndarray, release: Callable[[], None] | None = None) -> float:
    """Sum of squares in float32 (inf when it overflows float32). A lazy tensor is converted, and with
    ``release`` (a large mapped file) the pages are dropped, :data:`POOL_CHUNK` elements at a time."""
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if isinstance(flat, np.ndarray) and release is None:
            return float(np.dot(flat, flat))
        total = 0.0
        for start in range(0, flat.size, POOL_CHUNK):
            chunk = flat[start:start + POOL_CHUNK]
            total += float(np.dot(chunk, chunk))
            if release is not None:
                release()
    return total if total <= float(np.finfo(np.float32).max) else math.inf


def _nonzero(array: np.ndarray, square: float | None = None, release: Callable[[], None] | None = None) -> bool:
    """Whether any value is non-zero (a zero sum of squares may have underflowed: then look, chunk by chunk)."""
    if (_square(array, release) if square is None else square) != 0.0:
        return True
    flat = array.reshape(-1)
    for start in range(0, flat.size, POOL_CHUNK):
        if np.any(flat[start:start + POOL_CHUNK]):
            return True
        if release is not None:
            release()
    return False


def _reason_by_rows(params: TunedParams) -> str | None:
    """:func:`degenerate_reason` from whole layer rows (:attr:`TunedParams.rows`): one dot per layer, and the
    lora_B tensors only until one is non-zero. ``_PER_TENSOR`` when rows are missing or some square is not
    finite or too large (the per-tensor pass then names the tensor)."""
    rows = [params.rows.get(idx) for idx in params.layers]
    if not rows or any(row is None for row in rows):
        return _PER_TENSOR
    parts = [*rows, *(a.reshape(-1) for a in params.shared.values())]
    squares = [_square(part, params.release) for part in parts]
    total = sum(squares)
    if not math.isfinite(total) or total > float(np.finfo(np.float32).max):
        return _PER_TENSOR
    if params.method == "lora":
        for factor_b in (a for g in params.layers.values() for n, a in g.items() if n.endswith("lora_B")):
            if _nonzero(factor_b, None, params.release):
                break
        else:
            return "every lora_B is zero: the adapter is a no-op (never trained)"
        if (reason := _scaling_reason(params)) is not None:
            return reason
    if not any(_nonzero(part, sq, params.release) for part, sq in zip(parts, squares, strict=True)):
        return "all tuned tensors are zero"
    return None


def _scaling_reason(params: TunedParams) -> str | None:
    """Why a LoRA's α/r scaling makes every ΔW zero (0, or below float32's smallest normal), or None."""
    if params.scaling and not any(params.scaling.values()):
        return "lora_alpha is 0: every ΔW = (α/r)·B·A is zero (the adapter is a no-op)"
    if params.scaling and max(abs(v) for v in params.scaling.values()) < FLOAT32_TINY:
        return (f"α/r is {max(params.scaling.values()):.3g}: every ΔW = (α/r)·B·A is zero in float32 "
                "(the adapter is a no-op)")
    return None


def degenerate_reason(params: TunedParams) -> str | None:
    """Why an adapter carries no task signal, or None."""
    fast = _reason_by_rows(params)
    if fast is not _PER_TENSOR:
        return fast
    arrays = [(n, a) for g in params.layers.values() for n, a in g.items()] + list(params.shared.items())
    # one pass per tensor, no copies: a tensor's sum of squares is finite unless it holds a non-finite value
    # and non-zero only if the tensor is; overflow and underflow fall back to the exact checks
    squares = [_square(array, params.release) for _, array in arrays]
    for (name, array), sq in zip(arrays, squares, strict=True):
        if not np.isfinite(sq):
            if not np.all(np.isfinite(array)):
                return f"non-finite values in {name}"
            return f"values too large to compare in {name} (their squares overflow float32)"
    if sum(squares) > float(np.finfo(np.float32).max):
        return "values too large to compare (the vector's squared norm overflows float32)"

    def nonzero(i: int) -> bool:
        return _nonzero(arrays[i][1], squares[i], params.release)

    if params.method == "lora":
        if not any(nonzero(i) for i, (n, _) in enumerate(arrays) if n.endswith("lora_B")):
            return "every lora_B is zero: the adapter is a no-op (never trained)"
        if (reason := _scaling_reason(params)) is not None:
            return reason
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
