"""AdapterHub's Pfeiffer bottleneck adapter (``seq_bn``, the Hub's ``pf-*`` adapters) in plain torch.

Per Transformer layer, after the FFN output (``BertOutput``: ``dense``, ``dropout``, ``LayerNorm``), with
``h = dropout(dense(intermediate))`` and ``x`` the attention block's output, as ``adapters`` 1.3 computes it
(``original_ln_before``, ``residual_before_ln``, ``original_ln_after``, no adapter layer norms, scaling 1)::

    out = LayerNorm(h + up(relu(down(LayerNorm(h + x)))) + x)

``down``: Linear(d, d/16), ``up``: Linear(d/16, d), both N(0, 0.02) with zero biases (``init_weights="bert"``);
the same ``LayerNorm`` (frozen) is applied twice. The head is AdapterHub's classification head on the first
token's last hidden state (no pooler): Dropout, Linear(d, d), tanh, Dropout, Linear(d, labels).

Saved exactly as ``adapters``' ``save_adapter`` writes it: ``adapter_config.json`` (plus a ``zoo_tupate``
block), ``pytorch_adapter.bin`` (``torch.save`` of a plain state dict, keys
``<prefix>.encoder.layer.N.output.adapters.<name>.adapter_{down.0,up}.{weight,bias}``),
``head_config.json`` and ``pytorch_model_head.bin`` (keys ``heads.<name>.{1,4}.{weight,bias}``).
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo_tupate.core.errors import CorruptCheckpoint, TuningError

ADAPTER_WEIGHTS = "pytorch_adapter.bin"
HEAD_WEIGHTS = "pytorch_model_head.bin"
HEAD_CONFIG = "head_config.json"
CONFIG_NAME = "adapter_config.json"
REDUCTION_FACTOR = 16
NON_LINEARITY = "relu"
#: ``adapters`` 1.3's ``SeqBnConfig()`` ("pfeiffer", "seq_bn") exactly as ``save_adapter`` writes it.
PFEIFFER_CONFIG: dict[str, Any] = {
    "adapter_residual_before_ln": False, "cross_adapter": False, "dropout": 0.0, "factorized_phm_W": True,
    "factorized_phm_rule": False, "hypercomplex_nonlinearity": "glorot-uniform", "init_weights": "bert",
    "init_weights_seed": None, "inv_adapter": None, "inv_adapter_reduction_factor": None, "is_parallel": False,
    "learn_phm": True, "leave_out": [], "ln_after": False, "ln_before": False, "mh_adapter": False,
    "non_linearity": NON_LINEARITY, "original_ln_after": True, "original_ln_before": True, "output_adapter": True,
    "phm_bias": True, "phm_c_init": "normal", "phm_dim": 4, "phm_init_range": 0.0001, "phm_layer": False,
    "phm_rank": 1, "reduction_factor": REDUCTION_FACTOR, "residual_before_ln": True, "scaling": 1.0,
    "shared_W_phm": False, "shared_phm_rule": True, "stochastic_depth": 0.0, "use_gating": False,
}
#: The settings that decide the forward pass; a config differing in any of them is not Pfeiffer.
_DEFINING = ("mh_adapter", "output_adapter", "original_ln_before", "original_ln_after", "residual_before_ln",
             "adapter_residual_before_ln", "ln_before", "ln_after", "use_gating", "is_parallel", "phm_layer",
             "scaling", "non_linearity")
#: Model types whose layers have a ``BertOutput``-style FFN output (``encoder.layer.N.output``).
MODEL_CLASSES = {"bert": "BertAdapterModel", "roberta": "RobertaAdapterModel",
                 "xlm-roberta": "XLMRobertaAdapterModel", "electra": "ElectraAdapterModel"}
VERSION = "adapters.1.3.0"


class Adapter(nn.Module):
    """One bottleneck: ``adapter_down`` = Sequential(Linear(d, m), ReLU), ``adapter_up`` = Linear(m, d)."""

    def __init__(self, hidden: int, reduction_factor: int = REDUCTION_FACTOR) -> None:
        super().__init__()
        width = max(1, hidden // reduction_factor)
        self.adapter_down = nn.Sequential(nn.Linear(hidden, width), nn.ReLU())
        self.adapter_up = nn.Linear(width, hidden)
        for linear in (self.adapter_down[0], self.adapter_up):
            nn.init.normal_(linear.weight, mean=0.0, std=0.02)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter_up(self.adapter_down(x))


def _output_forward(self: nn.Module, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
    """``BertOutput.forward`` with the Pfeiffer adapter (bound to each layer's output module)."""
    h = self.dropout(self.dense(hidden_states))
    residual = h
    h = self.LayerNorm(h + input_tensor)
    h = self.adapters[self.active_adapter](h) + residual
    return self.LayerNorm(h + input_tensor)


def classification_head(hidden: int, num_labels: int, dropout: float) -> nn.Sequential:
    """AdapterHub's 2-layer classification head (indices 1 and 4 hold the weights)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.Tanh(), nn.Dropout(dropout),
                         nn.Linear(hidden, num_labels))


class BottleneckModel(nn.Module):
    """A frozen encoder with a Pfeiffer adapter per layer and AdapterHub's head; adapters and head train.

    The encoder sits under its own ``base_model_prefix`` (``bert``, ``roberta``), so parameter names are
    AdapterHub's (``bert.encoder.layer.0.output.adapters.<name>.adapter_up.weight``, ``heads.<name>.4.bias``).
    """

    def __init__(self, encoder: nn.Module, prefix: str, name: str, num_labels: int,
                 reduction_factor: int = REDUCTION_FACTOR) -> None:
        super().__init__()
        self.prefix, self.name, self.reduction_factor = prefix, name, reduction_factor
        setattr(self, prefix, encoder)
        for param in encoder.parameters():
            param.requires_grad_(False)
        config = encoder.config
        hidden = int(config.hidden_size)
        outputs = output_modules(encoder)
        for module in outputs:
            module.adapters = nn.ModuleDict({name: Adapter(hidden, reduction_factor)})
            module.active_adapter = name
            module.forward = types.MethodType(_output_forward, module)
        dropout = getattr(config, "classifier_dropout", None)
        dropout = dropout if dropout is not None else float(getattr(config, "hidden_dropout_prob", 0.0) or 0.0)
        self.heads = nn.ModuleDict({name: classification_head(hidden, num_labels, dropout)})
        self.num_layers = len(outputs)

    @property
    def encoder_model(self) -> nn.Module:
        return getattr(self, self.prefix)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder_model(input_ids=input_ids, **kwargs)[0]
        return SequenceClassifierOutput(logits=self.heads[self.name](hidden[:, 0]))

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The adapters' tensors under AdapterHub's names."""
        return {k: v for k, v in self.state_dict().items() if ".adapters." in k}

    def head_state(self) -> dict[str, torch.Tensor]:
        """The head's tensors (``heads.<name>.1.weight`` ...)."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("heads.")}


def output_modules(encoder: nn.Module) -> list[nn.Module]:
    """Each layer's FFN output module (``encoder.layer.N.output`` with ``dense``, ``dropout``, ``LayerNorm``)."""
    found: dict[int, nn.Module] = {}
    for name, module in encoder.named_modules():
        match = re.fullmatch(r"encoder\.layer\.(\d+)\.output", name)
        if match and all(hasattr(module, a) for a in ("dense", "dropout", "LayerNorm")):
            found[int(match.group(1))] = module
    if not found or sorted(found) != list(range(len(found))):
        raise TuningError("bottleneck: no BertOutput-style FFN output modules (encoder.layer.N.output) found")
    return [found[i] for i in range(len(found))]


def adapter_name(dataset: str | None) -> str:
    """The adapter's name inside its keys: the dataset's last path part, lower case, ``[a-z0-9_]`` only."""
    tail = re.split(r"[/\\]", (dataset or "").rstrip("/\\"))[-1]
    name = re.sub(r"[^a-z0-9_]+", "_", tail.lower()).strip("_")
    return name or "adapter"


def build_bottleneck(model: nn.Module, base_model: str, name: str, num_labels: int, init_seed: int,
                     reduction_factor: int = REDUCTION_FACTOR) -> BottleneckModel:
    """Wrap a loaded sequence-classification model's encoder (its own head is dropped) with Pfeiffer adapters."""
    model_type = getattr(model.config, "model_type", "?")
    if model_type not in MODEL_CLASSES:
        raise TuningError(f"{base_model}: bottleneck (Pfeiffer) cannot target model type {model_type!r} "
                          f"(supported: {', '.join(sorted(MODEL_CLASSES))})")
    prefix = getattr(model, "base_model_prefix", "") or model_type
    encoder = getattr(model, prefix, None)
    if encoder is None:
        raise TuningError(f"{base_model}: bottleneck found no encoder under {prefix!r}")
    torch.manual_seed(init_seed)  # the adapters' and head's start: the same for every task on this base model
    try:
        return BottleneckModel(encoder, prefix, name, num_labels, reduction_factor)
    except (AttributeError, ValueError) as exc:
        raise TuningError(f"{base_model}: bottleneck cannot attach to this model ({exc})") from None


def adapter_config(model: BottleneckModel, base_model_id: str, extra: dict[str, Any] | None = None) -> dict:
    """``adapter_config.json`` as ``save_adapter`` writes it (plus ``zoo_tupate`` when given)."""
    config = {"config": {**PFEIFFER_CONFIG, "reduction_factor": model.reduction_factor},
              **_envelope(model, base_model_id)}
    if extra:
        config["zoo_tupate"] = extra
    return config


def head_config(model: BottleneckModel, base_model_id: str) -> dict[str, Any]:
    """``head_config.json`` of AdapterHub's classification head."""
    labels = model.heads[model.name][4].out_features
    return {
        "config": {"activation_function": "tanh", "bias": True, "dropout_prob": None,
                   "head_type": "classification", "label2id": {f"LABEL_{i}": i for i in range(labels)},
                   "layers": 2, "num_labels": labels, "use_pooler": False},
        **_envelope(model, base_model_id),
    }


def _envelope(model: BottleneckModel, base_model_id: str) -> dict[str, Any]:
    """The keys AdapterHub writes around an adapter's or a head's own config (the model it belongs to)."""
    enc = model.encoder_model.config
    return {"hidden_size": int(enc.hidden_size), "model_class": MODEL_CLASSES.get(enc.model_type, "BertAdapterModel"),
            "model_name": base_model_id, "model_type": enc.model_type, "name": model.name, "version": VERSION}


def save_bottleneck(folder: Path, model: BottleneckModel, base_model_id: str,
                    extra: dict[str, Any] | None = None) -> None:
    """Write the four AdapterHub files to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)

    def plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in state.items()}

    torch.save(plain(model.adapter_state()), folder / ADAPTER_WEIGHTS)
    torch.save(plain(model.head_state()), folder / HEAD_WEIGHTS)
    for path, config in ((CONFIG_NAME, adapter_config(model, base_model_id, extra)),
                         (HEAD_CONFIG, head_config(model, base_model_id))):
        (folder / path).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def is_pfeiffer(config: dict[str, Any]) -> bool:
    """Whether an AdapterHub ``config`` block runs the forward pass implemented here."""
    block = config.get("config")
    if block == "pfeiffer":
        return True
    if not isinstance(block, dict):
        return False
    return all(block.get(k, PFEIFFER_CONFIG[k]) == PFEIFFER_CONFIG[k] for k in _DEFINING)


def settings(reduction_factor: int = REDUCTION_FACTOR) -> dict[str, Any]:
    """The method settings recorded with a tuned adapter (``method_config``), also those of a Hub ``pf`` one."""
    return {"config": "pfeiffer", "reduction_factor": reduction_factor, "non_linearity": NON_LINEARITY}


def pfeiffer_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """:func:`settings` of an AdapterHub ``adapter_config.json`` that is Pfeiffer, else None."""
    if not is_pfeiffer(config):
        return None
    block = config.get("config")
    factor = block.get("reduction_factor") if isinstance(block, dict) else None
    return settings(int(factor) if isinstance(factor, (int, float)) and factor >= 1 else REDUCTION_FACTOR)


def load_bottleneck_weights(folder: Path, model: BottleneckModel) -> None:
    """Load a saved adapter (any adapter name) and its head, if present, into ``model``."""
    config = _json(folder / CONFIG_NAME)
    if not is_pfeiffer(config):
        raise CorruptCheckpoint(f"{folder / CONFIG_NAME}: not a Pfeiffer (seq_bn) bottleneck adapter")
    state = {}
    for file, pattern in ((ADAPTER_WEIGHTS, r"(.*\.adapters\.)[^.]+(\..*)"), (HEAD_WEIGHTS, r"(heads\.)[^.]+(\..*)")):
        path = folder / file
        if not path.is_file():
            if file == ADAPTER_WEIGHTS:
                raise CorruptCheckpoint(f"{path}: missing")
            continue
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a corrupt file
            raise CorruptCheckpoint(f"{path}: cannot load ({exc})") from None
        for key, value in loaded.items():
            match = re.fullmatch(pattern, key)
            if match:
                state[f"{match.group(1)}{model.name}{match.group(2)}"] = value
    missing = [k for k in model.adapter_state() if k not in state]
    if missing:
        raise CorruptCheckpoint(f"{folder}: the adapter lacks {len(missing)} tensors (first: {missing[0]})")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CorruptCheckpoint(f"{folder}: tensors do not fit the model ({str(exc).splitlines()[0]})") from None


def read_head_config(folder: Path) -> dict[str, Any]:
    """``num_labels`` and ``problem`` of an AdapterHub classification head (``head_config.json``)."""
    block = _json(folder / HEAD_CONFIG).get("config")
    labels = block.get("num_labels") if isinstance(block, dict) else None
    if not isinstance(block, dict) or block.get("head_type") != "classification" or not isinstance(labels, int) \
            or labels < 1:
        raise CorruptCheckpoint(f"{folder / HEAD_CONFIG}: not a classification head zoo-tupate can load")
    if block.get("layers", 2) != 2 or block.get("use_pooler") or block.get("activation_function", "tanh") != "tanh":
        raise CorruptCheckpoint(f"{folder / HEAD_CONFIG}: head differs from AdapterHub's 2-layer tanh head")
    return {"num_labels": labels, "problem": "regression" if labels == 1 else "classification"}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise CorruptCheckpoint(f"{path}: expected a JSON object")
    return data
