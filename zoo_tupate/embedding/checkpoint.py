"""A checkpoint on disk → its tuned parameters (through the readers) → its task embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.core.safetext import escape_controls
from zoo_tupate.embedding.rankable import vector_reason
from zoo_tupate.embedding.segments import SEGMENTS_KEY, layout_segments
from zoo_tupate.embedding.space import normalize_base_model, space_name
from zoo_tupate.embedding.vectors import (
    POOLINGS,
    REPRS,
    Embedding,
    degenerate_reason,
    delta_vector,
    raw_vector,
)
from zoo_tupate.formats.weights import sha256_files
from zoo_tupate.readers import CheckpointFolder, TunedParams, open_checkpoint, read_opened, read_tuned

_CONFIG_SUMMARY_KEYS = (
    "peft_type", "task_type", "r", "lora_alpha", "target_modules", "num_virtual_tokens", "num_layers",
    "token_dim", "init_seed", "zoo_tupate", "config",  # config: AdapterHub's adapter settings
)


def read_checkpoint(path: str | Path, include_heads: bool = False, base_weights: Path | None = None) -> TunedParams:
    """Read a checkpoint's tuned parameters, grouped by layer (see :mod:`zoo_tupate.readers`)."""
    return read_tuned(path, include_heads=include_heads, base_weights=base_weights)


def embed(
    path: str | Path,
    repr: str = "raw",  # noqa: A002 - the documented option name
    pooling: str = "layer-mean",
    include_heads: bool = False,
    base_model_id: str | None = None,
    base_weights: Path | None = None,
) -> Embedding:
    """Compute the task embedding of a checkpoint folder (or weights file).

    ``repr``: ``raw`` (tensors as stored, the paper's) or ``delta`` (LoRA ΔW, comparable across ranks and
    random initialisations). ``pooling``: ``layer-mean`` (the paper's) or ``flatten``. Degenerate
    adapters are returned with ``degenerate=True`` and a reason; indexing refuses them unless forced.
    """
    if repr not in REPRS:
        raise UnsupportedCheckpoint(f"unknown repr {repr!r} (choose from {', '.join(REPRS)})")
    if pooling not in POOLINGS:
        raise UnsupportedCheckpoint(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")
    return embed_checkpoint(open_checkpoint(path), repr=repr, pooling=pooling, include_heads=include_heads,
                            base_model_id=base_model_id, base_weights=base_weights)


def embed_checkpoint(
    ckpt: CheckpointFolder,
    repr: str = "raw",  # noqa: A002
    pooling: str = "layer-mean",
    include_heads: bool = False,
    base_model_id: str | None = None,
    base_weights: Path | None = None,
    sha256: str | None = None,
) -> Embedding:
    """:func:`embed` of an already opened checkpoint (its weights file is read once; ``sha256`` if known)."""
    if repr not in REPRS:
        raise UnsupportedCheckpoint(f"unknown repr {repr!r} (choose from {', '.join(REPRS)})")
    if pooling not in POOLINGS:
        raise UnsupportedCheckpoint(f"unknown pooling {pooling!r} (choose from {', '.join(POOLINGS)})")
    params = read_opened(ckpt, include_heads=include_heads, base_weights=base_weights)
    emb = embed_params(params, repr=repr, pooling=pooling, base_model_id=base_model_id, sha256=sha256 or "",
                       source=str(ckpt.path), extra={"weights_file": ckpt.weights.name})
    if not emb.sha256:
        emb.sha256 = ckpt.mapped.sha256() if ckpt.mapped is not None else sha256_files([ckpt.weights])
    return emb


def embed_params(
    params: TunedParams,
    repr: str = "raw",  # noqa: A002
    pooling: str = "layer-mean",
    base_model_id: str | None = None,
    sha256: str = "",
    source: str = "",
    extra: dict[str, Any] | None = None,
) -> Embedding:
    """Embed already-read tuned parameters (pure: no file access)."""
    try:
        if repr == "delta":
            vector, layout = delta_vector(params, pooling)
        else:
            vector, layout = raw_vector(params, pooling)
    except UnsupportedCheckpoint as exc:
        where = f"{source}: " if source else ""
        raise UnsupportedCheckpoint(f"{where}{exc}") from None
    if vector.size == 0:
        raise UnsupportedCheckpoint(f"{source or 'checkpoint'}: every tuned tensor is empty (nothing to embed)")
    base = escape_controls(normalize_base_model(params.base_model, base_model_id))  # stored: one printable line
    reason = degenerate_reason(params) or vector_reason(vector)
    config = {k: params.config[k] for k in _CONFIG_SUMMARY_KEYS if k in params.config}
    metadata: dict[str, Any] = {
        "format": params.format,
        "num_params": params.num_params,
        "layout": layout,
        "config": config,
        "notes": list(params.notes),
        **(extra or {}),
    }
    segments = layout_segments(params.method, repr, pooling, layout)
    if segments is not None:
        metadata[SEGMENTS_KEY] = segments  # where each module lies in the vector (cross-layout scoring)
    return Embedding(
        vector=vector,
        method=params.method,
        repr=repr,
        pooling=pooling,
        space=space_name(base, params.method, repr, pooling, layout),
        base_model=base,
        layers=sorted(params.layers),
        degenerate=reason is not None,
        degenerate_reason=reason,
        excluded_tensors=list(params.excluded),
        sha256=sha256,
        source=escape_controls(source),
        metadata=metadata,
    )
