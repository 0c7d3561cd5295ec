"""The on-disk index and ranking: add/remove/rebuild, caching, crash safety, suggest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_checkpoint, tiny_bert

from zoo_tupate import Index, embed, suggest
from zoo_tupate.core.errors import DegenerateAdapter, EmptyZoo, EntryNotFound, IncompatibleSpace, IndexError_


def test_add_list_remove_and_cache(tmp_path: Path, home: Path) -> None:
    index = Index(home)
    a = make_checkpoint(tmp_path / "a", perturb_seed=1)
    b = make_checkpoint(tmp_path / "b", perturb_seed=2)
    added = index.add(a, reprs=("raw", "delta"))
    assert {e.repr for e in added} == {"raw", "delta"}
    index.add(b)  # the default stores both reprs of a LoRA checkpoint
    assert [(e.name, e.repr) for e in index.entries()] == [("a", "delta"), ("a", "raw"), ("b", "delta"), ("b", "raw")]
    manifest_before = (home / "index" / "manifest.json").read_bytes()
    again = index.add(a, reprs=("raw", "delta"))  # known content: nothing recomputed or written
    assert (home / "index" / "manifest.json").read_bytes() == manifest_before
    assert {e.shard for e in again} == {e.shard for e in added}
    raw_b = [e for e in index.get("b") if e.repr == "raw"]
    np.testing.assert_array_equal(index.vectors(raw_b)[0], embed(b).vector)
    index.remove("a")
    assert index.names() == {"b"}
    with pytest.raises(EntryNotFound):
        index.remove("a")


def test_degenerate_adapter_is_not_indexed_unless_forced(tmp_path: Path, home: Path) -> None:
    index = Index(home)
    dead = make_checkpoint(tmp_path / "dead", perturb_seed=None)
    with pytest.raises(DegenerateAdapter, match="lora_B"):
        index.add(dead)
    assert index.entries() == []
    index.add(dead, force=True)
    assert index.names() == {"dead"}


def test_rebuild_compacts_and_recovers_a_damaged_manifest(tmp_path: Path, home: Path) -> None:
    index = Index(home)
    for i in range(4):
        index.add(make_checkpoint(tmp_path / f"m{i}", perturb_seed=i + 1))
    index.remove("m1")
    vectors_before = {(e.name, e.space): index.vectors([e])[0] for e in index.entries()}
    (home / "index" / "manifest.json").write_text("{garbage")
    with pytest.raises(IndexError_, match="rebuild"):
        index.entries()
    report = index.rebuild()
    assert report["recovered"] == 1
    assert index.names() == {"m0", "m2", "m3"}  # the removed entry does not come back
    assert len({e.shard for e in index.entries()}) == len({e.space for e in index.entries()}) == 2  # raw, delta
    for entry in index.entries():
        np.testing.assert_array_equal(index.vectors([entry])[0], vectors_before[(entry.name, entry.space)])


def test_import_release_vectors_and_center(shared_dir: Path, home: Path) -> None:
    index = Index(home)
    entries = index.import_vectors(shared_dir / "embeddings" / "tupate-release", "tupate-release")
    assert len(entries) == 20 and {e.dim for e in entries} == {1024}
    target = index.embedding_of(index.get("duorc_p")[0])
    raw = suggest(index, [target], exclude={"duorc_p"}, top_k=None)
    assert "duorc_p" not in [r.name for r in raw]
    assert min(r.score for r in raw) > 0.9  # raw cosines of the released vectors are all near 1
    centered = suggest(index, [target], exclude={"duorc_p"}, top_k=3, center=True)
    assert centered[0].name == "duorc_s"
    assert centered[0].score - centered[1].score > 0.2


def test_suggest_errors(tmp_path: Path, home: Path) -> None:
    index = Index(home)
    target = embed(make_checkpoint(tmp_path / "t", perturb_seed=3))
    with pytest.raises(EmptyZoo):
        suggest(index, [target])
    index.add(make_checkpoint(tmp_path / "ia3", "ia3"))
    with pytest.raises(IncompatibleSpace, match="space"):
        suggest(index, [target])


def test_suggest_compares_lora_in_delta_by_default_and_falls_back_to_raw(tmp_path: Path, home: Path) -> None:
    sources = [make_checkpoint(tmp_path / f"s{i}", perturb_seed=i + 1) for i in range(3)]
    index = Index(home)
    for path in sources:
        index.add(path)
    target = make_checkpoint(tmp_path / "t", perturb_seed=9)
    both = [embed(target), embed(target, repr="delta")]
    ranking = suggest(index, both)
    assert [r.repr for r in ranking] == ["delta"] * 3 and not ranking.notes
    assert {r.repr for r in suggest(index, both, reprs=("raw",))} == {"raw"}  # an explicit repr is kept

    raw_only = Index(tmp_path / "raw-only")
    for path in sources:
        raw_only.add(path, reprs=("raw",))
    fallback = suggest(raw_only, both)
    assert [r.repr for r in fallback] == ["raw"] * 3
    assert len(fallback.notes) == 1 and "index add --repr both" in fallback.notes[0]
    # delta held only by the target entry itself: nothing to compare with there, so raw
    raw_only.add(sources[0], name="s0", reprs=("raw", "delta"))
    itself = suggest(raw_only, [raw_only.embedding_of(e) for e in raw_only.get("s0")], exclude={"s0"})
    assert sorted((r.name, r.repr) for r in itself) == [("s1", "raw"), ("s2", "raw")]
    assert len(itself.notes) == 1


def _train_lora(task: str, data_seed: int, steps: int = 40) -> dict:
    """Train LoRA (init seed 0) on a synthetic token task; returns the adapter state dict."""
    from peft import LoraConfig, get_peft_model

    model = tiny_bert(0)
    torch.manual_seed(0)  # shared LoRA initialisation, as the project's own probes use
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=4, target_modules=["query", "value"],
                                                  task_type="SEQ_CLS"))
    gen = torch.Generator().manual_seed(data_seed)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=2e-2)
    peft_model.train()
    for _ in range(steps):
        ids = torch.randint(4, 64, (32, 8), generator=gen)
        if task == "contains5":
            labels = (ids == 5).any(dim=1).long() | (ids[:, 0] < 12).long()
        elif task == "first-small":
            labels = (ids[:, -1] < 34).long()
        else:
            labels = (ids.sum(dim=1) % 2).long()
        loss = peft_model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return peft_model


def test_adapter_trained_on_the_target_data_ranks_first(tmp_path: Path, home: Path) -> None:
    index = Index(home)
    for name, task, seed in [("same-task", "contains5", 11), ("other-a", "first-small", 12),
                             ("other-b", "parity", 13)]:
        _train_lora(task, seed).save_pretrained(tmp_path / name)
        index.add(tmp_path / name)
    _train_lora("contains5", 21).save_pretrained(tmp_path / "target")
    ranking = suggest(index, [embed(tmp_path / "target")], top_k=3)
    assert [r.rank for r in ranking] == [1, 2, 3]
    assert ranking[0].name == "same-task", [(r.name, round(r.score, 3)) for r in ranking]


def test_concurrent_adders_lose_nothing(tmp_path: Path, home: Path) -> None:
    ckpts = [make_checkpoint(tmp_path / f"c{i}", perturb_seed=i + 1) for i in range(6)]
    script = ("import sys; from zoo_tupate import Index\n"
              "idx = Index(sys.argv[1])\n"
              "for p in sys.argv[2:]: idx.add(p)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(home), *map(str, ckpts[i::2])])
             for i in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert Index(home).names() == {f"c{i}" for i in range(6)}


def test_kill_during_index_add_leaves_a_loadable_index(tmp_path: Path, home: Path) -> None:
    ckpts = [make_checkpoint(tmp_path / f"k{i}", perturb_seed=i + 1) for i in range(8)]
    Index(home).add(ckpts[0])
    env = {**os.environ, "ZOO_TUPATE_HOME": str(home)}
    rng = np.random.default_rng(0)
    for _ in range(6):
        before = Index(home).names()
        proc = subprocess.Popen([sys.executable, "-m", "zoo_tupate", "index", "add", *map(str, ckpts[1:])],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(float(rng.uniform(0.3, 2.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        index = Index(home)
        names = index.names()  # loads without a rebuild
        assert before <= names
        for entry in index.entries():
            assert np.all(np.isfinite(index.vectors([entry])))
        json.loads((home / "index" / "manifest.json").read_text())


def test_embedding_card_folder_indexes_without_weights(tmp_path: Path, home: Path) -> None:
    from zoo_tupate.cards.cardfile import write_card

    index = Index(home)
    source = make_checkpoint(tmp_path / "src", perturb_seed=4)
    card = write_card(tmp_path / "card", [embed(source), embed(source, repr="delta")])
    assert not (card / "adapter_model.safetensors").exists()
    entries = index.add(card, name="from-card", reprs=("raw", "delta"))
    assert {e.repr for e in entries} == {"raw", "delta"}
    np.testing.assert_array_equal(index.vectors([e for e in entries if e.repr == "raw"])[0], embed(source).vector)
    index.add(make_checkpoint(tmp_path / "other", perturb_seed=5))
    ranking = suggest(index, [embed(source)], top_k=5)
    assert [r.name for r in ranking] == ["other"]  # same content as the target: never ranked
