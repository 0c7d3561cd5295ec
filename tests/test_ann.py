"""Large-index behaviour: sketch search agrees with exact, adds append (journal, no shard rewrite), crash safety."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from zoo_tupate import Index, suggest
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.store import ann, journal

SPACE = "synthetic/lora/raw/layer-mean/00000000"
DIM = 2048


def _zoo(n: int, seed: int = 0) -> np.ndarray:
    """Shared component + low-rank task structure + noise (like raw LoRA vectors from one init)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((17, DIM)).astype(np.float32)
    z = rng.standard_normal((n, 16)).astype(np.float32)
    return basis[0] + z @ basis[1:] + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)


def _emb(vector: np.ndarray, i: int) -> Embedding:
    return Embedding(vector=vector.astype(np.float32), method="lora", repr="raw", pooling="layer-mean", space=SPACE,
                     base_model="synthetic", sha256=f"{i:064x}", source=f"synthetic/{i}")


def _bulk(index: Index, matrix: np.ndarray, start: int = 0) -> None:
    index.add_many([(f"task-{start + i:05d}", _emb(v, start + i), None, None) for i, v in enumerate(matrix)])


def _reference(matrix: np.ndarray, target: np.ndarray, center: bool) -> np.ndarray:
    m, t = matrix.astype(np.float64), target.astype(np.float64)
    if center:
        mean = np.vstack([m, t[None]]).mean(axis=0)
        m, t = m - mean, t - mean
    return (m @ t) / (np.linalg.norm(m, axis=1) * np.linalg.norm(t))


@pytest.mark.parametrize("center", [False, True])
def test_sketch_search_agrees_with_exact_scan(home: Path, center: bool) -> None:
    n = 3000
    matrix = _zoo(n)
    index = Index(home)
    _bulk(index, matrix[:1800])
    _bulk(index, matrix[1800:], start=1800)  # two shards
    rng = np.random.default_rng(7)
    hits = total = 0
    for q in range(10):
        target = _emb(matrix[rng.integers(n)] + rng.standard_normal(DIM).astype(np.float32), 10_000 + q)
        reference = _reference(matrix, target.vector, center)
        truth = [f"task-{i:05d}" for i in np.argsort(-reference)[:5]]
        exact = suggest(index, [target], top_k=5, center=center, exact=True)
        assert [r.name for r in exact] == truth
        np.testing.assert_allclose([r.score for r in exact], np.sort(reference)[::-1][:5], rtol=1e-5)
        approx = suggest(index, [target], top_k=5, center=center)
        hits += len({r.name for r in approx} & set(truth))
        total += 5
    assert hits / total >= 0.95


def test_large_space_excludes_target_and_named_entries(home: Path) -> None:
    matrix = _zoo(2500, seed=1)
    index = Index(home)
    _bulk(index, matrix)
    target = _emb(matrix[42], 42)  # same weights as task-00042
    for exact in (False, True):
        names = [r.name for r in suggest(index, [target], top_k=3, exact=exact, exclude={"task-00007"})]
        assert "task-00042" not in names and "task-00007" not in names and len(names) == 3
    everything = suggest(index, [target], top_k=None)
    assert len(everything) == 2499


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def test_adding_to_a_big_index_appends_without_rewriting(home: Path) -> None:
    index = Index(home)
    _bulk(index, _zoo(2500, seed=2))
    _bulk(index, _zoo(10, seed=3), start=5000)  # let the first commit's checkpoint settle
    before = _files(home / "index")
    index.add_embedding("one-more", _emb(_zoo(1, seed=4)[0], 9999))
    after = _files(home / "index")
    changed = {p for p in before if after.get(p) != before[p]}
    new = set(after) - set(before)
    assert changed <= {"journal.1.jsonl"}, changed  # old shards and the manifest untouched
    assert len([p for p in new if p.startswith("shards/")]) == 1
    fresh = Index(home)
    assert fresh.count() == 2511 and "one-more" in fresh.names()


def test_torn_journal_tail_is_not_committed_and_is_cut_by_the_next_writer(home: Path) -> None:
    index = Index(home)
    _bulk(index, _zoo(3, seed=5))
    index.add_embedding("committed", _emb(_zoo(1, seed=6)[0], 100))
    journal = home / "index" / "journal.1.jsonl"
    size = journal.stat().st_size
    with open(journal, "ab") as handle:  # a writer killed mid-line
        handle.write(b'0badc0de {"put": [{"name": "ghost"')
    assert Index(home).names() == {"task-00000", "task-00001", "task-00002", "committed"}
    Index(home).add_embedding("after", _emb(_zoo(1, seed=7)[0], 101))
    assert journal.stat().st_size > size
    assert Index(home).names() == {"task-00000", "task-00001", "task-00002", "committed", "after"}


def test_checkpoints_fold_the_journal_and_keep_every_entry(home: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal, "JOURNAL_MIN_BYTES", 2000)
    index = Index(home)
    vectors = _zoo(40, seed=8)
    for i, vector in enumerate(vectors):
        index.add_embedding(f"t{i}", _emb(vector, i))
    index.remove("t3")
    generation = index.store._generation
    assert generation > 2  # several checkpoints happened
    assert len(list((home / "index").glob("journal.*.jsonl"))) <= 2
    fresh = Index(home)
    assert fresh.names() == {f"t{i}" for i in range(40)} - {"t3"}
    for entry in fresh.entries():
        np.testing.assert_array_equal(fresh.vectors([entry])[0], vectors[int(entry.name[1:])])


def test_single_adds_merge_in_tiers(home: Path) -> None:
    index = Index(home)
    vectors = _zoo(3 * index_fanout() + 1, seed=9)
    for i, vector in enumerate(vectors):
        index.add_embedding(f"t{i}", _emb(vector, i))
    shards = {e.shard for e in index.entries()}
    assert len(shards) < index_fanout()  # merged, not one shard per add
    assert {p.relative_to(home / "index").as_posix() for p in (home / "index" / "shards").rglob("*.safetensors")} \
        == shards  # merged-away shards are deleted
    for entry in index.entries():
        np.testing.assert_array_equal(index.vectors([entry])[0], vectors[int(entry.name[1:])])


def index_fanout() -> int:
    from zoo_tupate.store.shards import FANOUT

    return FANOUT


def test_sketch_is_linear_so_centering_projects() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((5, 3000)).astype(np.float32)
    projected = ann.sketch(rows)
    np.testing.assert_allclose(ann.sketch(rows.mean(axis=0)), projected.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ann.sketch(rows[2]), projected[2], rtol=1e-6)


def test_manifest_survives_a_checkpoint_race(home: Path) -> None:
    """A reader holding checkpoint g still finds journal g after the next checkpoint."""
    index = Index(home)
    _bulk(index, _zoo(3, seed=11))
    index.add_embedding("x", _emb(_zoo(1, seed=12)[0], 50))
    reader = Index(home)
    assert "x" in reader.names()
    index.store.checkpoint()
    assert os.path.exists(home / "index" / "journal.1.jsonl")
    assert Index(home).names() == reader.names()


def test_shards_without_the_current_sketch_are_resketched(home: Path, monkeypatch) -> None:
    matrix = _zoo(2200, seed=13)
    index = Index(home)
    _bulk(index, matrix)
    target = _emb(matrix[5] + 0.1, 77)
    expected = [r.name for r in suggest(index, [target], top_k=5, exact=True)]
    # a projection changed since the shards were written: their stored sketches must not be used
    monkeypatch.setattr(ann, "SKETCH_TENSOR", "sketch.v999")
    monkeypatch.setattr(ann, "SKETCH_SQ_TENSOR", "sketch_sq.v999")
    assert [r.name for r in suggest(Index(home), [target], top_k=5)] == expected


def test_bulk_add_later_item_wins_and_unchanged_items_write_nothing(home: Path) -> None:
    index = Index(home)
    vectors = _zoo(3, seed=14)
    first = index.add_many([("a", _emb(vectors[0], 1), None, None), ("a", _emb(vectors[1], 2), None, None),
                            ("b", _emb(vectors[2], 3), None, None)])
    assert [e.name for e in first] == ["a", "a", "b"] and first[0] == first[1]
    np.testing.assert_array_equal(index.vectors(index.get("a"))[0], vectors[1])
    before = _files(home / "index")
    again = index.add_many([("a", _emb(vectors[1], 2), None, None), ("b", _emb(vectors[2], 3), None, None)])
    assert [e.shard for e in again] == [e.shard for e in first[1:]]
    assert _files(home / "index") == before
