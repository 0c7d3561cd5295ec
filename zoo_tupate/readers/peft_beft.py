"""PEFT BEFT (BitFit as an additive zero-initialised bias): the saved tensors are bias changes."""

from __future__ import annotations

import re

from zoo_tupate.readers.base import CheckpointFolder, TunedParams
from zoo_tupate.readers.peft_layered import has_key_part, peft_type, read_layered

NAME = "peft-beft"
METHOD = "bitfit"
_PATTERN = re.compile(r"(.+\.beft_bias)(?:\.weight)?")


def detect(ckpt: CheckpointFolder) -> bool:
    """A PEFT BEFT checkpoint."""
    return peft_type(ckpt) == "BEFT" or (peft_type(ckpt) is None and has_key_part(ckpt, ".beft_bias"))


def read(ckpt: CheckpointFolder, include_heads: bool = False, **_: object) -> TunedParams:
    """Read BEFT bias changes grouped by layer."""
    return read_layered(ckpt, method=METHOD, fmt=NAME, pattern=_PATTERN, include_heads=include_heads)
