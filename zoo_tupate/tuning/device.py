"""Where tuning runs: the device a ``--device`` value names, and the autocast that suits it."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from zoo_tupate.core.errors import TuningError


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`TuningError`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TuningError("--device cuda: no CUDA device is available")
    if device not in {"cpu"} and not device.startswith("cuda"):
        raise TuningError(f"unknown device {device!r} (choose auto, cpu or cuda)")
    return torch.device(device)


def autocast_for(device: torch.device) -> tuple[Any, torch.dtype | None]:
    """(context factory, dtype): bf16 (or fp16 with loss scaling) autocast on CUDA, nothing on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype
