"""What a power cut could leave that ``kill -9`` cannot: a journal line cut at any byte or with a flipped bit,
half-written temp files beside the manifest and shards. The index must load, hold exactly the committed
entries, and accept the next add.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_crash import make_pool, verify

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("ZOO_TUPATE_REL_SEED", "0"))


def _journal(home: Path) -> Path:
    journals = sorted((home / "index").glob("journal.*.jsonl"))
    assert journals, "no journal: the index format changed, update this test"
    return journals[-1]


def test_journal_cut_at_every_byte_of_the_last_line(tmp_path: Path) -> None:
    from zoo_tupate import Index

    pool = make_pool(tmp_path / "pool", 5, SEED + 21)
    home = tmp_path / "home"
    for path in pool.paths[:3]:
        Index(home).add(path)
    journal = _journal(home)
    full = journal.read_bytes()
    last_start = full.rstrip(b"\n").rfind(b"\n") + 1
    committed = {p.name for p in pool.paths[:2]}
    problems = []
    cuts = range(last_start, len(full))  # every byte of the last line, newline excluded
    for cut in cuts:
        journal.write_bytes(full[:cut])
        problems += verify(home, committed, committed, pool, f"cut at {cut}")
    for pos in np.random.default_rng(SEED).integers(last_start + 9, len(full) - 1, size=20):
        flipped = bytearray(full)
        flipped[pos] ^= 0x04
        journal.write_bytes(bytes(flipped))
        problems += verify(home, committed, committed, pool, f"bit flip at {pos}")
    assert not problems, "\n".join(problems[:20])
    # the next writer drops the torn tail and commits after it
    journal.write_bytes(full[:last_start + (len(full) - last_start) // 2])
    Index(home).add(pool.paths[3])
    want = committed | {pool.paths[3].name}
    assert not verify(home, want, want, pool, "add after a torn tail")
    print(f"\n[torn] {len(cuts)} cut points and 20 bit flips of the last journal line, 0 problems")


def test_leftover_temp_files_are_ignored(tmp_path: Path) -> None:
    from zoo_tupate import Index

    pool = make_pool(tmp_path / "pool", 3, SEED + 22)
    home = tmp_path / "home"
    for path in pool.paths[:2]:
        Index(home).add(path)
    root = home / "index"
    names = {p.name for p in pool.paths[:2]}
    shard = next(root.glob("shards/*/*.safetensors"))
    (root / ".manifest.json.x1.tmp").write_bytes(b'{"version": 2, "entr')
    shutil.copyfile(shard, shard.parent / f".{shard.name}.x2.tmp")
    (shard.parent / "orphan-never-committed.safetensors").write_bytes(shard.read_bytes()[:40])
    assert not verify(home, names, names, pool, "with leftovers")
    Index(home).add(pool.paths[2])
    names.add(pool.paths[2].name)
    assert not verify(home, names, names, pool, "add with leftovers")
    report = Index(home).rebuild()
    assert report["entries"] == 6  # 3 LoRA checkpoints, each in raw and delta
    assert not verify(home, names, names, pool, "after rebuild")
    assert not list(root.rglob("*.tmp")) and not (shard.parent / "orphan-never-committed.safetensors").exists()
