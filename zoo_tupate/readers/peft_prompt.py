"""PEFT prompt methods: prefix tuning (deep, per layer), prompt tuning and P-tuning (input level).

Prefix tuning stores ``prompt_embeddings`` of shape ``(tokens, layers * 2 * hidden)``; PEFT views the
last axis as ``[layer 0 keys, layer 0 values, layer 1 keys, ...]``. Layer ``l`` therefore yields
``prefix.key`` and ``prefix.value``, each ``(tokens, hidden)``: ``2 * tokens * hidden`` values per layer
(30,720 for BERT-base with 20 tokens). The paper's Table 1 gives 15.4K, which matches keys *or* values of
one layer, or 10 tokens: we keep both keys and values, as the method tunes both.

Prompt tuning and P-tuning v1 add vectors at the input only: there are no layers, and the embedding is
the flattened ``(tokens, hidden)`` prompt (``layers`` is empty).
"""

from __future__ import annotations

from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.readers.base import CheckpointFolder, TunedParams, base_model_from_config

NAME = "peft-prompt"
_PREFIX_TYPES = {"PREFIX_TUNING"}
_INPUT_TYPES = {"PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING"}


def _prompt_key(ckpt: CheckpointFolder) -> str | None:
    for key in ckpt.tensors:
        if key == "prompt_embeddings" or key.endswith(".prompt_embeddings"):
            return key
    return None


def detect(ckpt: CheckpointFolder) -> bool:
    """A PEFT prompt-learning checkpoint (a ``prompt_embeddings`` tensor)."""
    return _prompt_key(ckpt) is not None


def read(ckpt: CheckpointFolder, include_heads: bool = False, **_: object) -> TunedParams:
    """Split deep prefixes per layer; keep input-level prompts as one shared tensor."""
    key = _prompt_key(ckpt)
    assert key is not None
    peft_type = str(ckpt.config.get("peft_type", "")).upper()
    array = ckpt.load([key])[key]
    if array.ndim != 2:
        raise UnsupportedCheckpoint(f"{ckpt.weights}: prompt_embeddings has shape {array.shape}, expected 2-D")
    excluded = sorted(k for k in ckpt.tensors if k != key)
    base = base_model_from_config(ckpt.config)
    if peft_type in _INPUT_TYPES:
        return TunedParams("prompt", NAME, base, layers={}, shared={"prompt_embeddings": array},
                           excluded=excluded, config=ckpt.config,
                           notes=["input-level prompt: no Transformer layers, the embedding is the whole prompt"])
    if peft_type and peft_type not in _PREFIX_TYPES:
        raise UnsupportedCheckpoint(f"{ckpt.weights}: prompt_embeddings with unknown peft_type {peft_type!r}")
    num_layers = _num_layers(ckpt, array.shape[1])
    hidden = array.shape[1] // (2 * num_layers)
    layers = {}
    for layer in range(num_layers):
        block = array[:, layer * 2 * hidden:(layer + 1) * 2 * hidden]
        layers[layer] = {"prefix.key": block[:, :hidden], "prefix.value": block[:, hidden:]}
    return TunedParams("prefix", NAME, base, layers=layers, excluded=excluded, config=ckpt.config)


def _num_layers(ckpt: CheckpointFolder, width: int) -> int:
    config = ckpt.config
    layers = config.get("num_layers")
    if not isinstance(layers, int) or layers <= 0:
        token_dim = config.get("token_dim") or config.get("encoder_hidden_size")
        if isinstance(token_dim, int) and token_dim > 0 and width % (2 * token_dim) == 0:
            layers = width // (2 * token_dim)
        else:
            raise UnsupportedCheckpoint(
                f"{ckpt.weights}: prefix prompt_embeddings of width {width} but the config gives no num_layers"
            )
    if width % (2 * layers):
        raise UnsupportedCheckpoint(
            f"{ckpt.weights}: prefix width {width} is not layers·2·hidden for num_layers={layers}"
        )
    return layers
