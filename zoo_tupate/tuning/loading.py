"""Loading a tuned folder back as a :class:`~zoo_tupate.tuning.methods.Tunable`: PEFT (LoRA, BitFit), deep
prefixes and AdapterHub bottleneck adapters (zoo-tupate's own, or a Hub ``pf`` adapter with its head)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import CorruptCheckpoint
from zoo_tupate.tuning.bottleneck import is_pfeiffer, load_bottleneck_weights, read_head_config
from zoo_tupate.tuning.methods import (
    METHOD_NAMES,
    MethodOptions,
    Tunable,
    _quiet,
    build,
    load_base,
    options_from_settings,
)
from zoo_tupate.tuning.prefix import CONFIG_NAME, load_prefix_weights


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """``adapter_config.json`` of a tuned folder (a :class:`CorruptCheckpoint` when unreadable)."""
    from zoo_tupate.readers.base import read_json_bounded

    path = folder / CONFIG_NAME
    config = read_json_bounded(path, folder, "adapter config")  # bounded, link-checked: it may come from the zoo
    if not isinstance(config, dict):
        raise CorruptCheckpoint(f"{path}: expected a JSON object")
    return config


def load_tuned(folder: str | Path, base_model: str | None = None) -> Tunable:
    """Load a folder saved by :meth:`Tunable.save` onto ``base_model`` (default: the config's base model)."""
    from peft import PeftConfig, PeftModel

    folder = Path(folder)
    config = read_adapter_config(folder)
    meta = config.get("zoo_tupate") or {}
    base_model = base_model or config.get("base_model_name_or_path") or config.get("model_name")
    if not base_model:
        raise CorruptCheckpoint(f"{folder}: no base model named; pass one")
    method = meta.get("method") or ("prefix" if config.get("peft_type") == "PREFIX_TUNING" else None)
    if not meta and is_pfeiffer(config):  # an AdapterHub pf adapter tuned elsewhere: its head says the labels
        head = read_head_config(folder)
        meta = {"method": "bottleneck", "num_labels": head["num_labels"], "problem": head["problem"]}
        method = "bottleneck"
    if method not in METHOD_NAMES or "num_labels" not in meta:
        raise CorruptCheckpoint(f"{folder / CONFIG_NAME}: not a zoo-tupate tuned adapter (no zoo_tupate keys)")
    num_labels, problem = int(meta["num_labels"]), str(meta.get("problem", "classification"))
    init_seed = int(meta.get("init_seed", 0))
    base_id = meta.get("base_model_id") or config.get("base_model_name_or_path") or config.get("model_name") \
        or base_model
    if method == "bottleneck":
        settings = dict(meta.get("method_config") or {})
        options = options_from_settings("bottleneck", settings)
        tunable = build("bottleneck", base_model, num_labels, problem, base_id, init_seed, options,
                        name=str(config.get("name") or "adapter"))
        load_bottleneck_weights(folder, tunable.model)
        tunable.settings = settings or tunable.settings
        return tunable
    if method == "prefix":
        options = MethodOptions(prefix_length=int(config["num_virtual_tokens"]))
        tunable = build("prefix", base_model, num_labels, problem, base_id, init_seed, options)
        load_prefix_weights(folder, tunable.model)
        tunable.settings = dict(meta.get("method_config") or tunable.settings)
        return tunable
    model = load_base(base_model, num_labels, problem, init_seed)
    peft_config = PeftConfig.from_peft_type(**{k: v for k, v in config.items() if k != "zoo_tupate"})
    with _quiet():
        wrapped = PeftModel.from_pretrained(model, str(folder), config=peft_config)
    settings = dict(meta.get("method_config") or {})
    extra = {k: v for k, v in meta.items() if k not in {"method", "method_config", "num_labels", "problem"}}
    return Tunable(method, wrapped, settings, num_labels, problem, base_id, extra)
