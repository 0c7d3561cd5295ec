"""AdapterHub checkpoints (adapter-transformers 3.x and ``adapters`` 1.x).

Bottleneck adapters (``adapter_down``/``adapter_up`` per layer), and the LoRA variant (``loras.<name>``).
Keys embed the adapter's name (``...adapters.<name>.``); it is removed from canonical names. Prefix
tuning is stored as a reparametrisation network rather than per-layer prefixes and is refused. The head
file (``pytorch_model_head.bin``) is never read.
"""

from __future__ import annotations

import re

from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.readers.base import (
    CheckpointFolder,
    TunedParams,
    base_model_from_config,
    group_by_layer,
    split_layer,
)

NAME = "adapterhub"
_FILES = ("pytorch_adapter.bin", "adapter.safetensors")
_BOTTLENECK = re.compile(r"(.*?)\.adapters\.[^.]+\.(adapter_(?:down|up).*?)(?:\.weight|\.bias)?$")
_LORA = re.compile(r"(.*?)\.loras\.[^.]+\.(lora_[AB])$")


def detect(ckpt: CheckpointFolder) -> bool:
    """An AdapterHub save: its weight file name, or its config's ``model_name`` + ``config`` keys."""
    return ckpt.weights.name in _FILES or ("model_name" in ckpt.config and "config" in ckpt.config)


def read(ckpt: CheckpointFolder, include_heads: bool = False, **_: object) -> TunedParams:
    """Group bottleneck or LoRA tensors by layer."""
    if any("prefix_tunings" in key for key in ckpt.tensors):
        raise UnsupportedCheckpoint(
            f"{ckpt.weights}: AdapterHub prefix tuning stores a reparametrisation network, not per-layer "
            "prefixes; it is not supported"
        )
    selected: dict[str, str] = {}
    method = None
    for key in ckpt.tensors:
        split = split_layer(key)
        if split is None:
            continue
        rest = split[1]
        if match := _BOTTLENECK.fullmatch(rest):
            suffix = ".bias" if rest.endswith(".bias") else ".weight"
            selected[key] = f"{match.group(1)}.{match.group(2)}{suffix}"
            method = method or "bottleneck"
        elif match := _LORA.fullmatch(rest):
            selected[key] = f"{match.group(1)}.{match.group(2)}"
            method = method or "lora"
    if not selected:
        raise UnsupportedCheckpoint(f"{ckpt.weights}: no AdapterHub bottleneck or LoRA tensors inside layers")
    kinds = {"bottleneck" if ".adapter_" in c else "lora" for c in selected.values()}
    if len(kinds) > 1:
        raise UnsupportedCheckpoint(f"{ckpt.weights}: mixes bottleneck and LoRA adapters (a composition)")
    config = ckpt.config.get("config") if isinstance(ckpt.config.get("config"), dict) else {}
    excluded = sorted(k for k in ckpt.tensors if k not in selected)
    params = TunedParams(kinds.pop(), NAME, base_model_from_config(ckpt.config), layers=group_by_layer(ckpt, selected),
                         excluded=excluded, config=ckpt.config)
    if params.method == "lora":
        alpha, rank = config.get("alpha"), config.get("r")
        if isinstance(alpha, (int, float)) and isinstance(rank, (int, float)) and rank:
            modules = {c[: -len(".lora_A")] for g in params.layers.values() for c in g if c.endswith(".lora_A")}
            params.scaling = {m: float(alpha) / float(rank) for m in modules}
    return params
