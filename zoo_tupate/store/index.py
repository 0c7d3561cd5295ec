"""The zoo index: task embeddings on disk, per space, in append-only shards, listed by a journaled manifest.

Layout under ``<home>/index``::

    manifest.json + journal.<g>.jsonl   the live entries: a checkpoint plus committed changes (see
                                        :mod:`zoo_tupate.store.journal`); an add appends one line, never rewrites
    shards/<space>/<id>.safetensors     float32 ``vectors`` (n × dim), ``sqnorm``, ``total`` and (long vectors)
                                        ``sketch`` (see :mod:`zoo_tupate.store.ann`), plus the entries' records
    removed.jsonl                       tombstones (shard, row) so a recovery from shards never resurrects
    .lock                               writers serialise on this file lock

Adding writes one shard (fsync, rename) and then commits one journal line under the lock: a killed writer
leaves at worst an unreferenced shard or a torn journal line, never a broken index. Readers need no lock;
shards are immutable and memory-mapped. Small shards are merged in tiers (``FANOUT`` shards of one size
class into one), so each vector is rewritten O(log n) times and an add never rewrites the index;
``rebuild`` compacts everything and recovers a damaged manifest from the shards' own records (the shard
files, their lock, merges and recovery: :mod:`zoo_tupate.store.shards`). Computed embeddings are cached by
content hash under ``<home>/cache/embeddings`` (:mod:`zoo_tupate.store.embedcache`) so re-adding known weights
recomputes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.cards.cardfile import is_card, read_card
from zoo_tupate.core.errors import (
    CorruptCheckpoint,
    DegenerateAdapter,
    EntryNotFound,
    IncompatibleSpace,
    IndexError_,
    UnsupportedCheckpoint,
    ZooError,
)
from zoo_tupate.core.safetext import escape_controls, has_controls
from zoo_tupate.core.storage import map_vectors
from zoo_tupate.embedding.segments import SEGMENTS_KEY, segments_of
from zoo_tupate.embedding.vectors import METHODS, REPRS, Embedding
from zoo_tupate.formats.npyfile import read_vector
from zoo_tupate.formats.weights import resolve_strictly
from zoo_tupate.store.ann import ShardCache
from zoo_tupate.store.embedcache import cached_embed
from zoo_tupate.store.journal import ManifestStore
from zoo_tupate.store.manifest import MANIFEST_VERSION, Entry, State, encode_entries
from zoo_tupate.store.naming import default_name, stale_spaces
from zoo_tupate.store.shards import MAX_SHARD_ROWS, ShardStore

__all__ = ["MANIFEST_VERSION", "Entry", "Index"]


class Index:
    """A zoo of task embeddings stored under ``home`` (see module docstring)."""

    def __init__(self, home: str | Path):
        self.home = Path(home).expanduser()
        self.root = self.home / "index"
        self.cache = self.home / "cache" / "embeddings"
        self.manifest_path = self.root / "manifest.json"
        self.store = ManifestStore(self.root)
        self.shards = ShardStore(self.root, self.store)

    # ----------------------------------------------------------------- reading
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
        try:
            return self.shards.read(entries, entries[0].dim)
        except FileNotFoundError:
            # a concurrent writer merged a shard away after ``entries`` were listed: look them up again
            return self.vectors(self._relocate(entries))

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
        the task and method (:func:`~zoo_tupate.store.naming.default_name`); a name that already holds other
        content raises :class:`NameTaken` unless ``replace``.
        """
        path = Path(path).expanduser()
        name = name or escape_controls(default_name(resolve_strictly(path)))
        reprs = list(dict.fromkeys(reprs))
        if is_card(path):
            from_card = [e for e in read_card(path) if e.repr in reprs]
            if not from_card:
                raise UnsupportedCheckpoint(f"{path}: the embedding card has no vector in repr {', '.join(reprs)}")
            # the entry points at this folder (the card records where it was written, e.g. a tune's temp folder)
            return self.add_embeddings(name, from_card, source=source or str(path), metadata=metadata,
                                       replace=replace)
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
        with self.shards.locked():
            state = self.state()
            stale = stale_spaces(state, items, replace)
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
                    self.shards.tombstone(replaced)
                    self.store.commit({"put": encode_entries(put), "drop": [list(key) for key in stale]})
                except BaseException:
                    self.shards.drop_uncommitted(written)
                    raise
                for space in new:
                    self.shards.maybe_merge(space)
        if len(latest) < len(items):  # duplicates within the batch report the winner
            for j, (name, emb, _, _) in enumerate(items):
                if result[j] is None:
                    result[j] = result[latest[(name, emb.space)]]
        return [e for e in result if e is not None]

    def remove(self, name: str) -> list[Entry]:
        """Remove every entry of ``name``; returns what was removed."""
        with self.shards.locked():
            state = self.state()
            gone = [state.entry(s) for s in state.by_name().get(name, [])]
            if not gone:
                raise EntryNotFound(f"no index entry named {name!r} in {self.root}")
            self.shards.tombstone(gone)
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
            vector = read_vector(file)
            embeddings.append((file, Embedding(
                vector=vector, method=method, repr="raw", pooling="unknown",
                space=space, base_model="unknown", sha256=hashlib.sha256(vector.tobytes()).hexdigest(), source=str(file),
                metadata={"imported_from": str(file)})))
        dims = {e.dim for _, e in embeddings}
        if len(dims) > 1:
            raise IncompatibleSpace(f"{folder}: vectors of different lengths {sorted(dims)} cannot share a space")
        out: list[Entry] = []
        for start in range(0, len(embeddings), MAX_SHARD_ROWS):
            batch = embeddings[start:start + MAX_SHARD_ROWS]
            out.extend(self.add_many([(file.stem, emb, str(file), None) for file, emb in batch]))
        return out

    def reload(self) -> None:
        """Forget the loaded manifest and open shard maps (a writer merged shards away since they were read)."""
        self.store.invalidate()
        self.shards.cache = ShardCache()

    # ----------------------------------------------------------------- maintenance
    def rebuild(self) -> dict[str, int]:
        """Compact all shards; recover a damaged manifest from the shards' records. Returns counts."""
        with self.shards.locked():
            try:
                entries = self._load()
                recovered = False
            except IndexError_:
                entries = self.shards.recover()
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
            compacted = [e for space, group in by_space.items() for e in self.shards.merge(space, group)]
            state = State()
            for entry in compacted:
                state.put(entry.to_json())
            generation = max(self.store.max_journal_generation(), 0) + 1
            if not recovered:
                generation = max(generation, self.store._generation + 1)
            self.store.checkpoint(state, generation)
            (self.root / "removed.jsonl").unlink(missing_ok=True)
            removed_files = self.shards.delete_unreferenced(compacted)
        return {"entries": len(compacted), "spaces": len(by_space), "lost": lost,
                "recovered": int(recovered), "files_removed": removed_files}

    # ----------------------------------------------------------------- internals
    def _write_shard(self, space: str, items: list[tuple[str, Embedding, str | None, dict[str, Any] | None]]
                     ) -> list[Entry]:
        """Write the embeddings of one space as one shard; returns their entries."""
        shard = self.shards.new_name(space)
        now = time.time()
        entries = []
        for row, (name, emb, source, metadata) in enumerate(items):
            meta = {**_entry_metadata(emb), **(metadata or {})}
            entries.append(Entry(name=name, space=emb.space, method=emb.method, repr=emb.repr,
                                 pooling=emb.pooling, dim=emb.dim, source=source or emb.source, sha256=emb.sha256,
                                 shard=shard, row=row, metadata=meta, added=now))
        matrix = np.stack([emb.vector for _, emb, _, _ in items]).astype(np.float32, copy=False)
        self.shards.write(shard, space, matrix, entries)
        return entries

    # ----------------------------------------------------------------- embedding cache
    def cached_embed(self, path: Path, repr_: str, pooling: str, include_heads: bool = False,
                     base_model_id: str | None = None, base_weights: Path | None = None) -> Embedding:
        """:func:`zoo_tupate.embed` through the content-hash cache under ``<home>/cache/embeddings``."""
        return cached_embed(self.cache, path, repr_, pooling, include_heads, base_model_id, base_weights)


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
