"""The zoo index: task embeddings on disk, per space, in append-only shards, listed by a journaled manifest.

Layout under ``<home>/index``::

    manifest.json + journal.<g>.jsonl   the live entries: a checkpoint plus committed changes (see
                                        :mod:`zoo_tupate.manifest`); an add appends one line, never rewrites
    shards/<space>/<id>.safetensors     float32 ``vectors`` (n × dim), ``sqnorm``, ``total`` and (long vectors)
                                        ``sketch`` (see :mod:`zoo_tupate.ann`), plus the entries' records
    removed.jsonl                       tombstones (shard, row) so a recovery from shards never resurrects
    .lock                               writers serialise on this file lock

Adding writes one shard (fsync, rename) and then commits one journal line under the lock: a killed writer
leaves at worst an unreferenced shard or a torn journal line, never a broken index. Readers need no lock;
shards are immutable and memory-mapped. Small shards are merged in tiers (``FANOUT`` shards of one size
class into one), so each vector is rewritten O(log n) times and an add never rewrites the index;
``rebuild`` compacts everything and recovers a damaged manifest from the shards' own records. Computed
embeddings are cached by content hash under ``<home>/cache/embeddings`` so re-adding known weights
recomputes nothing.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from zoo_tupate.ann import ShardCache, shard_extras
from zoo_tupate.cardfile import is_card, read_card
from zoo_tupate.embedding import METHODS, REPRS, Embedding
from zoo_tupate.errors import (
    CorruptCheckpoint,
    DegenerateAdapter,
    EntryNotFound,
    IncompatibleSpace,
    IndexError_,
    NameTaken,
    UnsupportedCheckpoint,
    ZooError,
)
from zoo_tupate.manifest import MANIFEST_VERSION, Entry, ManifestStore, State, encode_entries
from zoo_tupate.naming import default_name
from zoo_tupate.ranking import Ranking, Suggestion, rank
from zoo_tupate.safetext import escape_controls, has_controls
from zoo_tupate.segments import SEGMENTS_KEY, segments_of
from zoo_tupate.space import space_dirname
from zoo_tupate.storage import (
    json_default,
    map_vectors,
    read_bytes_tensor,
    read_metadata,
    write_tensor_parts,
    write_vectors,
)
from zoo_tupate.weights import resolve_strictly

#: Shards of one size class merged together once there are this many.
FANOUT = 8
#: Shards this large (bytes of vectors) are full: never merged again except by ``rebuild``.
FULL_SHARD_BYTES = 32 * 1024 * 1024
#: Most rows written to one shard (bulk adds and rebuild split larger batches).
MAX_SHARD_ROWS = 4096
LOCK_TIMEOUT_S = 120.0

__all__ = ["MANIFEST_VERSION", "Entry", "Index", "Ranking", "Suggestion"]


class Index:
    """A zoo of task embeddings stored under ``home`` (see module docstring)."""

    def __init__(self, home: str | Path):
        self.home = Path(home).expanduser()
        self.root = self.home / "index"
        self.cache = self.home / "cache" / "embeddings"
        self.manifest_path = self.root / "manifest.json"
        self.store = ManifestStore(self.root)
        self.shard_cache = ShardCache()
        self._written: set[str] = set()  # shards written under the current lock (dropped if it fails)

    # ----------------------------------------------------------------- reading
    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT_S)

    def state(self) -> State:
        """The loaded manifest (cached; re-read only as far as it changed)."""
        return self.store.state()

    def _load(self) -> list[Entry]:
        state = self.state()
        return [state.entry(s) for s in state.slots()]

    def count(self) -> int:
        """Number of entries (one per name and space)."""
        return len(self.state())

    def entries(self) -> list[Entry]:
        """Every entry, sorted by name then space."""
        return sorted(self._load(), key=lambda e: (e.name, e.space))

    def get(self, name: str) -> list[Entry]:
        """The entries (one per space) of ``name``; EntryNotFound when none."""
        state = self.state()
        found = [state.entry(s) for s in state.by_name().get(name, [])]
        if not found:
            raise EntryNotFound(f"no index entry named {name!r} in {self.root}")
        return sorted(found, key=lambda e: e.space)

    def names(self) -> set[str]:
        """Entry names."""
        return set(self.state().by_name())

    def vectors(self, entries: list[Entry]) -> np.ndarray:
        """The vectors of ``entries`` stacked (read through memory maps); the entries must share one dimension
        (:class:`IncompatibleSpace` otherwise: ask per space)."""
        if not entries:
            return np.zeros((0, 0), np.float32)
        dims = {e.dim for e in entries}
        if len(dims) > 1:
            spaces = sorted({e.space for e in entries})
            raise IncompatibleSpace(f"entries of {len(dims)} dimensions cannot be stacked (spaces "
                                    f"{', '.join(spaces[:3])}{', ...' if len(spaces) > 3 else ''}): ask per space")
        out = np.empty((len(entries), entries[0].dim), np.float32)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, entry in enumerate(entries):
            by_shard.setdefault(entry.shard, []).append((i, entry.row))
        for shard, rows in by_shard.items():
            try:
                matrix = self.shard_cache.get(self.root / shard)
            except FileNotFoundError:
                # a concurrent writer merged this shard away after ``entries`` were listed: look them up again
                return self.vectors(self._relocate(entries))
            positions = [i for i, _ in rows]
            out[positions] = matrix[[r for _, r in rows]]
        return out

    def _relocate(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` as the current manifest places them (same name, space and content)."""
        state = self.state()
        current = {(e.name, e.space): e for name in {e.name for e in entries}
                   for e in (state.entry(s) for s in state.by_name().get(name, []))}
        moved = []
        for entry in entries:
            now = current.get((entry.name, entry.space))
            if now is None or now.sha256 != entry.sha256:
                raise IndexError_(f"{self.root}: {entry.name} changed while it was being read; try again")
            moved.append(now)
        if all((a.shard, a.row) == (b.shard, b.row) for a, b in zip(entries, moved, strict=True)):
            raise IndexError_(f"{self.root}: a shard listed in the manifest is missing; run 'zoo-tupate index rebuild'")
        return moved

    def embedding_of(self, entry: Entry) -> Embedding:
        """An index entry as an :class:`Embedding`."""
        meta = dict(entry.metadata)
        return Embedding(
            vector=self.vectors([entry])[0], method=entry.method, repr=entry.repr, pooling=entry.pooling,
            space=entry.space, base_model=meta.get("base_model", ""), layers=meta.get("layers", []),
            sha256=entry.sha256, source=entry.source, metadata=meta,
        )

    # ----------------------------------------------------------------- writing
    def add(
        self,
        path: str | Path,
        name: str | None = None,
        reprs: Iterable[str] = REPRS,
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        force: bool = False,
        base_model_id: str | None = None,
        pooling: str = "layer-mean",
        include_heads: bool = False,
        base_weights: Path | None = None,
        replace: bool = False,
    ) -> list[Entry]:
        """Embed a checkpoint in each repr (cached by content hash) and add it; returns the entries.

        By default both reprs; ``delta`` is skipped for methods other than LoRA when several reprs are asked.
        Degenerate adapters raise :class:`DegenerateAdapter` unless ``force``. The default name identifies
        the task and method (:func:`~zoo_tupate.naming.default_name`); a name that already holds other
        content raises :class:`NameTaken` unless ``replace``.
        """
        path = Path(path).expanduser()
        name = name or escape_controls(default_name(resolve_strictly(path)))
        reprs = list(dict.fromkeys(reprs))
        if is_card(path):
            from_card = [e for e in read_card(path) if e.repr in reprs]
            if not from_card:
                raise UnsupportedCheckpoint(f"{path}: the embedding card has no vector in repr {', '.join(reprs)}")
            return self.add_embeddings(name, from_card, source=source, metadata=metadata, replace=replace)
        embeddings: list[Embedding] = []
        for repr_ in reprs:
            try:
                emb = self.cached_embed(path, repr_, pooling, include_heads, base_model_id, base_weights)
            except UnsupportedCheckpoint:
                if repr_ == "delta" and len(reprs) > 1:
                    continue
                raise
            if emb.degenerate and not force:
                raise DegenerateAdapter(f"{path}: degenerate adapter, not indexed ({emb.degenerate_reason}); "
                                        "use --force to index it anyway")
            embeddings.append(emb)
        return self.add_embeddings(name, embeddings, source=source, metadata=metadata, replace=replace)

    def add_embedding(self, name: str, emb: Embedding, source: str | None = None,
                      metadata: dict[str, Any] | None = None) -> Entry:
        """Add one precomputed embedding (e.g. from an embedding card) under ``name``."""
        return self.add_embeddings(name, [emb], source=source, metadata=metadata)[0]

    def add_embeddings(self, name: str, embeddings: list[Embedding], source: str | None = None,
                       metadata: dict[str, Any] | None = None, replace: bool = True) -> list[Entry]:
        """Add embeddings of one task (one per space); an unchanged (name, space, sha256) writes nothing.
        ``replace=False`` refuses (:class:`NameTaken`) a name that already holds other content."""
        return self.add_many([(name, emb, source, metadata) for emb in embeddings], replace=replace)

    def add_many(self, items: Iterable[tuple[str, Embedding, str | None, dict[str, Any] | None]],
                 replace: bool = True) -> list[Entry]:
        """Add many ``(name, embedding, source, metadata)`` at once: one shard per space, one commit.

        The bulk path of ``index import`` and of large pulls; same rules as :meth:`add_embeddings`
        (a later item for the same name and space wins). A name that already holds other content is
        replaced whole (its other spaces dropped in the same commit), or refused with
        :class:`NameTaken` when not ``replace``. Returns the entries in item order.
        """
        items = list(items)
        for name, emb, _, _ in items:
            if not name or name != name.strip() or has_controls(name):
                raise IndexError_(f"invalid entry name {escape_controls(name)!r}")
            if not np.all(np.isfinite(emb.vector)):
                raise CorruptCheckpoint(f"{emb.source or name}: embedding has non-finite values, not indexed")
        if not items:
            return []
        with self._locked():
            state = self.state()
            stale = _stale_spaces(state, items, replace)
            result: list[Entry | None] = [None] * len(items)
            latest: dict[tuple[str, str], int] = {}
            dims: dict[str, int] = {}
            for i, (name, emb, _, _) in enumerate(items):
                dim = dims.setdefault(emb.space, state.space_dim(emb.space) or emb.dim)
                if dim != emb.dim:
                    raise IncompatibleSpace(f"{emb.space}: dim {emb.dim} differs from the index's {dim}")
                latest[(name, emb.space)] = i
            new: dict[str, list[int]] = {}
            for (name, space), i in latest.items():
                slot = state.slot.get((name, space))
                emb = items[i][1]
                if (slot is not None and emb.sha256 and state.cols["sha256"][slot] == emb.sha256
                        and not _gains_segments(state, slot, emb)):
                    result[i] = state.entry(slot)
                    continue
                new.setdefault(space, []).append(i)
            if new or stale:
                put, replaced, written = [], [], set()
                try:
                    for space, positions in new.items():
                        for chunk in range(0, len(positions), MAX_SHARD_ROWS):
                            group = positions[chunk:chunk + MAX_SHARD_ROWS]
                            entries = self._write_shard(space, [items[i] for i in group])
                            written.add(entries[0].shard)
                            for i, entry in zip(group, entries, strict=True):
                                result[i] = entry
                                put.append(entry.to_json())
                                slot = state.slot.get((entry.name, space))
                                if slot is not None:
                                    replaced.append(state.entry(slot))
                    replaced += [state.entry(state.slot[key]) for key in stale]
                    self._tombstone(replaced)
                    self.store.commit({"put": encode_entries(put), "drop": [list(key) for key in stale]})
                except BaseException:
                    self._drop_uncommitted(written)
                    raise
                for space in new:
                    self._maybe_merge(space)
        if len(latest) < len(items):  # duplicates within the batch report the winner
            for j, (name, emb, _, _) in enumerate(items):
                if result[j] is None:
                    result[j] = result[latest[(name, emb.space)]]
        return [e for e in result if e is not None]

    def remove(self, name: str) -> list[Entry]:
        """Remove every entry of ``name``; returns what was removed."""
        with self._locked():
            state = self.state()
            gone = [state.entry(s) for s in state.by_name().get(name, [])]
            if not gone:
                raise EntryNotFound(f"no index entry named {name!r} in {self.root}")
            self._tombstone(gone)
            self.store.commit({"drop": [[e.name, e.space] for e in gone]})
        return gone

    def import_vectors(self, folder: str | Path, space: str, method: str | None = None) -> list[Entry]:
        """Index ``.npy`` vectors computed elsewhere (file stem = entry name) into ``space`` (in bulk)."""
        folder = Path(folder).expanduser()
        files = sorted(folder.glob("*.npy")) if folder.is_dir() else []
        if not files:
            raise UnsupportedCheckpoint(f"{folder}: no .npy files to import")
        method = method or next((m for m in METHODS if f"/{m}/" in f"/{space}/"), "external")
        embeddings = []
        for file in files:
            try:
                vector = np.load(file, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise CorruptCheckpoint(f"{file}: cannot read .npy ({exc})") from None
            if vector.ndim != 1 or not np.issubdtype(vector.dtype, np.number):
                raise UnsupportedCheckpoint(f"{file}: expected a 1-D numeric vector, got shape {vector.shape}")
            embeddings.append((file, Embedding(
                vector=vector.astype(np.float32), method=method, repr="raw", pooling="unknown",
                space=space, base_model="unknown", sha256=_sha_bytes(vector.tobytes()), source=str(file),
                metadata={"imported_from": str(file)})))
        dims = {e.dim for _, e in embeddings}
        if len(dims) > 1:
            raise IncompatibleSpace(f"{folder}: vectors of different lengths {sorted(dims)} cannot share a space")
        out: list[Entry] = []
        for start in range(0, len(embeddings), MAX_SHARD_ROWS):
            batch = embeddings[start:start + MAX_SHARD_ROWS]
            out.extend(self.add_many([(file.stem, emb, str(file), None) for file, emb in batch]))
        return out

    # ----------------------------------------------------------------- ranking
    def suggest(
        self,
        targets: list[Embedding],
        exclude: Iterable[str] = (),
        top_k: int | None = 10,
        methods: Iterable[str] | None = None,
        reprs: Iterable[str] | None = None,
        ensemble: bool = False,
        center: bool = False,
        exact: bool = False,
        cross_layout: str = "auto",
        pool: list[tuple[Index, set[str]]] | None = None,
    ) -> Ranking:
        """Rank the zoo's entries for the target embeddings (one per space); the target is never ranked.

        ``reprs`` compares only the targets in those representations; ``None`` (the default) compares each
        method in its preferred one (LoRA: ``delta``, else ``raw``; see :mod:`zoo_tupate.defaults`), falling
        back to ``raw`` with a note when the index holds no entry to compare it with. Spaces with many
        entries are searched through the stored sketches with an exact re-rank of the best candidates
        (see :mod:`zoo_tupate.ann`); ``exact`` forces a full scan. ``cross_layout`` scores entries of other
        layouts on their shared modules (:mod:`zoo_tupate.crossrank`; ``pool``: the zoo's layers, each with the
        names it leaves out).
        """
        for attempt in range(2):
            try:
                return rank(self, targets, exclude=set(exclude), top_k=top_k, methods=methods, reprs=reprs,
                            ensemble=ensemble, center=center, exact=exact, cross_layout=cross_layout,
                            pool=pool)
            except FileNotFoundError:
                if attempt:
                    raise
                # a writer merged shards away since this process loaded the manifest: load it again
                self.store.invalidate()
                self.shard_cache = ShardCache()
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------- maintenance
    def rebuild(self) -> dict[str, int]:
        """Compact all shards; recover a damaged manifest from the shards' records. Returns counts."""
        with self._locked():
            try:
                entries = self._load()
                recovered = False
            except IndexError_:
                entries = self._recover_from_shards()
                recovered = True
            live, lost = [], 0
            for entry in entries:
                try:
                    map_vectors(self.root / entry.shard)
                    live.append(entry)
                except (OSError, ZooError):
                    lost += 1
            by_space: dict[str, list[Entry]] = {}
            for entry in live:
                by_space.setdefault(entry.space, []).append(entry)
            compacted = [e for space, group in by_space.items() for e in self._merge(space, group)]
            state = State()
            for entry in compacted:
                state.put(entry.to_json())
            generation = max(self.store.max_journal_generation(), 0) + 1
            if not recovered:
                generation = max(generation, self.store._generation + 1)
            self.store.checkpoint(state, generation)
            (self.root / "removed.jsonl").unlink(missing_ok=True)
            removed_files = self._delete_unreferenced(compacted)
        return {"entries": len(compacted), "spaces": len(by_space), "lost": lost,
                "recovered": int(recovered), "files_removed": removed_files}

    # ----------------------------------------------------------------- internals
    def _locked(self):
        lock = self._lock()
        try:
            lock.acquire()
        except Timeout:
            raise IndexError_(f"{self.root}: index is locked by another process (waited {LOCK_TIMEOUT_S:.0f} s)") from None
        self._written = set()
        return _Release(lock, self)

    def _new_shard_name(self, space: str) -> str:
        return f"shards/{space_dirname(space)}/{time.time_ns():x}-{uuid.uuid4().hex[:8]}.safetensors"

    def _write_shard(self, space: str, items: list[tuple[str, Embedding, str | None, dict[str, Any] | None]]
                     ) -> list[Entry]:
        """Write the embeddings of one space as one shard; returns their entries."""
        shard = self._new_shard_name(space)
        now = time.time()
        entries = []
        for row, (name, emb, source, metadata) in enumerate(items):
            meta = {**_entry_metadata(emb), **(metadata or {})}
            entries.append(Entry(name=name, space=emb.space, method=emb.method, repr=emb.repr,
                                 pooling=emb.pooling, dim=emb.dim, source=source or emb.source, sha256=emb.sha256,
                                 shard=shard, row=row, metadata=meta, added=now))
        matrix = np.stack([emb.vector for _, emb, _, _ in items]).astype(np.float32, copy=False)
        self._write_shard_file(shard, space, matrix, entries)
        return entries

    def _write_shard_file(self, shard: str, space: str, matrix: np.ndarray, entries: list[Entry]) -> None:
        """One shard: vectors, their search extras, and the entries' records (JSON bytes in a ``records``
        tensor, so opening a shard parses a small header; ``rebuild`` recovers entries from them)."""
        records = json.dumps([e.to_json() for e in entries], default=json_default).encode()
        tensors = {"vectors": [matrix], **{k: [v] for k, v in shard_extras(matrix).items()},
                   "records": [np.frombuffer(records, np.uint8)]}
        write_tensor_parts(self.root / shard, tensors, {"space": space, "records": "tensor"})
        self._written.add(shard)

    def _merge(self, space: str, group: list[Entry]) -> list[Entry]:
        """Rewrite ``group`` (one space) into shards of at most MAX_SHARD_ROWS rows; returns the moved entries."""
        if len({e.shard for e in group}) <= 1 and all(e.row == i for i, e in enumerate(group)):
            if all(self._has_extras(e.shard) for e in group[:1]):
                return group
        moved: list[Entry] = []
        for start in range(0, len(group), MAX_SHARD_ROWS):
            chunk = group[start:start + MAX_SHARD_ROWS]
            shard = self._new_shard_name(space)
            matrix = self.vectors(chunk)
            out = [Entry(**{**e.to_json(), "shard": shard, "row": i}) for i, e in enumerate(chunk)]
            self._write_shard_file(shard, space, matrix, out)
            moved.extend(out)
        return moved

    def _has_extras(self, shard: str) -> bool:
        return self.shard_cache.get(self.root / shard, "sqnorm", required=False) is not None

    def _maybe_merge(self, space: str) -> None:
        """Merge FANOUT shards of one size class (by live rows) into one; repeat while a class is full."""
        while True:
            state = self.state()
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
            moved = self._merge(space, group)
            self.store.commit({"put": encode_entries([e.to_json() for e in moved])})
            for shard in chosen:
                self.shard_cache.forget(self.root / shard)
                (self.root / shard).unlink(missing_ok=True)

    def _drop_uncommitted(self, shards: set[str]) -> None:
        """After a failed write under the lock, remove the shards it wrote that the index on disk does not
        reference (no orphan left for ``rebuild``; a shard a landed commit references stays)."""
        try:
            self.store.invalidate()
            state = self.state()
            used = {state.shard(slot) for slot in state.slots()}
        except (OSError, ZooError):
            return  # cannot tell: leave them to ``rebuild``
        for shard in shards - used:
            self.shard_cache.forget(self.root / shard)
            (self.root / shard).unlink(missing_ok=True)

    def _tombstone(self, entries: list[Entry]) -> None:
        if not entries:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "removed.jsonl", "a", encoding="utf-8") as handle:
            for e in entries:
                handle.write(json.dumps({"shard": e.shard, "row": e.row}) + "\n")

    def _recover_from_shards(self) -> list[Entry]:
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

    def _delete_unreferenced(self, entries: list[Entry]) -> int:
        used = {e.shard for e in entries}
        count = 0
        for file in (self.root / "shards").glob("*/*") if (self.root / "shards").exists() else []:
            if file.relative_to(self.root).as_posix() not in used:
                self.shard_cache.forget(file)
                file.unlink(missing_ok=True)
                count += 1
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        return count

    # ----------------------------------------------------------------- embedding cache
    def cached_embed(self, path: Path, repr_: str, pooling: str, include_heads: bool = False,
                     base_model_id: str | None = None, base_weights: Path | None = None) -> Embedding:
        """:func:`zoo_tupate.embed` through the content-hash cache."""
        from zoo_tupate.api import embed_checkpoint
        from zoo_tupate.readers import open_checkpoint
        from zoo_tupate.weights import sha256_files

        ckpt = open_checkpoint(path)
        sha = sha256_files([ckpt.weights])
        key = _sha_bytes(json.dumps([repr_, pooling, include_heads, base_model_id,
                                     str(base_weights or ""), _config_digest(ckpt.config)]).encode())[:16]
        file = self.cache / sha[:2] / f"{sha}-{key}.safetensors"
        if file.exists():
            try:
                meta = read_metadata(file)
                vector = np.array(map_vectors(file, "vector"))
                emb = Embedding(vector=vector, **{k: v for k, v in meta.items() if k != "dim"})
                emb.source = str(ckpt.path)
                return emb
            except (ZooError, TypeError, OSError):
                file.unlink(missing_ok=True)
        emb = embed_checkpoint(ckpt, repr=repr_, pooling=pooling, include_heads=include_heads,
                               base_model_id=base_model_id, base_weights=base_weights, sha256=sha)
        # a cache entry needs no fsync: a torn one fails to parse and is recomputed
        write_vectors(file, {"vector": emb.vector}, emb.to_json(), durable=False)
        return emb


class _Release:
    """Holds the writer lock for a ``with`` block; a block that fails drops the shards it wrote."""

    def __init__(self, lock: FileLock, index: Index):
        self.lock, self.index = lock, index

    def __enter__(self) -> FileLock:
        return self.lock

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is not None and self.index._written:
                self.index._drop_uncommitted(self.index._written)
        finally:
            self.index._written = set()
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


def _stale_spaces(state: State, items: list[tuple[str, Embedding, str | None, dict[str, Any] | None]],
                  replace: bool) -> list[tuple[str, str]]:
    """(name, space) pairs a replacing add drops: the names' spaces the items do not write again.

    A name is taken when it holds content of other weights than the items' (a different sha256): without
    ``replace`` that raises :class:`NameTaken`. The same weights in more spaces (``--repr both`` later)
    only extend the entry.
    """
    new: dict[str, dict[str, str]] = {}
    for name, emb, _, _ in items:
        new.setdefault(name, {})[emb.space] = emb.sha256
    stale: list[tuple[str, str]] = []
    for name, spaces in new.items():
        held = {state.kind(s)[0]: state.cols["sha256"][s] for s in state.by_name().get(name, [])}
        if not held or set(spaces.values()) <= set(held.values()) - {""}:
            continue
        if not replace:
            sources = sorted({state.cols["source"][s] for s in state.by_name()[name]} - {""})
            raise NameTaken(f"{name}: an index entry of this name already holds other weights"
                            f"{' (from ' + sources[0] + ')' if sources else ''}; pass --replace to replace it, "
                            "or --name to add under another name")
        stale.extend((name, space) for space in held if space not in spaces)
    return stale


def _gains_segments(state: State, slot: int, emb: Embedding) -> bool:
    """Whether re-adding known weights brings the segment layout their entry was indexed without."""
    return (SEGMENTS_KEY not in state.metas.values[state.cols["meta"][slot]]
            and segments_of(emb.metadata, emb.method, emb.repr, emb.pooling, emb.dim) is not None)


def _entry_metadata(emb: Embedding) -> dict[str, Any]:
    meta = {"base_model": emb.base_model, "layers": emb.layers}
    for key in ("format", "num_params", "config", "weights_file"):
        if key in emb.metadata:
            meta[key] = emb.metadata[key]
    segments = segments_of(emb.metadata, emb.method, emb.repr, emb.pooling, emb.dim)
    if segments is not None:
        meta[SEGMENTS_KEY] = segments  # cross-layout scoring slices the stored vector by these
    return meta


def _sha_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _config_digest(config: dict[str, Any]) -> str:
    return _sha_bytes(json.dumps(config, sort_keys=True, default=str).encode())[:16]


def iter_spaces(entries: Iterable[Entry]) -> Iterator[tuple[str, list[Entry]]]:
    """Group entries by space (sorted by space name)."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.space, []).append(entry)
    yield from sorted(groups.items())
