"""The index's shard files: immutable safetensors of one space's vectors and their entries' records, written
under the writer lock, merged in size tiers, tombstoned when replaced, and read back to recover a damaged
manifest. :class:`~zoo_tupate.store.index.Index` decides what to write; this module owns how it sits on disk.

A shard ``shards/<space>/<id>.safetensors`` holds float32 ``vectors`` (n × dim), the search extras of
:mod:`zoo_tupate.store.ann` and a ``records`` tensor (the entries' JSON). ``removed.jsonl`` lists (shard, row)
tombstones so a recovery never resurrects a replaced or removed entry.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from zoo_tupate.core.errors import CorruptCheckpoint, IndexError_, ZooError
from zoo_tupate.core.storage import json_default, read_bytes_tensor, read_metadata, write_tensor_parts
from zoo_tupate.embedding.space import space_dirname
from zoo_tupate.store.ann import ShardCache, shard_extras
from zoo_tupate.store.journal import ManifestStore
from zoo_tupate.store.manifest import Entry, encode_entries

#: Shards of one size class merged together once there are this many.
FANOUT = 8
#: Shards this large (bytes of vectors) are full: never merged again except by ``rebuild``.
FULL_SHARD_BYTES = 32 * 1024 * 1024
#: Most rows written to one shard (bulk adds and rebuild split larger batches).
MAX_SHARD_ROWS = 4096
LOCK_TIMEOUT_S = 120.0


class ShardStore:
    """The shard files under ``root`` and the writer lock that guards them."""

    def __init__(self, root: Path, store: ManifestStore):
        self.root, self.store = root, store
        self.cache = ShardCache()
        self.written: set[str] = set()  # shards written under the current lock (dropped if it fails)

    def locked(self) -> _Release:
        """Take the writer lock for a ``with`` block (:class:`IndexError_` after ``LOCK_TIMEOUT_S``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise IndexError_(f"{self.root}: index is locked by another process (waited {LOCK_TIMEOUT_S:.0f} s)") from None
        self.written = set()
        return _Release(lock, self)

    def new_name(self, space: str) -> str:
        """A fresh shard path (relative to ``root``) for ``space``."""
        return f"shards/{space_dirname(space)}/{time.time_ns():x}-{uuid.uuid4().hex[:8]}.safetensors"

    def read(self, entries: list[Entry], dim: int) -> np.ndarray:
        """The rows of ``entries`` (memory-mapped reads); :class:`FileNotFoundError` when a shard is gone."""
        out = np.empty((len(entries), dim), np.float32)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, entry in enumerate(entries):
            by_shard.setdefault(entry.shard, []).append((i, entry.row))
        for shard, rows in by_shard.items():
            matrix = self.cache.get(self.root / shard)
            out[[i for i, _ in rows]] = matrix[[r for _, r in rows]]
        return out

    def write(self, shard: str, space: str, matrix: np.ndarray, entries: list[Entry]) -> None:
        """One shard: vectors, their search extras, and the entries' records (JSON bytes in a ``records``
        tensor, so opening a shard parses a small header; ``recover`` reads entries from them)."""
        records = json.dumps([e.to_json() for e in entries], default=json_default).encode()
        tensors = {"vectors": [matrix], **{k: [v] for k, v in shard_extras(matrix).items()},
                   "records": [np.frombuffer(records, np.uint8)]}
        write_tensor_parts(self.root / shard, tensors, {"space": space, "records": "tensor"})
        self.written.add(shard)

    def merge(self, space: str, group: list[Entry]) -> list[Entry]:
        """Rewrite ``group`` (one space) into shards of at most MAX_SHARD_ROWS rows; returns the moved entries."""
        if len({e.shard for e in group}) <= 1 and all(e.row == i for i, e in enumerate(group)):
            if all(self._has_extras(e.shard) for e in group[:1]):
                return group
        moved: list[Entry] = []
        for start in range(0, len(group), MAX_SHARD_ROWS):
            chunk = group[start:start + MAX_SHARD_ROWS]
            shard = self.new_name(space)
            matrix = self.read(chunk, chunk[0].dim)
            out = [Entry(**{**e.to_json(), "shard": shard, "row": i}) for i, e in enumerate(chunk)]
            self.write(shard, space, matrix, out)
            moved.extend(out)
        return moved

    def _has_extras(self, shard: str) -> bool:
        return self.cache.get(self.root / shard, "sqnorm", required=False) is not None

    def maybe_merge(self, space: str) -> None:
        """Merge FANOUT shards of one size class (by live rows) into one; repeat while a class is full."""
        while True:
            state = self.store.state()
            rows_of: dict[str, list[int]] = {}
            for slot in state.by_space().get(space, []):
                rows_of.setdefault(state.shard(slot), []).append(slot)
            dim = state.space_dim(space) or 1
            tiers: dict[int, list[str]] = {}
            for shard, slots in rows_of.items():
                if len(slots) * dim * 4 >= FULL_SHARD_BYTES or len(slots) >= MAX_SHARD_ROWS:
                    continue
                tiers.setdefault(int(math.log(len(slots), FANOUT)), []).append(shard)
            full = [shards for _, shards in sorted(tiers.items()) if len(shards) >= FANOUT]
            if not full:
                return
            chosen = sorted(full[0])[:FANOUT]
            group = [state.entry(s) for shard in chosen for s in sorted(rows_of[shard], key=state.cols["row"].__getitem__)]
            moved = self.merge(space, group)
            self.store.commit({"put": encode_entries([e.to_json() for e in moved])})
            for shard in chosen:
                self.cache.forget(self.root / shard)
                (self.root / shard).unlink(missing_ok=True)

    def drop_uncommitted(self, shards: set[str]) -> None:
        """After a failed write under the lock, remove the shards it wrote that the index on disk does not
        reference (no orphan left for ``rebuild``; a shard a landed commit references stays)."""
        try:
            self.store.invalidate()
            state = self.store.state()
            used = {state.shard(slot) for slot in state.slots()}
        except (OSError, ZooError):
            return  # cannot tell: leave them to ``rebuild``
        for shard in shards - used:
            self.cache.forget(self.root / shard)
            (self.root / shard).unlink(missing_ok=True)

    def tombstone(self, entries: list[Entry]) -> None:
        """Record that these (shard, row) pairs are dead, so a recovery from shards skips them."""
        if not entries:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "removed.jsonl", "a", encoding="utf-8") as handle:
            for e in entries:
                handle.write(json.dumps({"shard": e.shard, "row": e.row}) + "\n")

    def recover(self) -> list[Entry]:
        """The live entries as the shards' own records tell them (newest per name and space, no tombstones)."""
        dead = set()
        tomb = self.root / "removed.jsonl"
        if tomb.exists():
            for line in tomb.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    dead.add((record["shard"], record["row"]))
                except (ValueError, KeyError, TypeError):
                    continue
        latest: dict[tuple[str, str], Entry] = {}
        for file in sorted((self.root / "shards").glob("*/*.safetensors")):
            try:
                records = shard_records(file)
            except (ZooError, KeyError, OSError, ValueError):
                continue
            for record in records:
                entry = Entry.from_json(record)
                entry.shard = file.relative_to(self.root).as_posix()
                if (entry.shard, entry.row) in dead:
                    continue
                key = (entry.name, entry.space)
                if key not in latest or entry.added >= latest[key].added:
                    latest[key] = entry
        return list(latest.values())

    def delete_unreferenced(self, entries: list[Entry]) -> int:
        """Delete shard files (and temp files) that no entry of ``entries`` uses; returns how many."""
        used = {e.shard for e in entries}
        count = 0
        for file in (self.root / "shards").glob("*/*") if (self.root / "shards").exists() else []:
            if file.relative_to(self.root).as_posix() not in used:
                self.cache.forget(file)
                file.unlink(missing_ok=True)
                count += 1
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        return count


class _Release:
    """Holds the writer lock for a ``with`` block; a block that fails drops the shards it wrote."""

    def __init__(self, lock: FileLock, shards: ShardStore):
        self.lock, self.shards = lock, shards

    def __enter__(self) -> FileLock:
        return self.lock

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is not None and self.shards.written:
                self.shards.drop_uncommitted(self.shards.written)
        finally:
            self.shards.written = set()
            self.lock.release()


def shard_records(file: Path) -> list[dict[str, Any]]:
    """The entry records a shard was written with (``records`` tensor, or older shards' metadata)."""
    meta = read_metadata(file)
    if "entries" in meta:
        return meta["entries"]
    records = json.loads(read_bytes_tensor(file, "records"))
    if not isinstance(records, list):
        raise CorruptCheckpoint(f"{file}: shard records are not a list")
    return records
