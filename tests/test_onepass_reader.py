"""The one-pass, memory-mapped reader: fast paths equal the tensor-by-tensor definitions, large-file paths
(pages dropped, chunked pooling and hashing) equal the small-file ones, caches never mix two files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from zoo_tupate import embed
from zoo_tupate.core.errors import CorruptCheckpoint
from zoo_tupate.embedding import vectors as embedding
from zoo_tupate.embedding.checkpoint import embed_params
from zoo_tupate.embedding.vectors import degenerate_reason
from zoo_tupate.formats import safetensors_header, weights
from zoo_tupate.readers import read_tuned

LAYERS, HIDDEN, RANK = 12, 24, 4
PREFIX = "base_model.model.bert.encoder.layer"


def lora_tensors(seed: int = 0, heads: bool = True, hidden: int = HIDDEN) -> dict[str, np.ndarray]:
    """PEFT LoRA names over 12 layers (so that the file's sorted order is 0, 1, 10, 11, 2, ...)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(LAYERS):
        for module in ("query", "value"):
            key = f"{PREFIX}.{layer}.attention.self.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((RANK, hidden), np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((hidden, RANK), np.float32)
    if heads:
        tensors["base_model.model.classifier.modules_to_save.default.weight"] = rng.standard_normal((2, HIDDEN),
                                                                                                   np.float32)
    return tensors


def write(folder: Path, tensors: dict[str, np.ndarray], alpha: float = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": RANK, "lora_alpha": alpha,
                                                            "base_model_name_or_path": "tiny"}))
    return folder


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    weights._FILE_CACHE.clear()
    safetensors_header._HEADER_CACHE.clear()


VARIANTS = [("raw", "layer-mean", False), ("raw", "flatten", False), ("raw", "layer-mean", True),
            ("raw", "flatten", True), ("delta", "layer-mean", False), ("delta", "flatten", True)]


@pytest.mark.parametrize(("repr_", "pooling", "heads"), VARIANTS)
def test_whole_layer_rows_equal_tensor_by_tensor(tmp_path: Path, repr_: str, pooling: str, heads: bool) -> None:
    params = read_tuned(write(tmp_path / "a", lora_tensors()), include_heads=heads)
    assert sorted(params.rows) == list(range(LAYERS))  # the fast path is taken here
    fast = embed_params(params, repr=repr_, pooling=pooling).vector
    params.rows = {}
    slow = embed_params(params, repr=repr_, pooling=pooling).vector
    np.testing.assert_array_equal(fast, slow)


def test_layer_mean_is_the_float64_mean_of_the_layer_rows(tmp_path: Path) -> None:
    tensors = lora_tensors(heads=False)
    rows = [np.concatenate([tensors[f"{PREFIX}.{layer}.attention.self.{m}.lora_{p}.weight"].ravel()
                            for m in ("query", "value") for p in "AB"]) for layer in range(LAYERS)]
    expected = np.mean(np.stack(rows), axis=0, dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(embed(write(tmp_path / "a", tensors)).vector, expected)


def _degenerate_cases() -> dict[str, tuple[dict[str, np.ndarray], float, str | None]]:
    base = lora_tensors(heads=False)
    b_names = [n for n in base if "lora_B" in n]
    nan = dict(base)
    nan[b_names[5]] = base[b_names[5]].copy()
    nan[b_names[5]][1, 1] = np.nan
    huge = {n: a * np.float32(1e19) for n, a in base.items()}
    return {
        "clean": (base, 8, None),
        "nan": (nan, 8, "non-finite values in"),
        "huge": (huge, 8, "too large"),
        "zero B": ({n: a * 0 if "lora_B" in n else a for n, a in base.items()}, 8, "every lora_B is zero"),
        "all zero": ({n: a * 0 for n, a in base.items()}, 8, "every lora_B is zero"),
        "alpha 0": (base, 0, "lora_alpha is 0"),
        "tiny": ({n: a * np.float32(1e-30) for n, a in base.items()}, 8, None),  # squares underflow to 0
    }


@pytest.mark.parametrize("case", list(_degenerate_cases()))
def test_degenerate_reason_by_rows_equals_tensor_by_tensor(tmp_path: Path, case: str) -> None:
    tensors, alpha, expected = _degenerate_cases()[case]
    params = read_tuned(write(tmp_path / case.replace(" ", "_"), tensors, alpha))
    assert params.rows
    fast = degenerate_reason(params)
    params.rows = {}
    assert fast == degenerate_reason(params)
    assert (fast is None) if expected is None else (fast is not None and expected in fast), fast


def write_half(folder: Path, tensors: dict[str, np.ndarray], dtype: str) -> tuple[Path, Path]:
    """The tensors saved as F16 or BF16, and the same (rounded) values saved as F32 beside them."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    kind = torch.float16 if dtype == "F16" else torch.bfloat16
    half = {n: torch.from_numpy(a).to(kind) for n, a in tensors.items()}
    folder.mkdir(parents=True)
    save_torch(half, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": RANK, "lora_alpha": 8}))
    return folder, write(folder.with_name(folder.name + "-f32"), {n: t.float().numpy() for n, t in half.items()})


@pytest.mark.parametrize("dtype", ["F16", "BF16"])
def test_half_precision_is_converted_exactly_and_lazily(tmp_path: Path, dtype: str) -> None:
    folder, exact = write_half(tmp_path / dtype, lora_tensors(), dtype)
    params = read_tuned(folder, include_heads=True)
    assert all(isinstance(a, weights.HalfTensor) for g in params.layers.values() for a in g.values())
    for repr_, pooling in (("raw", "layer-mean"), ("raw", "flatten"), ("delta", "layer-mean")):
        np.testing.assert_array_equal(embed(folder, repr=repr_, pooling=pooling, include_heads=True).vector,
                                      embed(exact, repr=repr_, pooling=pooling, include_heads=True).vector)
    assert degenerate_reason(params) is None


@pytest.mark.parametrize("dtype", ["F32", "BF16"])
@pytest.mark.parametrize(("repr_", "pooling"), [("raw", "layer-mean"), ("raw", "flatten"), ("delta", "layer-mean")])
def test_large_file_path_drops_pages_and_gives_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               repr_: str, pooling: str, dtype: str) -> None:
    tensors = lora_tensors(heads=False, hidden=160)  # ΔW 160² > 128²: sketched
    folder = write(tmp_path / "a", tensors) if dtype == "F32" else write_half(tmp_path / "a", tensors, dtype)[0]
    small = embed(folder, repr=repr_, pooling=pooling)
    weights._FILE_CACHE.clear()
    # every mapping counts as large; chunks far below one tensor
    monkeypatch.setattr(weights, "RELEASE_MIN_BYTES", 0)
    monkeypatch.setattr(weights, "HASH_CHUNK_BYTES", 4096)
    monkeypatch.setattr(embedding, "POOL_CHUNK", 7)
    monkeypatch.setattr(embedding, "SKETCH_CHUNK_BYTES", 8 * RANK * 10)  # 10 rows or columns a slab
    calls = []
    release = weights.MappedFile.release
    monkeypatch.setattr(weights.MappedFile, "release", lambda self: (calls.append(1), release(self))[1])
    large = embed(folder, repr=repr_, pooling=pooling)
    assert len(calls) > LAYERS * 4
    assert large.sha256 == small.sha256 == hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()
    if repr_ == "raw":
        np.testing.assert_array_equal(large.vector, small.vector)
    else:  # sketched slab by slab: float64 sums in another order, the same float32 values up to rounding
        np.testing.assert_allclose(large.vector, small.vector, rtol=1e-6, atol=1e-9)


def test_same_header_different_data_never_mixed(tmp_path: Path) -> None:
    first = write(tmp_path / "a", lora_tensors(seed=1))
    second = write(tmp_path / "b", lora_tensors(seed=2))
    header = (first / "adapter_model.safetensors").read_bytes()[:200]
    assert header == (second / "adapter_model.safetensors").read_bytes()[:200]  # the header cache is shared
    one, two = embed(first), embed(second)
    assert one.sha256 != two.sha256 and not np.array_equal(one.vector, two.vector)
    truncated = tmp_path / "c"
    truncated.mkdir()
    data = (first / "adapter_model.safetensors").read_bytes()
    (truncated / "adapter_model.safetensors").write_bytes(data[:-4])  # same header bytes, a shorter file
    with pytest.raises(CorruptCheckpoint, match="do not match|exceeds|bytes after"):
        embed(truncated)


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    folder = write(tmp_path / "a", lora_tensors(seed=1))
    before = embed(folder)
    file = folder / "adapter_model.safetensors"
    stamp = os.stat(file).st_mtime_ns
    save_file(lora_tensors(seed=2), str(file))  # same size and header, new values
    os.utime(file, ns=(stamp + 10**9, stamp + 10**9))
    after = embed(folder)
    assert after.sha256 == hashlib.sha256(file.read_bytes()).hexdigest() != before.sha256
    assert not np.array_equal(after.vector, before.vector)
