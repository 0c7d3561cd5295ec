"""Building, saving and loading the tunable models: LoRA and BitFit (through PEFT), deep prefixes and
AdapterHub's Pfeiffer bottleneck adapters (:mod:`.bottleneck`, saved in AdapterHub's format).

Every model starts from a fixed ``init_seed`` (the classification head, LoRA's A matrices, the prefixes),
kept apart from the data-order seed, so that raw-parameter embeddings of tasks tuned on one base model
start from the same point and stay comparable.

BitFit runs as PEFT's BEFT: a zero-initialised additive bias on each targeted Linear layer, whose saved
``beft_bias`` tensors are the bias *changes*. The targets are the encoder layers' Linear layers, named
explicitly (BEFT's defaults target only ``value`` for BERT and nothing for DistilBERT, and ``all-linear``
catches the pooler too): 6,912 values per BERT-base layer. The paper's Table 1 (8.3K) also counts the
LayerNorm biases, which BEFT cannot target.
"""

from __future__ import annotations

import json
import re
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo_tupate.core.errors import TuningError
from zoo_tupate.core.models import missing_weights_hint, resolve_model
from zoo_tupate.tuning.bottleneck import (
    REDUCTION_FACTOR,
    BottleneckModel,
    adapter_name,
    build_bottleneck,
    save_bottleneck,
)
from zoo_tupate.tuning.bottleneck import settings as bottleneck_settings
from zoo_tupate.tuning.prefix import (
    CONFIG_NAME,
    DeepPrefix,
    PrefixModel,
    prefix_config,
    save_prefix,
)

METHOD_NAMES: tuple[str, ...] = ("lora", "bitfit", "prefix", "bottleneck")
#: What ``tune --method all`` tunes: the paper's three methods (bottleneck is asked for by name).
ALL_METHODS: tuple[str, ...] = ("lora", "bitfit", "prefix")

#: The paper's learning-rate grids (§4.3); the first value is the default without ``--lr-grid``.
LR_GRIDS: dict[str, tuple[float, ...]] = {
    "lora": (5e-4, 2e-4),
    "bitfit": (4e-4, 1e-4),
    "prefix": (1e-2, 1e-3),
    "bottleneck": (1e-4, 1e-3),  # AdapterHub's pf adapters were trained at 1e-4
}


@dataclass(frozen=True)
class Architecture:
    """Where each method attaches in one family of encoders (module names inside the model)."""

    lora_targets: tuple[str, ...]
    beft_targets: tuple[str, ...]  # in-layer module paths, each a Linear with a bias
    layer_prefix: str  # regex matching the path up to and including ``<layer index>.``
    attention: str  # in-layer path of the self-attention module the prefix attention function sees
    heads: tuple[str, ...]  # the classification head modules (trained, saved, kept out of embeddings)

    def beft_regex(self) -> str:
        """One regex (PEFT ``fullmatch``) for exactly the encoder layers' Linear layers."""
        inner = "|".join(re.escape(t) for t in self.beft_targets)
        return rf".*{self.layer_prefix}(?:{inner})"


_BERT_LIKE = Architecture(
    lora_targets=("query", "value"),
    beft_targets=(
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense",
    ),
    layer_prefix=r"encoder\.layer\.\d+\.",
    attention="attention.self",
    heads=("classifier",),
)
_DISTILBERT = Architecture(
    lora_targets=("q_lin", "v_lin"),
    beft_targets=(
        "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2",
    ),
    layer_prefix=r"transformer\.layer\.\d+\.",
    attention="attention",
    heads=("pre_classifier", "classifier"),
)
ARCHITECTURES: dict[str, Architecture] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "camembert": _BERT_LIKE,
    "electra": _BERT_LIKE,
    "distilbert": _DISTILBERT,
}


@dataclass
class MethodOptions:
    """Method hyperparameters (the paper's defaults). They define the embedding space: keep them fixed."""

    lora_r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None  # None: the architecture's (query, value)
    prefix_length: int = 20
    reduction_factor: int = REDUCTION_FACTOR  # bottleneck: AdapterHub's Pfeiffer default


