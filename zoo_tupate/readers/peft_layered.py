"""Shared logic of PEFT methods that add named tensors to modules inside layers (LoRA, IA3, BEFT)."""

from __future__ import annotations

import re
from functools import lru_cache

from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.readers.base import (
    CheckpointFolder,
    TunedParams,
    base_model_from_config,
    group_by_layer,
    heads_and_rest,
    load_shared,
    split_layer,
)

_ADAPTER_NAME_RE = re.compile(r"\.default(?=\.|$)")


def read_layered(
    ckpt: CheckpointFolder,
    *,
    method: str,
    fmt: str,
    pattern: re.Pattern[str],
    include_heads: bool,
) -> TunedParams:
    """Keep tensors whose in-layer name matches ``pattern`` (group 1: canonical name), group them by layer.

    Tensors outside layers or not matching are excluded (heads, ``modules_to_save`` copies, embedding
    LoRA); with ``include_heads`` the ones outside layers are kept in ``shared``.
    """
    selected: dict[str, str] = {}
    for key in ckpt.tensors:
        canonical = _canonical(pattern, key)
        if canonical is not None:
            selected[key] = canonical
    if not selected:
        raise UnsupportedCheckpoint(f"{ckpt.weights}: no {method} tensors inside Transformer layers")
    excluded = heads_and_rest(ckpt, set(selected))
    shared = {}
    if include_heads:
        outside = [k for k in excluded if split_layer(k) is None]
        shared = load_shared(ckpt, outside)
        excluded = [k for k in excluded if k not in outside]
    return TunedParams(
        method=method,
        format=fmt,
        base_model=base_model_from_config(ckpt.config),
        layers=group_by_layer(ckpt, selected),
        shared=shared,
        excluded=excluded,
        config=ckpt.config,
    )


@lru_cache(maxsize=1 << 16)
def _canonical(pattern: re.Pattern[str], key: str) -> str | None:
    """The canonical in-layer name of ``key`` if ``pattern`` selects it (cached: zoos repeat their keys)."""
    if "modules_to_save" in key or "original_module" in key:
        return None
    split = split_layer(key)
    if split is None:
        return None
    match = pattern.fullmatch(_ADAPTER_NAME_RE.sub("", split[1]))
    return match.group(1) if match else None


def peft_type(ckpt: CheckpointFolder) -> str | None:
    """The config's ``peft_type`` upper-cased, or None."""
    value = ckpt.config.get("peft_type")
    return value.upper() if isinstance(value, str) else None


def has_key_part(ckpt: CheckpointFolder, part: str) -> bool:
    """True when some tensor name contains ``part``."""
    return any(part in key for key in ckpt.tensors)
