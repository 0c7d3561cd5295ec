"""Start a tunable model's LoRA from another task's adapter (the proxy transfer of ``suggest --verify``).

Only the LoRA A and B matrices are copied; the classification head stays the new, seeded one (a source's
head belongs to its own labels). Tensors are matched by their place in the encoder (layer index, module
path, A or B), so an adapter saved from a bare encoder loads into a sequence-classification model and
adapter names (``.default``) do not matter. Weights are read from safetensors only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from zoo_tupate.core.errors import CorruptCheckpoint, TuningError

WEIGHTS_NAME = "adapter_model.safetensors"
_LORA = re.compile(r"(?:^|\.)layers?\.(\d+)\.(.+?)\.(lora_[AB])(?:\.[^.]+)?\.weight$")


def lora_key(name: str) -> tuple[int, str, str] | None:
    """``(layer index, in-layer module path, "lora_A"|"lora_B")`` of a LoRA weight name, else ``None``."""
    match = _LORA.search(name)
    return (int(match.group(1)), match.group(2), match.group(3)) if match else None


def read_lora(folder: Path) -> dict[tuple[int, str, str], torch.Tensor]:
    """The LoRA matrices of the PEFT adapter in ``folder`` (safetensors), keyed by :func:`lora_key`."""
    from safetensors.torch import load_file

    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise TuningError(f"{folder}: no {WEIGHTS_NAME} to start a transfer from")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise CorruptCheckpoint(f"{path}: cannot read tensors ({exc})") from None
    out = {}
    for name, tensor in tensors.items():
        key = lora_key(name)
        if key is not None:
            out[key] = tensor
    if not out:
        raise TuningError(f"{path}: no LoRA tensors (a proxy transfer starts from a LoRA adapter)")
    return out


def init_from_adapter(tunable: Any, folder: Path) -> dict[str, Any]:
    """Copy the LoRA matrices of ``folder`` into ``tunable``'s model (same targets and rank required).

    Returns what was loaded (``folder``, tensor count). Raises :class:`TuningError` naming the file when the
    layouts differ (other targets, rank, layer count or hidden size).
    """
    if tunable.method != "lora":
        raise TuningError(f"{folder}: a transfer from a LoRA adapter needs a LoRA model, not {tunable.method}")
    source = read_lora(folder)
    params = {}
    for name, param in tunable.model.named_parameters():
        key = lora_key(name)
        if key is not None:
            params[key] = param
    path = folder / WEIGHTS_NAME
    if set(source) != set(params):
        missing, extra = len(set(params) - set(source)), len(set(source) - set(params))
        raise TuningError(f"{path}: LoRA layout differs from the target model's ({missing} of its {len(params)} "
                          f"matrices missing, {extra} not in it: other target modules or layer count)")
    for key, param in params.items():
        if tuple(source[key].shape) != tuple(param.shape):
            raise TuningError(f"{path}: {key[1]}.{key[2]} of layer {key[0]} has shape {tuple(source[key].shape)}, "
                              f"the target model's {tuple(param.shape)} (other rank or base model)")
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(source[key].to(dtype=param.dtype, device=param.device))
    return {"folder": str(folder), "tensors": len(params)}
