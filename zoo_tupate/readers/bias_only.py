"""BitFit as a plain state dict of absolute bias terms.

The pretrained biases are common to every task (they would push all cosines towards 1), so the
embedding uses the *changes*: the base model's biases are subtracted, read from a local weights file
(``base_weights``). Without one the checkpoint is refused.
"""

from __future__ import annotations

from pathlib import Path

from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.formats.weights import list_tensors, load_tensors
from zoo_tupate.readers.base import (
    CheckpointFolder,
    TunedParams,
    base_model_from_config,
    group_by_layer,
    split_layer,
    strip_prefixes,
)

NAME = "bias-only"
METHOD = "bitfit"
BASE_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def detect(ckpt: CheckpointFolder) -> bool:
    """Every tensor inside a layer is a ``.bias`` (and there are some)."""
    in_layer = [k for k in ckpt.tensors if split_layer(k) is not None]
    return bool(in_layer) and all(k.endswith(".bias") for k in in_layer)


def read(ckpt: CheckpointFolder, include_heads: bool = False, base_weights: Path | None = None, **_: object) -> TunedParams:
    """Subtract the base model's biases from the stored absolute biases."""
    selected = {k: split_layer(k)[1] for k in ckpt.tensors if split_layer(k) is not None}  # type: ignore[index]
    base_file = _base_file(ckpt, base_weights)
    if base_file is None:
        raise UnsupportedCheckpoint(
            f"{ckpt.weights}: absolute BitFit biases need the base model's weights to form bias changes; "
            "pass --base-weights PATH (a local model folder or weights file)"
        )
    base_index = {(split[0], split[1]): name for name in list_tensors(base_file)
                  if (split := split_layer(strip_prefixes(name))) is not None}
    wanted = {}
    for key, canonical in selected.items():
        layer = split_layer(key)[0]  # type: ignore[index]
        if (layer, canonical) not in base_index:
            raise UnsupportedCheckpoint(f"{ckpt.weights}: {key} has no counterpart in base weights {base_file}")
        wanted[key] = base_index[(layer, canonical)]
    base_arrays = load_tensors(base_file, sorted(set(wanted.values())))
    layers = group_by_layer(ckpt, selected)
    for key, base_name in wanted.items():
        layer, canonical = split_layer(key)  # type: ignore[misc]
        if layers[layer][canonical].shape != base_arrays[base_name].shape:
            raise UnsupportedCheckpoint(f"{ckpt.weights}: {key} shape differs from the base model's")
        layers[layer][canonical] = layers[layer][canonical] - base_arrays[base_name]
    excluded = sorted(k for k in ckpt.tensors if k not in selected)
    return TunedParams(METHOD, NAME, base_model_from_config(ckpt.config), layers=layers, excluded=excluded,
                       config=ckpt.config, notes=[f"bias changes relative to {base_file}"])


def _base_file(ckpt: CheckpointFolder, base_weights: Path | None) -> Path | None:
    candidates = []
    if base_weights is not None:
        candidates.append(Path(base_weights))
    named = ckpt.config.get("base_model_name_or_path")
    if isinstance(named, str) and named:
        candidates.append(Path(named).expanduser())
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        for name in BASE_WEIGHT_FILES:
            if (candidate / name).is_file():
                return candidate / name
    return None
