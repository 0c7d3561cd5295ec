"""Cross-layout comparison: LoRA ΔW and bias vectors compared on the modules two checkpoints share."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SHARED, make_checkpoint, tiny_bert

from zoo_tupate.core.errors import IncompatibleSpace
from zoo_tupate.ranking.ranker.layout import shared_cosine
from zoo_tupate.readers import read_tuned


def _lora(folder: Path, modules: list[str], r: int, copy_from=None, seed: int = 1) -> tuple[Path, object]:
    """A LoRA checkpoint of the tiny BERT on ``modules``; factors copied from ``copy_from`` where it has them."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_bert(0), LoraConfig(r=r, lora_alpha=2 * r, target_modules=modules,
                                                    task_type="SEQ_CLS"))
    source = dict(copy_from.named_parameters()) if copy_from is not None else {}
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(source[name] if name in source else torch.randn(param.shape, generator=gen) * 0.1)
    model.peft_config["default"].base_model_name_or_path = "tiny-bert"
    model.save_pretrained(folder, save_embedding_layers=False)
    return folder, model


def test_lora_with_other_modules_and_rank_compares_on_the_shared_ones(tmp_path: Path) -> None:
    qkv, model = _lora(tmp_path / "qkv", ["query", "key", "value"], r=4)
    qv, _ = _lora(tmp_path / "qv", ["query", "value"], r=4, copy_from=model)
    other, _ = _lora(tmp_path / "other", ["query", "value"], r=8, seed=7)
    same = shared_cosine(read_tuned(qkv), read_tuned(qv))
    assert same.score == pytest.approx(1.0, abs=1e-6)
    assert same.modules == ["attention.self.query", "attention.self.value"]
    assert same.only_first == ["attention.self.key"] and same.only_second == []
    different = shared_cosine(read_tuned(qkv), read_tuned(other))  # another rank: ΔW still comparable
    assert abs(different.score) < 0.5 and different.modules == same.modules


def test_no_shared_module_or_other_base_is_refused(tmp_path: Path) -> None:
    keys, _ = _lora(tmp_path / "k", ["key"], r=4)
    values, _ = _lora(tmp_path / "v", ["value"], r=4)
    with pytest.raises(IncompatibleSpace, match="share no module"):
        shared_cosine(read_tuned(keys), read_tuned(values))
    elsewhere = make_checkpoint(tmp_path / "elsewhere", base_model="other-model")
    with pytest.raises(IncompatibleSpace, match="base models"):
        shared_cosine(read_tuned(keys), read_tuned(elsewhere))


def test_bitfit_bias_subsets_compare_on_shared_biases(tmp_path: Path) -> None:
    first = read_tuned(make_checkpoint(tmp_path / "b1", "bitfit", perturb_seed=1))
    second = read_tuned(make_checkpoint(tmp_path / "b2", "bitfit", perturb_seed=1))
    dropped = sorted(next(iter(second.layers.values())))[0]
    for group in second.layers.values():
        group.pop(dropped)  # a checkpoint that tunes a subset of the biases
    score = shared_cosine(first, second)
    assert score.score == pytest.approx(1.0, abs=1e-6)
    assert score.only_first == [dropped] and dropped not in score.modules and score.modules


def test_real_off_the_shelf_adapters_with_different_modules(tmp_path: Path) -> None:
    root = SHARED / "adapters"
    if not (root / "roberta-agnews-lora-r4").is_dir() or not (root / "roberta-mrpc-lora-nohead").is_dir():
        pytest.skip("../shared/adapters is absent")
    agnews, mrpc = read_tuned(root / "roberta-agnews-lora-r4"), read_tuned(root / "roberta-mrpc-lora-nohead")
    score = shared_cosine(agnews, mrpc)  # key,query,value r4 vs query,value r8
    assert score.modules == ["attention.self.query", "attention.self.value"]
    assert score.only_first == ["attention.self.key"] and -1.0 <= score.score <= 1.0
    emotion = read_tuned(root / "distilbert-emotion-lora-peft0.20")
    with pytest.raises(IncompatibleSpace):
        shared_cosine(agnews, emotion)
