"""Deep prefixes (P-Tuning v2) for encoders that take no ``past_key_values`` (transformers 5 BERT family).

Each Transformer layer gets ``n`` learned key and ``n`` learned value vectors (``n × hidden``, split into
heads) that are prepended to that layer's own keys and values; every real token attends to them. This is
done through a registered attention function (transformers' ``AttentionInterface``): the model is switched
to :data:`ATTENTION_NAME`, which looks up the prefix linked to the calling attention module, concatenates
it and pads the attention mask, then runs PyTorch's scaled-dot-product attention.

Storage follows PEFT's prefix-tuning layout, so the folder reads like any prefix checkpoint:
``adapter_model.safetensors`` with ``prompt_embeddings`` of shape ``(tokens, layers·2·hidden)``, ordered
``[layer 0 key, layer 0 value, layer 1 key, ...]``, a PEFT-style ``adapter_config.json``, and the
classification head apart in ``head.safetensors`` (kept out of the embedding).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from zoo_tupate.core.errors import CorruptCheckpoint

#: Name of the attention implementation that prepends prefixes.
ATTENTION_NAME = "zoo_tupate_prefix"
_LINK = "_zoo_tupate_prefix"  # attribute set on each attention module: (DeepPrefix, layer index)
WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
HEAD_NAME = "head.safetensors"


def register_attention() -> None:
    """Register :data:`ATTENTION_NAME` with transformers (attention function and mask builder); idempotent."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if ATTENTION_NAME not in ALL_ATTENTION_FUNCTIONS:
        ALL_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, prefix_attention)
    if ATTENTION_NAME not in ALL_MASK_ATTENTION_FUNCTIONS:
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


class DeepPrefix(nn.Module):
    """Per-layer key/value prefixes held as one ``(tokens, layers·2·hidden)`` matrix (PEFT's layout).

    Initialised like PEFT's ``PrefixEncoder`` without projection (an ``nn.Embedding``: N(0, 1)), from a
    generator seeded with ``init_seed`` so that every prefix tuned for a base model starts equal.
    """

    def __init__(self, num_tokens: int, num_layers: int, hidden: int, heads: int, init_seed: int = 0) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
        self.num_tokens, self.num_layers, self.hidden, self.heads = num_tokens, num_layers, hidden, heads
        generator = torch.Generator().manual_seed(init_seed)
        self.prompt_embeddings = nn.Parameter(
            torch.randn(num_tokens, num_layers * 2 * hidden, generator=generator)
        )
        #: When False the prefix positions are masked out: the model then behaves as the base model.
        self.enabled = True

    def key_value(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s prefix keys and values, each ``(heads, tokens, head_dim)``."""
        start = 2 * layer * self.hidden
        key = self.prompt_embeddings[:, start:start + self.hidden]
        value = self.prompt_embeddings[:, start + self.hidden:start + 2 * self.hidden]
        shape = (self.num_tokens, self.heads, self.hidden // self.heads)
        return key.reshape(shape).transpose(0, 1), value.reshape(shape).transpose(0, 1)


def prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention function: prepend the linked layer's prefix to keys/values, pad the mask, run SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    link = module.__dict__.get(_LINK)
    if link is not None:
        prefix, layer = link
        batch, _, q_len, _ = query.shape
        kv_len = key.shape[2]
        p_key, p_value = prefix.key_value(layer)
        p_key = p_key.to(dtype=key.dtype, device=key.device).unsqueeze(0).expand(batch, -1, -1, -1)
        p_value = p_value.to(dtype=value.dtype, device=value.device).unsqueeze(0).expand(batch, -1, -1, -1)
        key = torch.cat([p_key, key], dim=2)
        value = torch.cat([p_value, value], dim=2)
        attention_mask = _extend_mask(attention_mask, batch, q_len, kv_len, prefix.num_tokens, prefix.enabled,
                                      query)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _extend_mask(
    mask: torch.Tensor | None, batch: int, q_len: int, kv_len: int, tokens: int, visible: bool, like: torch.Tensor
) -> torch.Tensor | None:
    """Prepend ``tokens`` key columns to a 4-D mask: attendable (``visible``) or masked out."""
    if mask is None:
        if visible:
            return None
        mask = torch.ones(batch, 1, q_len, kv_len, dtype=torch.bool, device=like.device)
    if mask.dtype == torch.bool:
        pad = torch.full((*mask.shape[:-1], tokens), visible, dtype=torch.bool, device=mask.device)
    else:  # additive float mask
        fill = 0.0 if visible else torch.finfo(mask.dtype).min
        pad = torch.full((*mask.shape[:-1], tokens), fill, dtype=mask.dtype, device=mask.device)
    return torch.cat([pad, mask], dim=-1)


def attach_prefix(model: nn.Module, prefix: DeepPrefix, attention_modules: list[nn.Module]) -> None:
    """Link each layer's attention module to ``prefix`` and switch the model to the prefix attention."""
    if len(attention_modules) != prefix.num_layers:
        raise ValueError(f"{len(attention_modules)} attention modules for a {prefix.num_layers}-layer prefix")
    register_attention()
    for layer, module in enumerate(attention_modules):
        # stored outside nn.Module registration: the prefix is not a submodule of each attention block
        module.__dict__[_LINK] = (prefix, layer)
    model.set_attn_implementation(ATTENTION_NAME)


class PrefixModel(nn.Module):
    """A frozen sequence-classification model with deep prefixes; prefix and head are trainable."""

    def __init__(self, model: nn.Module, prefix: DeepPrefix, attention_modules: list[nn.Module],
                 head_modules: list[str]) -> None:
        super().__init__()
        self.model = model
        self.prefix = prefix
        self.head_modules = list(head_modules)
        for param in model.parameters():
            param.requires_grad_(False)
        for name in self.head_modules:
            for param in model.get_submodule(name).parameters():
                param.requires_grad_(True)
        attach_prefix(model, prefix, attention_modules)

    def forward(self, **batch: Any) -> Any:
        return self.model(**batch)

    def head_state(self) -> dict[str, torch.Tensor]:
        """The classification head's tensors, keyed by their name in the model."""
        state = self.model.state_dict()
        return {k: v for k, v in state.items() if any(k == h or k.startswith(h + ".") for h in self.head_modules)}


def save_prefix(folder: Path, model: PrefixModel, config: dict[str, Any]) -> None:
    """Write ``adapter_model.safetensors``, ``adapter_config.json`` and ``head.safetensors`` to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tensor = model.prefix.prompt_embeddings.detach().to("cpu", torch.float32).contiguous()
    save_file({"prompt_embeddings": tensor}, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    head = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.head_state().items()}
    save_file(head, str(folder / HEAD_NAME), metadata={"format": "pt"})
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def prefix_config(prefix: DeepPrefix, base_model_id: str, task_type: str = "SEQ_CLS",
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A PEFT-style prefix-tuning ``adapter_config.json`` (no reparametrisation) plus zoo_tupate keys."""
    config = {
        "peft_type": "PREFIX_TUNING",
        "task_type": task_type,
        "num_virtual_tokens": prefix.num_tokens,
        "num_layers": prefix.num_layers,
        "token_dim": prefix.hidden,
        "num_attention_heads": prefix.heads,
        "encoder_hidden_size": prefix.hidden,
        "num_transformer_submodules": 1,
        "prefix_projection": False,
        "inference_mode": True,
        "base_model_name_or_path": base_model_id,
        "revision": None,
    }
    if extra:
        config["zoo_tupate"] = extra
    return config


def load_prefix_weights(folder: Path, model: PrefixModel) -> None:
    """Load ``prompt_embeddings`` and the head saved by :func:`save_prefix` into ``model``."""
    try:
        weights = load_file(str(folder / WEIGHTS_NAME))
        head = load_file(str(folder / HEAD_NAME))
    except (OSError, RuntimeError) as exc:
        raise CorruptCheckpoint(f"{folder}: cannot read the prefix weights ({exc})") from None
    tensor = weights.get("prompt_embeddings")
    if tensor is None or tuple(tensor.shape) != tuple(model.prefix.prompt_embeddings.shape):
        shape = None if tensor is None else tuple(tensor.shape)
        raise CorruptCheckpoint(
            f"{folder / WEIGHTS_NAME}: prompt_embeddings shape {shape} does not fit this model "
            f"({tuple(model.prefix.prompt_embeddings.shape)})"
        )
    with torch.no_grad():
        model.prefix.prompt_embeddings.copy_(tensor)
    missing = set(model.head_state()) - set(head)
    if missing:
        raise CorruptCheckpoint(f"{folder / HEAD_NAME}: head tensors missing: {', '.join(sorted(missing))}")
    model.model.load_state_dict(head, strict=False)
