"""PEFT IA3: learned rescaling vectors per module."""

from __future__ import annotations

import re

from zoo_tupate.readers.base import CheckpointFolder, TunedParams
from zoo_tupate.readers.peft_layered import has_key_part, peft_type, read_layered

NAME = "peft-ia3"
METHOD = "ia3"
_PATTERN = re.compile(r"(.+\.ia3_l)(?:\.weight)?")


def detect(ckpt: CheckpointFolder) -> bool:
    """A PEFT IA3 checkpoint."""
    return peft_type(ckpt) == "IA3" or (peft_type(ckpt) is None and has_key_part(ckpt, ".ia3_l"))


def read(ckpt: CheckpointFolder, include_heads: bool = False, **_: object) -> TunedParams:
    """Read IA3 vectors grouped by layer."""
    return read_layered(ckpt, method=METHOD, fmt=NAME, pattern=_PATTERN, include_heads=include_heads)
