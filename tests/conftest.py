"""Shared fixtures: tiny BERT models built from a config (no download) and real PEFT checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from fixtures_hub import *  # noqa: E402,F403

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def tiny_config(**overrides):
    from transformers import BertConfig

    values = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=64, num_labels=2)
    values.update(overrides)
    return BertConfig(**values)


def tiny_bert(seed: int = 0, **overrides):
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(**overrides)).eval()


def peft_config(method: str):
    from peft import BeftConfig, IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig

    if method == "lora":
        return LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS")
    if method == "ia3":
        return IA3Config(target_modules=["key", "value", "output.dense"], feedforward_modules=["output.dense"],
                         task_type="SEQ_CLS")
    if method == "bitfit":
        return BeftConfig(target_modules=["query", "key", "value", "attention.output.dense", "intermediate.dense",
                                          "output.dense"], task_type="SEQ_CLS")
    if method == "prefix":
        return PrefixTuningConfig(num_virtual_tokens=5, task_type="SEQ_CLS")
    if method == "prompt":
        return PromptTuningConfig(num_virtual_tokens=5, task_type="SEQ_CLS")
    raise ValueError(method)


def make_checkpoint(folder: Path, method: str = "lora", init_seed: int = 0, perturb_seed: int | None = 1,
                    base_model: str = "tiny-bert") -> Path:
    """Save a real PEFT checkpoint of a tiny BERT; ``perturb_seed`` fills tuned tensors as if trained."""
    from peft import get_peft_model

    model = tiny_bert(0)
    torch.manual_seed(init_seed)
    peft_model = get_peft_model(model, peft_config(method))
    if perturb_seed is not None:
        gen = torch.Generator().manual_seed(perturb_seed)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if param.requires_grad and "classifier" not in name:
                    param.add_(torch.randn(param.shape, generator=gen) * 0.1)
    peft_model.peft_config["default"].base_model_name_or_path = base_model
    peft_model.save_pretrained(folder, save_embedding_layers=False)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty zoo home."""
    return tmp_path / "home"


@pytest.fixture
def shared_dir() -> Path:
    """The read-only shared material, or skip."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED
