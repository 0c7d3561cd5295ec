"""Readers and the embedding definition on real PEFT checkpoints of a tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_checkpoint
from safetensors.numpy import load_file, save_file

from zoo_tupate import embed, read_checkpoint
from zoo_tupate.core.errors import CorruptCheckpoint, UnsupportedCheckpoint

H, L, FF = 32, 2, 64  # hidden, layers, intermediate of the tiny BERT

EXPECTED_DIM = {
    "lora": 2 * (4 * H + H * 4),        # query + value, A (4×32) and B (32×4)
    "ia3": 3 * H + FF,                  # key, value, attention.output.dense (H each); output.dense (I)
    "bitfit": 3 * H + H + FF + H,       # q, k, v, attention.output.dense, intermediate.dense, output.dense
    "prefix": 2 * 5 * H,                # keys and values of 5 virtual tokens
    "prompt": 5 * H,                    # input-level prompt, no layers
}


@pytest.mark.parametrize("method", ["lora", "ia3", "bitfit", "prefix", "prompt"])
def test_each_method_embeds_with_expected_dim(tmp_path: Path, method: str) -> None:
    folder = make_checkpoint(tmp_path / method, method)
    emb = embed(folder)
    params = read_checkpoint(folder)
    assert emb.method == method
    assert emb.dim == EXPECTED_DIM[method]
    assert emb.layers == ([] if method == "prompt" else list(range(L)))
    assert emb.vector.dtype == np.float32
    assert not emb.degenerate
    assert params.excluded  # the classifier head is saved by PEFT and left out
    assert all("classifier" in name for name in emb.excluded_tensors)


def test_layer_mean_equals_direct_computation(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "lora", "lora")
    state = load_file(folder / "adapter_model.safetensors")
    rows = []
    for layer in range(L):
        prefix = f"base_model.model.bert.encoder.layer.{layer}.attention.self."
        names = [f"{prefix}query.lora_A.weight", f"{prefix}query.lora_B.weight",
                 f"{prefix}value.lora_A.weight", f"{prefix}value.lora_B.weight"]
        rows.append(np.concatenate([state[n].ravel() for n in names]))
    expected = np.mean(rows, axis=0)
    np.testing.assert_allclose(embed(folder).vector, expected, rtol=1e-6)
    flat = embed(folder, pooling="flatten").vector
    np.testing.assert_allclose(flat, np.concatenate(rows), rtol=1e-6)


def test_key_order_in_file_does_not_change_embedding(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "a", "lora")
    state = load_file(folder / "adapter_model.safetensors")
    shuffled = tmp_path / "b"
    shuffled.mkdir()
    (shuffled / "adapter_config.json").write_text((folder / "adapter_config.json").read_text())
    keys = list(state)
    np.random.default_rng(0).shuffle(keys)
    save_file({k: state[k] for k in reversed(keys)}, shuffled / "adapter_model.safetensors")
    np.testing.assert_array_equal(embed(folder).vector, embed(shuffled).vector)


def test_prefix_split_per_layer_keys_then_values(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "prefix", "prefix")
    table = load_file(folder / "adapter_model.safetensors")["prompt_embeddings"]  # (5, L*2*H)
    params = read_checkpoint(folder)
    for layer in range(L):
        np.testing.assert_array_equal(params.layers[layer]["prefix.key"], table[:, layer * 2 * H: layer * 2 * H + H])
        np.testing.assert_array_equal(params.layers[layer]["prefix.value"], table[:, layer * 2 * H + H: (layer + 1) * 2 * H])


def test_no_op_lora_is_flagged_degenerate(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "untrained", "lora", perturb_seed=None)
    emb = embed(folder)
    assert emb.degenerate and "lora_B" in emb.degenerate_reason


def test_nested_prefixes_and_adapter_names_are_handled(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "a", "lora")
    state = load_file(folder / "adapter_model.safetensors")
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "adapter_config.json").write_text((folder / "adapter_config.json").read_text())
    renamed = {"base_model.model." + k.replace(".weight", ".default.weight"): v for k, v in state.items()}
    save_file(renamed, nested / "adapter_model.safetensors")
    np.testing.assert_array_equal(embed(folder).vector, embed(nested).vector)


def test_include_heads_appends_head_tensors(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "a", "lora")
    plain, with_heads = embed(folder), embed(folder, include_heads=True)
    assert with_heads.dim == plain.dim + 2 * H + 2
    assert with_heads.space != plain.space
    assert not with_heads.excluded_tensors


def test_delta_is_exact_for_small_modules_and_rank_free(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "a", "lora")
    params = read_checkpoint(folder)
    emb = embed(folder, repr="delta")
    scale = 8 / 4
    parts = []
    for module in ("attention.self.query", "attention.self.value"):
        mean = np.mean([scale * params.layers[i][module + ".lora_B"] @ params.layers[i][module + ".lora_A"]
                        for i in range(L)], axis=0)
        parts.append(mean.ravel())
    np.testing.assert_allclose(emb.vector, np.concatenate(parts), rtol=1e-5, atol=1e-7)
    assert emb.dim == 2 * H * H


def test_delta_sketch_approximates_exact_cosine() -> None:
    from zoo_tupate.embedding.vectors import cosine, delta_from_factors, delta_inner

    rng = np.random.default_rng(0)
    d, k, r = 768, 768, 8
    shared_b = rng.standard_normal((d, r))
    b1, a1 = shared_b + 0.5 * rng.standard_normal((d, r)), rng.standard_normal((r, k))
    b2, a2 = shared_b + 0.5 * rng.standard_normal((d, r)), a1 + 0.7 * rng.standard_normal((r, k))
    exact = delta_inner(b1, a1, b2, a2) / np.sqrt(delta_inner(b1, a1, b1, a1) * delta_inner(b2, a2, b2, a2))
    sketched = cosine(delta_from_factors(b1, a1), delta_from_factors(b2, a2))
    full = cosine((b1 @ a1).ravel(), (b2 @ a2).ravel())
    assert exact == pytest.approx(full, abs=1e-9)
    assert sketched == pytest.approx(exact, abs=0.1)
    assert delta_from_factors(b1, a1).size == 128 * 128


def test_delta_refused_for_non_lora(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "ia3", "ia3")
    with pytest.raises(UnsupportedCheckpoint, match="has no factors"):
        embed(folder, repr="delta")


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedCheckpoint, match="no such file"):
        embed(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnsupportedCheckpoint, match="no adapter weights"):
        embed(empty)
    folder = make_checkpoint(tmp_path / "a", "lora")
    data = (folder / "adapter_model.safetensors").read_bytes()
    (folder / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpoint, match="adapter_model.safetensors"):
        embed(folder)
    bad_config = make_checkpoint(tmp_path / "b", "lora")
    (bad_config / "adapter_config.json").write_text("{not json")
    with pytest.raises(CorruptCheckpoint, match="adapter_config.json"):
        embed(bad_config)
    odd = make_checkpoint(tmp_path / "c", "lora")
    (odd / "adapter_config.json").write_text(json.dumps({"peft_type": "LOHA"}))
    with pytest.raises(UnsupportedCheckpoint, match="LOHA"):
        embed(odd)


def test_unsafe_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = tmp_path / "evil"
    folder.mkdir()
    with open(folder / "adapter_model.bin", "wb") as handle:
        pickle.dump({"x": Payload()}, handle)
    with pytest.raises(CorruptCheckpoint, match="weights_only"):
        embed(folder)
    assert not marker.exists()


def test_absolute_bitfit_biases_need_base_weights(tmp_path: Path) -> None:
    from conftest import tiny_bert

    base = tiny_bert(0)
    base_dir = tmp_path / "base"
    base.save_pretrained(base_dir)
    state = {k: v.detach().numpy().copy() for k, v in base.state_dict().items()
             if ".layer." in k and k.endswith(".bias")}
    tuned = {k: v + 0.01 * (i + 1) for i, (k, v) in enumerate(sorted(state.items()))}
    folder = tmp_path / "bitfit-abs"
    folder.mkdir()
    save_file(tuned, folder / "adapter_model.safetensors")
    with pytest.raises(UnsupportedCheckpoint, match="base model"):
        embed(folder)
    emb = embed(folder, base_weights=base_dir)
    assert emb.method == "bitfit"
    params = read_checkpoint(folder, base_weights=base_dir)
    change = params.layers[0]["attention.self.query.bias"]
    assert np.allclose(change, change.flat[0])  # a constant shift survives, the base biases do not


def test_real_shared_adapters_embed_or_are_refused(shared_dir: Path) -> None:
    expected = {
        "bert-sentiment-lora": ("lora", 24576, False),
        "distilbert-emotion-lora-peft0.20": ("lora", 24576, False),
        "distilbert-imdb-lora": ("lora", 24576, False),
        "distilbert-lora-bin-oldpeft": ("lora", 3 * 2 * 16 * 768, False),
        "distilbert-mediabias-lora-qkvo": ("lora", 4 * 2 * 8 * 768, False),
        "roberta-agnews-lora-r4": ("lora", 3 * 2 * 4 * 768, False),
        "roberta-mrpc-lora-nohead": ("lora", 24576, False),
        "minilm-l6-resume-match-lora": ("lora", 3 * 2 * 8 * 384, True),
        "mbert-metaphor-adapterhub-at3.1.0": ("bottleneck", 2 * 48 * 768 + 48 + 768, False),
    }
    for name, (method, dim, degenerate) in expected.items():
        emb = embed(shared_dir / "adapters" / name)
        assert (emb.method, emb.dim, emb.degenerate) == (method, dim, degenerate), name
        assert not any("lora_" in t or "adapter_" in t for t in emb.excluded_tensors), name
    emotion = embed(shared_dir / "adapters" / "distilbert-emotion-lora-peft0.20")
    assert len(emotion.excluded_tensors) == 4  # pre_classifier + classifier
    roberta = embed(shared_dir / "adapters" / "roberta-mrpc-lora-nohead")
    assert roberta.base_model == "roberta-base" and roberta.excluded_tensors == []


def test_values_too_large_to_compare_are_flagged(tmp_path: Path) -> None:
    folder = make_checkpoint(tmp_path / "huge", "lora")
    state = load_file(folder / "adapter_model.safetensors")
    state = {k: (v * 1e30 if "lora_B" in k else v) for k, v in state.items()}
    save_file(state, folder / "adapter_model.safetensors")
    emb = embed(folder)
    assert emb.degenerate and "too large" in emb.degenerate_reason
