"""Checkpoint readers, one module per family, consulted in order (first ``detect`` that says yes wins).

Each module exposes ``NAME``, ``detect(ckpt) -> bool`` and ``read(ckpt, include_heads, **options) -> TunedParams``.
Adding a family: write a module and add it to ``READERS``.

Layer 2 (checkpoint files → tuned parameters grouped by layer). May import: ``core``, ``formats``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from zoo_tupate.core.errors import CorruptCheckpoint, UnsupportedCheckpoint
from zoo_tupate.readers import adapterhub, bias_only, peft_beft, peft_ia3, peft_lora, peft_prompt
from zoo_tupate.readers.base import CheckpointFolder, TunedParams, contiguous_rows, open_checkpoint

READERS: list[ModuleType] = [adapterhub, peft_prompt, peft_lora, peft_ia3, peft_beft, bias_only]

__all__ = ["READERS", "CheckpointFolder", "TunedParams", "open_checkpoint", "read_opened", "read_tuned"]


def read_tuned(path: str | Path, include_heads: bool = False, base_weights: Path | None = None) -> TunedParams:
    """Open a checkpoint and read its tuned parameters with the first reader that recognises it."""
    return read_opened(open_checkpoint(path), include_heads=include_heads, base_weights=base_weights)


def read_opened(ckpt: CheckpointFolder, include_heads: bool = False, base_weights: Path | None = None) -> TunedParams:
    """Read the tuned parameters of an already opened checkpoint (see :func:`read_tuned`)."""
    peft_type = ckpt.config.get("peft_type")
    for reader in READERS:
        if reader.detect(ckpt):
            params = reader.read(ckpt, include_heads=include_heads, base_weights=base_weights)
            params.release = ckpt.release
            params.rows = contiguous_rows(ckpt, params.layers)
            if params.method == "lora":
                check_lora_factors(params, ckpt.weights)
            return params
    hint = f" (config peft_type {peft_type!r})" if peft_type else ""
    sample = ", ".join(list(ckpt.tensors)[:3]) or "no tensors"
    raise UnsupportedCheckpoint(f"{ckpt.weights}: unknown adapter layout{hint}; first tensors: {sample}")


def check_lora_factors(params: TunedParams, weights: Path) -> None:
    """Every LoRA module needs 2-D factors that multiply: A (r × in) and B (out × r), of rank at least 1."""
    for idx, group in params.layers.items():
        for name, a in group.items():
            if not name.endswith(".lora_A"):
                continue
            b = group.get(name[:-1] + "B")
            if b is None:
                raise CorruptCheckpoint(f"{weights}: layer {idx} {name} has no matching lora_B")
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
                raise CorruptCheckpoint(f"{weights}: layer {idx} {name[:-len('.lora_A')]}: lora_A {a.shape} and "
                                        f"lora_B {b.shape} are not LoRA factors (rank mismatch)")
            if a.shape[0] == 0:
                raise CorruptCheckpoint(f"{weights}: layer {idx} {name[:-len('.lora_A')]}: LoRA rank 0 "
                                        f"(lora_A {a.shape}): no factors to embed")
