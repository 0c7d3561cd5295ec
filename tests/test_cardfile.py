"""Embedding cards: write → read round trip, the on-disk format, and refusal of damaged cards."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from safetensors import safe_open
from safetensors.numpy import save

from zoo_tupate.cards.cardfile import (
    METADATA_KEY,
    README_NAME,
    WEIGHTS_NAME,
    is_card,
    read_card,
    read_document,
    render_readme,
    write_card,
)
from zoo_tupate.core.errors import (
    CorruptCheckpoint,
    DegenerateAdapter,
    IncompatibleSpace,
    UnsupportedCheckpoint,
)
from zoo_tupate.embedding.vectors import Embedding

LORA_SPACE = "bert-base-uncased/lora/raw/layer-mean/3fa2c1d0"
BITFIT_SPACE = "FacebookAI/roberta-base/bitfit/raw/flatten/00aa11bb"


def _embeddings() -> list[Embedding]:
    rng = np.random.default_rng(0)
    return [
        Embedding(
            vector=rng.standard_normal(48).astype(np.float32), method="lora", repr="raw", pooling="layer-mean",
            space=LORA_SPACE, base_model="bert-base-uncased", layers=[0, 1],
            excluded_tensors=["classifier.weight"], sha256="ab" * 32, source="org/rte-lora@" + "c" * 40,
            metadata={"epoch": 3, "step": 120, "train_size": 2490, "peft_type": "LORA", "r": 8},
        ),
        Embedding(
            vector=rng.standard_normal(20).astype(np.float32), method="bitfit", repr="raw", pooling="flatten",
            space=BITFIT_SPACE, base_model="roberta-base", layers=[0, 1, 2], degenerate=True,
            degenerate_reason="all tuned tensors are zero", sha256="cd" * 32, source="org/rte-bitfit@main",
        ),
    ]


def _assert_same(a: Embedding, b: Embedding) -> None:
    assert b.vector.dtype == np.float32
    assert np.array_equal(a.vector, b.vector)
    for name in ("method", "repr", "pooling", "space", "base_model", "layers", "degenerate", "degenerate_reason",
                 "excluded_tensors", "sha256", "source", "metadata", "dim"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.fixture
def card(tmp_path) -> Path:
    return write_card(tmp_path / "card", _embeddings(), {"task": "glue/rte", "repo_id": "me/rte-embedding"})


def test_round_trip(card):
    written = _embeddings()
    read = read_card(card)
    assert len(read) == len(written)
    for a, b in zip(written, read, strict=True):
        _assert_same(a, b)
    assert is_card(card)
    assert sorted(p.name for p in card.iterdir()) == [README_NAME, WEIGHTS_NAME]  # no temp files left


def test_file_format_is_readable_without_zoo_tupate(card):
    with safe_open(str(card / WEIGHTS_NAME), "np") as handle:
        metadata = handle.metadata()
        assert set(metadata) == {METADATA_KEY}
        doc = json.loads(metadata[METADATA_KEY])
        vectors = {e["space"]: handle.get_tensor(e["tensor"]) for e in doc["embeddings"]}
        names = list(handle.keys())
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names)
    assert np.array_equal(vectors[LORA_SPACE], _embeddings()[0].vector)
    lora = doc["embeddings"][0]
    assert lora["checkpoint"] == {"epoch": 3, "step": 120}
    assert lora["train_size"] == 2490 and lora["dim"] == 48 and lora["source"].startswith("org/rte-lora@")
    assert lora["zoo_tupate_version"] == doc["zoo_tupate_version"]
    assert doc["embeddings"][1]["checkpoint"] == {"epoch": None, "step": None}
    assert doc["extra"] == {"task": "glue/rte", "repo_id": "me/rte-embedding"}


def test_readme_is_a_hub_model_card(card):
    model_card = ModelCard.load(card / README_NAME)
    data = model_card.data
    assert data.library_name == "zoo-tupate"
    assert set(data.tags) == {"task-embedding", "lora", "bitfit"}
    assert sorted(data.base_model) == ["bert-base-uncased", "roberta-base"]
    assert data.datasets == ["nyu-mll/glue"]  # from the catalog card of glue/rte
    assert LORA_SPACE in model_card.text and 'snapshot_download("me/rte-embedding")' in model_card.text
    assert "{{" not in model_card.text


def test_readme_renders_the_same_without_jinja(card):
    document = read_document(card)
    assert render_readme(document, use_jinja=True) == render_readme(document, use_jinja=False)


def test_rewriting_a_card_replaces_it(card):
    only = _embeddings()[:1]
    write_card(card, only)
    read = read_card(card)
    assert len(read) == 1
    _assert_same(only[0], read[0])


def test_write_refuses_bad_input(tmp_path):
    lora = _embeddings()[0]
    with pytest.raises(IncompatibleSpace, match="given twice"):
        write_card(tmp_path / "a", [lora, lora])
    lora.vector = lora.vector.copy()
    lora.vector[3] = np.nan
    with pytest.raises(DegenerateAdapter, match="non-finite"):
        write_card(tmp_path / "b", [lora])
    with pytest.raises(Exception, match="at least one embedding"):
        write_card(tmp_path / "c", [])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- damaged cards ------------------------------------------------------------------------------------------


def _document(card: Path) -> dict:
    return read_document(card)


def _rewrite(card: Path, tensors: dict, metadata: dict) -> None:
    (card / WEIGHTS_NAME).write_bytes(save(tensors, metadata=metadata))


def _tensors(card: Path) -> dict:
    with safe_open(str(card / WEIGHTS_NAME), "np") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}


def _truncate(card: Path) -> None:
    path = card / WEIGHTS_NAME
    path.write_bytes(path.read_bytes()[:-10])


def _bad_header_length(card: Path) -> None:
    path = card / WEIGHTS_NAME
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(data) * 2) + data[8:])


def _garbage_header(card: Path) -> None:
    path = card / WEIGHTS_NAME
    data = bytearray(path.read_bytes())
    data[8:20] = b"\xff" * 12
    path.write_bytes(bytes(data))


def _no_metadata(card: Path) -> None:
    _rewrite(card, _tensors(card), {"format": "pt"})


def _metadata_not_json(card: Path) -> None:
    _rewrite(card, _tensors(card), {METADATA_KEY: "{not json"})


def _dim_mismatch(card: Path) -> None:
    doc = _document(card)
    doc["embeddings"][0]["dim"] = 47
    _rewrite(card, _tensors(card), {METADATA_KEY: json.dumps(doc)})


def _missing_field(card: Path) -> None:
    doc = _document(card)
    del doc["embeddings"][1]["space"]
    _rewrite(card, _tensors(card), {METADATA_KEY: json.dumps(doc)})


def _extra_tensor(card: Path) -> None:
    tensors = _tensors(card)
    tensors["stowaway"] = np.zeros(3, np.float32)
    _rewrite(card, tensors, {METADATA_KEY: json.dumps(_document(card))})


def _nan_vector(card: Path) -> None:
    tensors = _tensors(card)
    name = _document(card)["embeddings"][0]["tensor"]
    tensors[name] = tensors[name].copy()
    tensors[name][0] = np.inf
    _rewrite(card, tensors, {METADATA_KEY: json.dumps(_document(card))})


def _float64_vector(card: Path) -> None:
    tensors = _tensors(card)
    name = _document(card)["embeddings"][0]["tensor"]
    tensors[name] = tensors[name].astype(np.float64)
    _rewrite(card, tensors, {METADATA_KEY: json.dumps(_document(card))})


def _space_disagrees(card: Path) -> None:
    doc = _document(card)
    doc["embeddings"][0]["method"] = "bitfit"
    _rewrite(card, _tensors(card), {METADATA_KEY: json.dumps(doc)})


def _missing_file(card: Path) -> None:
    (card / WEIGHTS_NAME).unlink()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "exceeds the file|do not match"),
        (_bad_header_length, "header length"),
        (_garbage_header, "not valid JSON"),
        (_no_metadata, "no 'zoo_tupate' metadata"),
        (_metadata_not_json, "metadata is not valid JSON"),
        (_dim_mismatch, "the metadata says F32\\[47\\]"),
        (_missing_field, "embeddings\\[1\\].space is missing"),
        (_extra_tensor, "stowaway"),
        (_nan_vector, "non-finite"),
        (_float64_vector, "F64"),
        (_space_disagrees, "disagree with space"),
        (_missing_file, "missing: not an embedding card"),
    ],
)
def test_damaged_card_is_refused(card, damage, reason):
    damage(card)
    with pytest.raises(CorruptCheckpoint, match=reason) as err:
        read_card(card)
    assert str(card / WEIGHTS_NAME) in str(err.value)
    if damage is not _nan_vector:  # is_card reads the header only
        assert not is_card(card)


def test_newer_format_is_unsupported_not_corrupt(card):
    doc = _document(card)
    doc["format_version"] = 99
    _rewrite(card, _tensors(card), {METADATA_KEY: json.dumps(doc)})
    with pytest.raises(UnsupportedCheckpoint, match="newer"):
        read_card(card)


def test_a_plain_folder_is_not_a_card(tmp_path):
    assert not is_card(tmp_path)
    assert not is_card(tmp_path / "missing")