@dataclass
class Tunable:
    """A model ready to train: which parameters move, how to save them, and the settings that define it."""

    method: str
    model: nn.Module
    settings: dict[str, Any]
    num_labels: int
    problem: str
    base_model_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """The parameters that receive gradients."""
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def metadata(self) -> dict[str, Any]:
        """What a reader needs to load the checkpoint back and to know its space (stored as ``zoo_tupate``)."""
        return {
            "method": self.method,
            "method_config": self.settings,
            "num_labels": self.num_labels,
            "problem": self.problem,
            **self.extra,
        }

    def save(self, folder: Path) -> Path:
        """Save the adapter (PEFT format) with its head to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(self.model, BottleneckModel):
            save_bottleneck(folder, self.model, self.base_model_id, extra=self.metadata())
            return folder
        if isinstance(self.model, PrefixModel):
            save_prefix(folder, self.model, prefix_config(self.model.prefix, self.base_model_id,
                                                          extra=self.metadata()))
            return folder
        self.model.peft_config["default"].base_model_name_or_path = self.base_model_id
        with _quiet():
            self.model.save_pretrained(str(folder))
        peft_card = folder / "README.md"
        if peft_card.exists():  # PEFT's placeholder card; the embedding card replaces it
            peft_card.unlink()
        config_path = folder / CONFIG_NAME
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["zoo_tupate"] = self.metadata()
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return folder


def architecture_for(model_type: str, method: str, base_model: str) -> Architecture:
    """The :class:`Architecture` of ``model_type``, or a :class:`TuningError` naming the model."""
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise TuningError(
            f"{base_model}: {method} cannot target the layers of model type {model_type!r}"
            f" (supported: {', '.join(sorted(ARCHITECTURES))})"
        )
    return arch


def load_config(base_model: str) -> Any:
    """The base model's transformers config (a :class:`TuningError` when it cannot be read)."""
    from transformers import AutoConfig

    try:
        with _quiet():
            return AutoConfig.from_pretrained(resolve_model(base_model))
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuningError(f"{base_model}: cannot load the base model config ({first})"
                          f"{missing_weights_hint(base_model)}") from None


_KEPT: dict[tuple[Any, ...], tuple[nn.Module, torch.Tensor]] = {}
_KEEP = {"on": False}


def keep_base_models(on: bool = True) -> None:
    """Keep loaded base models in this process (a worker running many probes on one base model): each
    :func:`load_base` after the first returns a copy of the kept model, exactly as a fresh load would be
    (weights, head init and the random state after it), without reading the weights again."""
    _KEEP["on"] = on
    if not on:
        _KEPT.clear()


def load_base(base_model: str, num_labels: int, problem: str, init_seed: int) -> nn.Module:
    """The base model with a sequence-classification head initialised from ``init_seed``."""
    if not _KEEP["on"]:
        return _load_base(base_model, num_labels, problem, init_seed)
    import copy

    key = (resolve_model(base_model), num_labels, problem, init_seed)
    if key not in _KEPT:
        model = _load_base(base_model, num_labels, problem, init_seed)
        while len(_KEPT) >= 2:
            _KEPT.pop(next(iter(_KEPT)))
        _KEPT[key] = (copy.deepcopy(model), torch.get_rng_state())
        return model
    kept, rng = _KEPT[key]
    torch.set_rng_state(rng)
    return copy.deepcopy(kept)


def _load_base(base_model: str, num_labels: int, problem: str, init_seed: int) -> nn.Module:
    from transformers import AutoModelForSequenceClassification

    config = load_config(base_model)
    config.num_labels = num_labels  # also resets id2label/label2id
    config.problem_type = "regression" if problem == "regression" else "single_label_classification"
    torch.manual_seed(init_seed)
    try:
        with _quiet():
            return AutoModelForSequenceClassification.from_pretrained(resolve_model(base_model), config=config,
                                                                      dtype=torch.float32)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuningError(f"{base_model}: cannot load the base model ({first})") from None


def build(
    method: str,
    base_model: str,
    num_labels: int,
    problem: str,
    base_model_id: str,
    init_seed: int = 0,
    options: MethodOptions | None = None,
    name: str | None = None,
) -> Tunable:
    """Load ``base_model`` and wrap it for ``method`` (``lora``, ``bitfit``, ``prefix`` or ``bottleneck``).

    ``name`` (bottleneck only) is the adapter's name inside AdapterHub's keys (default ``adapter``).
    """
    if method not in METHOD_NAMES:
        raise TuningError(f"unknown tuning method {method!r} (choose from {', '.join(METHOD_NAMES)})")
    options = options or MethodOptions()
    config = load_config(base_model)
    extra = {"init_seed": init_seed, "base_model_id": base_model_id}
    if method == "bottleneck":
        model = load_base(base_model, num_labels, problem, init_seed)
        wrapped = build_bottleneck(model, base_model, adapter_name(name), num_labels, init_seed,
                                   options.reduction_factor)
        settings = bottleneck_settings(options.reduction_factor)
        return Tunable(method, wrapped, settings, num_labels, problem, base_model_id, extra)
    arch = architecture_for(getattr(config, "model_type", "?"), method, base_model)
    model = load_base(base_model, num_labels, problem, init_seed)
    if method == "prefix":
        wrapped, settings = _build_prefix(model, arch, base_model, init_seed, options)
    else:
        wrapped, settings = _build_peft(method, model, arch, base_model, init_seed, options)
    return Tunable(method, wrapped, settings, num_labels, problem, base_model_id, extra)


def _build_peft(method: str, model: nn.Module, arch: Architecture, base_model: str, init_seed: int,
                options: MethodOptions) -> tuple[nn.Module, dict[str, Any]]:
    from peft import BeftConfig, LoraConfig, TaskType, get_peft_model

    if method == "lora":
        targets = tuple(options.lora_targets or arch.lora_targets)
        peft_config = LoraConfig(
            task_type=TaskType.SEQ_CLS, r=options.lora_r, lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout, target_modules=list(targets),
            modules_to_save=list(arch.heads),
        )
        settings = {"r": options.lora_r, "lora_alpha": options.lora_alpha, "target_modules": sorted(targets)}
        expected = len(targets)
    else:
        peft_config = BeftConfig(task_type=TaskType.SEQ_CLS, target_modules=arch.beft_regex(),
                                 modules_to_save=list(arch.heads))
        settings = {"target_modules": sorted(arch.beft_targets), "layer_norm_biases": False}
        expected = len(arch.beft_targets)
    torch.manual_seed(init_seed)  # LoRA's A matrices: the same start for every task on this base model
    try:
        with _quiet():
            wrapped = get_peft_model(model, peft_config)
    except ValueError as exc:
        raise TuningError(f"{base_model}: {method} cannot target this model ({exc})") from None
    layers = _count_targets(wrapped, "lora_A" if method == "lora" else "beft_bias")
    if not layers or any(count != expected for count in layers.values()):
        raise TuningError(
            f"{base_model}: {method} found {sum(layers.values())} target modules over {len(layers)} layers,"
            f" expected {expected} per layer ({', '.join(sorted(settings['target_modules']))})"
        )
    return wrapped, settings


def _count_targets(model: nn.Module, marker: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for name, _ in model.named_parameters():
        if f".{marker}." in name or name.endswith(f".{marker}"):
            match = re.search(r"\.layer\.(\d+)\.", name)
            if match:
                counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
    return counts


def _build_prefix(model: nn.Module, arch: Architecture, base_model: str, init_seed: int,
                  options: MethodOptions) -> tuple[PrefixModel, dict[str, Any]]:
    config = model.config
    attention = _attention_modules(model, arch, base_model)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None)
    if not hidden or not heads:
        raise TuningError(f"{base_model}: prefix tuning needs the hidden size and number of heads in its config")
    prefix = DeepPrefix(options.prefix_length, len(attention), int(hidden), int(heads), init_seed=init_seed)
    try:
        wrapped = PrefixModel(model, prefix, attention, list(arch.heads))
    except (ValueError, KeyError, AttributeError) as exc:
        raise TuningError(f"{base_model}: prefix tuning cannot attach to this model ({exc})") from None
    settings = {"num_virtual_tokens": options.prefix_length, "prefix_projection": False}
    return wrapped, settings


def _attention_modules(model: nn.Module, arch: Architecture, base_model: str) -> list[nn.Module]:
    layer = arch.layer_prefix.replace(r"\d+", r"(\d+)")
    pattern = re.compile(r"(?:.*\.)?" + layer + re.escape(arch.attention))
    found: dict[int, nn.Module] = {}
    for name, module in model.named_modules():
        match = pattern.fullmatch(name)
        if match:
            found[int(match.group(1))] = module
    if not found or sorted(found) != list(range(len(found))):
        raise TuningError(f"{base_model}: prefix tuning found no attention modules to attach to")
    return [found[i] for i in range(len(found))]


def options_from_settings(method: str, settings: dict[str, Any]) -> MethodOptions:
    """The :class:`MethodOptions` that reproduce a recorded ``method_config`` (for probes)."""
    options = MethodOptions()
    if method == "lora":
        options.lora_r = int(settings.get("r", options.lora_r))
        options.lora_alpha = int(settings.get("lora_alpha", options.lora_alpha))
        targets = settings.get("target_modules")
        if isinstance(targets, (list, tuple)) and targets and all(isinstance(t, str) for t in targets):
            options.lora_targets = tuple(sorted(targets))
    elif method == "prefix":
        options.prefix_length = int(settings.get("num_virtual_tokens", options.prefix_length))
    elif method == "bottleneck":
        options.reduction_factor = int(settings.get("reduction_factor", options.reduction_factor))
    return options


def options_dict(options: MethodOptions) -> dict[str, Any]:
    """JSON-ready options."""
    return asdict(options)


@contextmanager
def _quiet():
    """Silence transformers/PEFT load reports and warnings (missing head weights are expected here)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
