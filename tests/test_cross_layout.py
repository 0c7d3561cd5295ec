"""Cross-layout comparison as an index operation: other layouts scored on stored vectors by their segments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import SHARED, tiny_bert
from test_ranker_layout import _lora

from zoo_tupate import Index, Zoo, suggest
from zoo_tupate.api import embed
from zoo_tupate.cards.cardfile import read_card, write_card
from zoo_tupate.cli import main
from zoo_tupate.core.errors import IncompatibleSpace
from zoo_tupate.embedding.segments import layout_segments, short_modules
from zoo_tupate.ranking.ranker.layout import shared_cosine
from zoo_tupate.readers import read_tuned

QV = ["attention.self.query", "attention.self.value"]
BIASES = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


def _bitfit(folder: Path, modules: list[str], seed: int = 1) -> Path:
    """A BEFT (BitFit) checkpoint of the tiny BERT tuning the biases of ``modules``."""
    from peft import BeftConfig, get_peft_model

    model = get_peft_model(tiny_bert(0), BeftConfig(target_modules=modules, task_type="SEQ_CLS"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and "classifier" not in name:
                param.add_(torch.randn(param.shape, generator=gen) * 0.1)
    model.peft_config["default"].base_model_name_or_path = "tiny-bert"
    model.save_pretrained(folder, save_embedding_layers=False)
    return folder


@pytest.fixture
def zoo(tmp_path: Path) -> dict[str, Path]:
    """LoRA checkpoints: k,q,v r4 (``qkv``), q,v r4 with the same q,v factors (``qv``, the target), k,q,v r8."""
    qkv, model = _lora(tmp_path / "qkv", ["query", "key", "value"], r=4)
    qv, _ = _lora(tmp_path / "qv", ["query", "value"], r=4, copy_from=model)
    kqv8, _ = _lora(tmp_path / "kqv8", ["key", "query", "value"], r=8, seed=7)
    qv8, _ = _lora(tmp_path / "qv8", ["query", "value"], r=8, seed=9)
    return {"qkv": qkv, "qv": qv, "kqv8": kqv8, "qv8": qv8}


def _targets(path: Path) -> list:
    return [embed(path, repr="raw"), embed(path, repr="delta")]


def test_other_lora_layouts_are_scored_on_shared_modules_equal_to_pairwise(tmp_path: Path, zoo) -> None:
    index = Index(tmp_path / "home")
    index.add(zoo["qkv"], name="qkv")
    index.add(zoo["kqv8"], name="kqv8")
    assert index.get("qkv")[0].metadata["segments"]  # recorded with the entry
    ranking = suggest(index, _targets(zoo["qv"]), top_k=5)
    rows = {row.name: row for row in ranking}
    assert set(rows) == {"qkv", "kqv8"}
    assert all(r.cross_layout and r.modules == QV and r.repr == "delta" for r in rows.values())
    assert rows["qkv"].score == pytest.approx(1.0, abs=1e-6)  # the same q,v factors
    target = read_tuned(zoo["qv"])
    for name in rows:  # the index operation (stored vectors sliced by segments) = the pairwise function
        pairwise = shared_cosine(target, read_tuned(zoo[name]))
        assert rows[name].score == pytest.approx(pairwise.score, abs=1e-6)
        assert pairwise.modules == rows[name].modules
    said = " ".join(ranking.notes)
    assert "no zoo entry has the target's lora/delta layout" in said and "left out key (zoo only)" in said
    assert not any(n.startswith("no zoo entry shares") for n in ranking.notes)


def test_same_space_rankings_are_unchanged_and_always_adds_other_layouts(tmp_path: Path, zoo) -> None:
    index = Index(tmp_path / "home")
    for name in ("qkv", "kqv8", "qv8"):
        index.add(zoo[name], name=name)
    targets = _targets(zoo["qv"])
    default = suggest(index, targets, top_k=5)
    never = suggest(index, targets, top_k=5, cross_layout="never")
    assert [r.to_json() for r in default] == [r.to_json() for r in never]  # own space has a candidate
    assert [r.name for r in default] == ["qv8"] and not default[0].cross_layout and default[0].modules == []
    both = suggest(index, targets, top_k=5, cross_layout="always")
    assert [(r.name, r.cross_layout) for r in both][0] == ("qv8", False)
    assert {r.name for r in both if r.cross_layout} == {"qkv", "kqv8"}
    assert both[0].score == pytest.approx(default[0].score)
    with pytest.raises(ValueError, match="cross_layout"):
        suggest(index, targets, cross_layout="sometimes")


def test_cli_rows_name_the_modules_in_json_and_in_an_80_column_table(tmp_path: Path, zoo) -> None:
    home = tmp_path / "home"
    index = Index(home)
    index.add(zoo["qkv"], name="glue/qkv-a-rather-long-source-name")
    index.add(zoo["kqv8"], name="kqv8")
    runner = CliRunner()
    out = runner.invoke(main, ["--home", str(home), "suggest", "--target", str(zoo["qv"]), "--no-starter",
                               "--json", "--by-space"])
    assert out.exit_code == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 2 and all(r["cross_layout"] is True and r["modules"] == QV for r in rows)
    table = runner.invoke(main, ["--home", str(home), "suggest", "--target", str(zoo["qv"]), "--no-starter"],
                          terminal_width=80, env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.stderr
    assert max(len(line) for line in table.stderr.splitlines()) <= 80 and "…" not in table.stderr
    cells = "".join(line for line in table.stderr.splitlines() if line.startswith("│"))
    assert cells.count("shared:") == 2 and cells.count("query,value") == 2  # the cell may wrap
    off = runner.invoke(main, ["--home", str(home), "suggest", "--target", str(zoo["qv"]), "--no-starter",
                               "--cross-layout", "never"])
    assert off.exit_code != 0 and "differs in layout" in off.stderr  # the nearest-spaces hint, as before


def test_no_shared_module_is_refused_with_the_modules_and_the_nearest_space_hint(tmp_path: Path) -> None:
    keys, _ = _lora(tmp_path / "k", ["key"], r=4)
    values, _ = _lora(tmp_path / "v", ["value"], r=4)
    zoo = Zoo(tmp_path / "home", starter=False)
    zoo.index.add(keys, name="keys")
    with pytest.raises(IncompatibleSpace) as caught:
        zoo.suggest(_targets(values))
    message = str(caught.value)
    assert "shares a module with the target (target: value; zoo: key)" in message
    assert "differs in layout" in message


def test_bitfit_bias_subsets_are_scored_on_shared_biases(tmp_path: Path) -> None:
    full = _bitfit(tmp_path / "full", BIASES, seed=1)
    subset = _bitfit(tmp_path / "subset", ["query", "value"], seed=2)
    other = _bitfit(tmp_path / "other", ["query", "key", "intermediate.dense"], seed=3)
    index = Index(tmp_path / "home")
    index.add(full, name="full")
    index.add(other, name="other")
    ranking = suggest(index, [embed(subset)], top_k=5)
    rows = {row.name: row for row in ranking}
    assert set(rows) == {"full", "other"} and all(r.cross_layout and r.repr == "raw" for r in rows.values())
    assert rows["full"].modules == ["attention.self.query.beft_bias", "attention.self.value.beft_bias"]
    assert rows["other"].modules == ["attention.self.query.beft_bias"]
    for name, path in (("full", full), ("other", other)):
        assert rows[name].score == pytest.approx(shared_cosine(read_tuned(subset), read_tuned(path)).score,
                                                 abs=1e-6)
    assert short_modules(rows["full"].modules) == ["query", "value"]


def test_entries_without_segments_get_a_note_not_a_crash(tmp_path: Path, zoo) -> None:
    old = embed(zoo["qkv"], repr="delta")
    for key in ("segments", "layout"):
        old.metadata.pop(key)  # as an entry indexed before segments were recorded
    index = Index(tmp_path / "home")
    index.add_embeddings("old", [old])
    assert "segments" not in index.get("old")[0].metadata
    with pytest.raises(IncompatibleSpace, match="record no segment layout"):
        suggest(index, _targets(zoo["qv"]))
    index.add(zoo["kqv8"], name="kqv8")
    ranking = suggest(index, _targets(zoo["qv"]))
    assert [r.name for r in ranking] == ["kqv8"]
    assert sum("record no segment layout" in n for n in ranking.notes) == 1
    index.add(zoo["qkv"], name="old")  # the same weights added again: the entry gains its segments
    assert index.get("old")[0].metadata["segments"]
    again = suggest(index, _targets(zoo["qv"]))
    assert {r.name for r in again} == {"kqv8", "old"} and not any("segment layout" in n for n in again.notes)


def test_cards_carry_segments_and_old_cards_derive_them_from_their_layout(tmp_path: Path, zoo) -> None:
    emb = embed(zoo["kqv8"], repr="delta")
    assert emb.metadata["segments"] == layout_segments("lora", "delta", "layer-mean", emb.metadata["layout"])
    card = write_card(tmp_path / "card", [emb], extra={"task": "glue/kqv8"})
    assert read_card(card)[0].metadata["segments"] == emb.metadata["segments"]
    emb.metadata.pop("segments")  # a card written before segments: its layout still says where modules lie
    old_card = write_card(tmp_path / "old-card", [emb], extra={"task": "glue/kqv8"})
    index = Index(tmp_path / "home")
    index.add(old_card, name="kqv8")
    assert index.get("kqv8")[0].metadata["segments"] == read_card(card)[0].metadata["segments"]
    assert suggest(index, _targets(zoo["qv"]))[0].modules == QV


def test_starter_cards_record_segments() -> None:
    from zoo_tupate.store.starter import starter_cards

    cards = starter_cards()
    if not cards:
        pytest.skip("no starter zoo packaged")
    for card in cards:
        deltas = [e for e in read_card(card) if e.repr == "delta"]
        assert deltas and all(e.metadata.get("segments") for e in deltas), card


def test_real_distilbert_adapters_of_other_modules_compare_on_q_and_v(tmp_path: Path) -> None:
    root = SHARED / "adapters"
    imdb, qkvo = root / "distilbert-imdb-lora", root / "distilbert-mediabias-lora-qkvo"
    if not imdb.is_dir() or not qkvo.is_dir():
        pytest.skip("../shared/adapters is absent")
    index = Index(tmp_path / "home")
    index.add(qkvo, name="mediabias")
    ranking = suggest(index, _targets(imdb))
    assert len(ranking) == 1
    row = ranking[0]
    assert row.cross_layout and row.modules == ["attention.q_lin", "attention.v_lin"]
    pairwise = shared_cosine(read_tuned(imdb), read_tuned(qkvo))
    assert row.score == pytest.approx(pairwise.score, abs=1e-6) and pairwise.modules == row.modules
    assert any("left out k_lin,out_lin (zoo only)" in n for n in ranking.notes)


def _minilm_lora(folder: Path, modules: list[str], seed: int) -> Path:
    """A LoRA checkpoint with the starter zoo's base model's shapes (hidden 384, 6 layers), random factors."""
    from peft import LoraConfig, get_peft_model

    base = tiny_bert(0, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=64)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=8, target_modules=modules, task_type="SEQ_CLS"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    model.peft_config["default"].base_model_name_or_path = "sentence-transformers/all-MiniLM-L6-v2"
    model.save_pretrained(folder, save_embedding_layers=False)
    return folder


def test_the_zoo_decides_over_both_layers_and_scores_the_starter_on_shared_modules(tmp_path: Path) -> None:
    from zoo_tupate.store.starter import starter_cards

    if not starter_cards():
        pytest.skip("no starter zoo packaged")
    target = _minilm_lora(tmp_path / "kqv", ["key", "query", "value"], seed=1)
    zoo = Zoo(tmp_path / "home")
    zoo.index.add(_minilm_lora(tmp_path / "other", ["value"], seed=2), name="value-only")
    ranking = zoo.suggest(_targets(target), top_k=20)  # no k,q,v entry anywhere: both layers' other layouts
    starter = [r for r in ranking if r.source == "starter"]
    assert len(starter) == 11 and all(r.cross_layout and r.modules == QV for r in starter)
    mine = [r for r in ranking if r.name == "value-only"]
    assert len(mine) == 1 and mine[0].modules == ["attention.self.value"]
    assert {r.rank for r in starter} == set(range(1, 12))  # ranked within their sibling space
    centered = zoo.suggest(_targets(target), top_k=3, center=True)
    assert len(centered) == 4 and all(r.cross_layout for r in centered)
    zoo.index.add(_minilm_lora(tmp_path / "kqv2", ["key", "query", "value"], seed=3), name="kqv-entry")
    same = zoo.suggest(_targets(target), top_k=20)  # the user's layer holds the target's space: as before
    assert [r.name for r in same] == ["kqv-entry"] and not same[0].cross_layout
    always = zoo.suggest(_targets(target), top_k=20, cross_layout="always")
    assert always[0].name == "kqv-entry" and sum(r.cross_layout for r in always) == 12


def test_large_sibling_spaces_are_read_in_chunks_with_the_same_scores(tmp_path: Path, zoo, monkeypatch) -> None:
    import zoo_tupate.ranking.crosslayout as crossrank

    index = Index(tmp_path / "home")
    index.add(zoo["qkv"], name="qkv")
    index.add(zoo["kqv8"], name="kqv8")
    whole = {r.name: r.score for r in suggest(index, _targets(zoo["qv"]), center=True)}
    monkeypatch.setattr(crossrank, "CHUNK_VALUES", 1)  # one row at a time
    chunked = {r.name: r.score for r in suggest(index, _targets(zoo["qv"]), center=True)}
    assert chunked == pytest.approx(whole, abs=1e-9) and len(whole) == 2
