"""Checkpoint readers, one module per family, consulted in order (first ``detect`` that says yes wins).

Each module exposes ``NAME``, ``detect(ckpt) -> bool`` and ``read(ckpt, include_heads, **options) -> TunedParams``.
Adding a family: write a module and add it to ``READERS``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from zoo_tupate.errors import UnsupportedCheckpoint
from zoo_tupate.readers import adapterhub, bias_only, peft_beft, peft_ia3, peft_lora, peft_prompt
from zoo_tupate.readers.base import CheckpointFolder, TunedParams, open_checkpoint

READERS: list[ModuleType] = [adapterhub, peft_prompt, peft_lora, peft_ia3, peft_beft, bias_only]

__all__ = ["READERS", "CheckpointFolder", "TunedParams", "open_checkpoint", "read_tuned"]


def read_tuned(path: str | Path, include_heads: bool = False, base_weights: Path | None = None) -> TunedParams:
    """Open a checkpoint and read its tuned parameters with the first reader that recognises it."""
    ckpt = open_checkpoint(path)
    peft_type = ckpt.config.get("peft_type")
    for reader in READERS:
        if reader.detect(ckpt):
            return reader.read(ckpt, include_heads=include_heads, base_weights=base_weights)
    hint = f" (config peft_type {peft_type!r})" if peft_type else ""
    sample = ", ".join(list(ckpt.tensors)[:3]) or "no tensors"
    raise UnsupportedCheckpoint(f"{ckpt.weights}: unknown adapter layout{hint}; first tensors: {sample}")
