"""PEFT LoRA (any PEFT version, any encoder, any key-prefix nesting)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from zoo_tupate.core.errors import CorruptCheckpoint
from zoo_tupate.readers.base import CheckpointFolder, TunedParams
from zoo_tupate.readers.peft_layered import has_key_part, peft_type, read_layered

NAME = "peft-lora"
METHOD = "lora"
_PATTERN = re.compile(r"(.+\.lora_[AB])\.weight")


def detect(ckpt: CheckpointFolder) -> bool:
    """A PEFT LoRA checkpoint: the config says so, or tensors named ``lora_A``/``lora_B`` exist."""
    if peft_type(ckpt) in {"LORA", "ADALORA"}:
        return True
    return peft_type(ckpt) is None and has_key_part(ckpt, ".lora_A.")


def read(ckpt: CheckpointFolder, include_heads: bool = False, **_: object) -> TunedParams:
    """Read LoRA A/B factors grouped by layer; record each module's α/r scale for the ``delta`` repr."""
    file = ckpt.path / "adapter_config.json"
    check_lora_config(file, ckpt.config)
    params = read_layered(ckpt, method=METHOD, fmt=NAME, pattern=_PATTERN, include_heads=include_heads)
    params.scaling = lora_scaling(ckpt.config, params)
    if has_key_part(ckpt, "lora_magnitude_vector"):
        params.notes.append("DoRA magnitude vectors left out: the embedding uses the LoRA factors only")
    return params


def check_lora_config(file: Path, config: dict) -> None:
    """The LoRA fields of a config have their types, or :class:`CorruptCheckpoint` names the field.

    ``r`` is a positive integer; ``lora_alpha`` a number of at least 0 (0 makes every ΔW zero: degenerate).
    A negative ``lora_alpha`` is refused: it reverses the update (ΔW = α/r·B·A points the other way), which
    no trainer writes on purpose, and its ΔW embedding would rank as the opposite of its own weights.
    ``rank_pattern`` / ``alpha_pattern`` are objects of such numbers; ``use_rslora`` a boolean.
    """
    if "r" in config:
        _count(file, "r", config.get("r"))
    for key in ("lora_alpha", "alpha"):
        if key in config:
            _alpha(file, key, config[key])
            break
    for key, check in (("rank_pattern", _count), ("alpha_pattern", _alpha)):
        pattern = config.get(key)
        if pattern is None:
            continue
        if not isinstance(pattern, dict):
            raise CorruptCheckpoint(f"{file}: {key} must be an object, got {type(pattern).__name__}")
        for module, value in pattern.items():
            check(file, f"{key}[{module[:60]!r}]", value)
    if config.get("use_rslora") is not None and not isinstance(config["use_rslora"], bool):
        raise CorruptCheckpoint(f"{file}: use_rslora must be true or false, got {_shown(config['use_rslora'])}")


def _shown(value: object) -> str:
    return f"{type(value).__name__} {str(value)[:40]!r}" if value is not None else "null"


def _count(file: Path, key: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CorruptCheckpoint(f"{file}: {key} must be a positive integer (the LoRA rank), got {_shown(value)}")


def _alpha(file: Path, key: str, value: object) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CorruptCheckpoint(f"{file}: {key} must be a number, got {_shown(value)}")
    if value < 0:
        raise CorruptCheckpoint(f"{file}: {key} is {value:g}: a negative alpha reverses the adapter's update "
                                "(ΔW = α/r·B·A), which zoo-tupate does not embed")


def lora_scaling(config: dict, params: TunedParams) -> dict[str, float]:
    """α/r per module (``rank_pattern``/``alpha_pattern`` and rsLoRA honoured), from the tensors' real rank."""
    alpha_default = _number(config.get("lora_alpha", config.get("alpha")), None)
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    rslora = bool(config.get("use_rslora"))
    scaling: dict[str, float] = {}
    known: dict[tuple[str, int], float] = {}  # layers repeat their modules: one computation per (module, rank)
    for group in params.layers.values():
        for name, array in group.items():
            if not name.endswith(".lora_A"):
                continue
            module = name[: -len(".lora_A")]
            if array.ndim != 2 or array.shape[0] == 0:
                continue  # refused by check_lora_factors
            rank = array.shape[0]
            if (module, rank) not in known:
                alpha = _pattern_value(alpha_pattern, module, alpha_default)
                _pattern_value(rank_pattern, module, rank)  # the tensors' rank wins over the config
                if alpha is None:
                    alpha = rank  # no alpha known: scale 1
                known[module, rank] = alpha / (math.sqrt(rank) if rslora else rank)
            scaling[module] = known[module, rank]
    return scaling


def _pattern_value(pattern: dict, module: str, default):
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            if isinstance(key, str) and (module == key or module.endswith("." + key) or key.endswith(module)):
                return _number(value, default)
    return default


def _number(value, default):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
