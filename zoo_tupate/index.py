"""The zoo index: task embeddings on disk, per space, append-only shards plus an atomic manifest.

Layout under ``<home>/index``::

    manifest.json                 every live entry: name, space, shard, row, sha256, source, metadata
    shards/<space>/<id>.safetensors   float32 ``vectors`` (n × dim) + the entries' records as metadata
    removed.jsonl                 tombstones (shard, row) so a recovery from shards never resurrects
    .lock                         writers serialise on this file lock

Adding writes one small shard and then replaces the manifest (temp file + rename) under the lock: a
killed writer leaves at worst an unreferenced shard, never a broken index. Readers need no lock. Small
shards are merged once there are many; ``rebuild`` compacts everything and recovers a damaged manifest
from the shards' own records. Computed embeddings are cached by content hash under
``<home>/cache/embeddings`` so re-adding known weights recomputes nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from zoo_tupate.cardfile import is_card, read_card
from zoo_tupate.embedding import METHODS, Embedding
from zoo_tupate.errors import (
    CorruptCheckpoint,
    DegenerateAdapter,
    EntryNotFound,
    IncompatibleSpace,
    IndexError_,
    UnsupportedCheckpoint,
    ZooError,
)
from zoo_tupate.ranking import Ranking, Suggestion, rank
from zoo_tupate.space import space_dirname
from zoo_tupate.storage import atomic_write_json, map_vectors, read_metadata, write_vectors

MANIFEST_VERSION = 1
#: Merge small shards of a space once it has more than this many.
MAX_SMALL_SHARDS = 64
SMALL_SHARD_ROWS = 4096
LOCK_TIMEOUT_S = 120.0

__all__ = ["Entry", "Index", "Ranking", "Suggestion"]


@dataclass
class Entry:
    """One vector of the zoo: a named task in one space."""

    name: str
    space: str
    method: str
    repr: str
    pooling: str
    dim: int
    source: str
    sha256: str
    shard: str
    row: int
    metadata: dict[str, Any] = field(default_factory=dict)
    added: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """Rebuild from :meth:`to_json` output (unknown keys ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class Index:
    """A zoo of task embeddings stored under ``home`` (see module docstring)."""

    def __init__(self, home: str | Path):
        self.home = Path(home).expanduser()
        self.root = self.home / "index"
        self.cache = self.home / "cache" / "embeddings"
        self.manifest_path = self.root / "manifest.json"

    # ----------------------------------------------------------------- reading
    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT_S)

    def _load(self) -> list[Entry]:
        if not self.manifest_path.exists():
            return []
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            return [Entry.from_json(e) for e in data["entries"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexError_(
                f"{self.manifest_path}: damaged manifest ({type(exc).__name__}); run 'zoo-tupate index rebuild'"
            ) from None

    def entries(self) -> list[Entry]:
        """Every entry, sorted by name then space."""
        return sorted(self._load(), key=lambda e: (e.name, e.space))

    def get(self, name: str) -> list[Entry]:
        """The entries (one per space) of ``name``; EntryNotFound when none."""
        found = [e for e in self.entries() if e.name == name]
        if not found:
            raise EntryNotFound(f"no index entry named {name!r} in {self.root}")
        return found

    def names(self) -> set[str]:
        """Entry names."""
        return {e.name for e in self._load()}

    def vectors(self, entries: list[Entry]) -> np.ndarray:
        """The vectors of ``entries`` stacked (read through memory maps)."""
        if not entries:
            return np.zeros((0, 0), np.float32)
        out = np.empty((len(entries), entries[0].dim), np.float32)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, entry in enumerate(entries):
            by_shard.setdefault(entry.shard, []).append((i, entry.row))
        for shard, rows in by_shard.items():
            matrix = map_vectors(self.root / shard)
            positions = [i for i, _ in rows]
            out[positions] = matrix[[r for _, r in rows]]
        return out

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
        reprs: Iterable[str] = ("raw",),
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        force: bool = False,
        base_model_id: str | None = None,
        pooling: str = "layer-mean",
        include_heads: bool = False,
        base_weights: Path | None = None,
    ) -> list[Entry]:
        """Embed a checkpoint in each repr (cached by content hash) and add it; returns the entries.

        ``repr`` ``delta`` is skipped with a note for methods other than LoRA when several reprs are asked.
        Degenerate adapters raise :class:`DegenerateAdapter` unless ``force``.
        """
        path = Path(path).expanduser()
        name = name or path.resolve().name
        reprs = list(dict.fromkeys(reprs))
        if is_card(path):
            from_card = [e for e in read_card(path) if e.repr in reprs]
            if not from_card:
                raise UnsupportedCheckpoint(f"{path}: the embedding card has no vector in repr {', '.join(reprs)}")
            return self.add_embeddings(name, from_card, source=source, metadata=metadata)
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
        return self.add_embeddings(name, embeddings, source=source, metadata=metadata)

    def add_embedding(self, name: str, emb: Embedding, source: str | None = None,
                      metadata: dict[str, Any] | None = None) -> Entry:
        """Add one precomputed embedding (e.g. from an embedding card) under ``name``."""
        return self.add_embeddings(name, [emb], source=source, metadata=metadata)[0]

    def add_embeddings(self, name: str, embeddings: list[Embedding], source: str | None = None,
                       metadata: dict[str, Any] | None = None) -> list[Entry]:
        """Add embeddings of one task (one per space); an unchanged (name, space, sha256) writes nothing."""
        if not name or name != name.strip():
            raise IndexError_(f"invalid entry name {name!r}")
        for emb in embeddings:
            if not np.all(np.isfinite(emb.vector)):
                raise CorruptCheckpoint(f"{emb.source or name}: embedding has non-finite values, not indexed")
        result: list[Entry] = []
        with self._locked():
            entries = self._load()
            current = {(e.name, e.space): e for e in entries}
            new: list[tuple[Embedding, dict[str, Any]]] = []
            for emb in embeddings:
                old = current.get((name, emb.space))
                if old is not None and emb.sha256 and old.sha256 == emb.sha256:
                    result.append(old)
                    continue
                for other in entries:
                    if other.space == emb.space and other.dim != emb.dim:
                        raise IncompatibleSpace(f"{emb.space}: dim {emb.dim} differs from the index's {other.dim}")
                meta = {**_entry_metadata(emb), **(metadata or {})}
                new.append((emb, meta))
            if not new:
                return result
            removed = []
            for emb, meta in new:
                entry = self._write_shard(name, emb, source or emb.source, meta)
                old = current.pop((name, emb.space), None)
                if old is not None:
                    removed.append(old)
                current[(name, emb.space)] = entry
                result.append(entry)
            self._tombstone(removed)
            self._save(list(current.values()))
            for space in {emb.space for emb, _ in new}:
                self._maybe_merge(space)
        return result

    def remove(self, name: str) -> list[Entry]:
        """Remove every entry of ``name``; returns what was removed."""
        with self._locked():
            entries = self._load()
            gone = [e for e in entries if e.name == name]
            if not gone:
                raise EntryNotFound(f"no index entry named {name!r} in {self.root}")
            self._tombstone(gone)
            self._save([e for e in entries if e.name != name])
        return gone

    def import_vectors(self, folder: str | Path, space: str, method: str | None = None) -> list[Entry]:
        """Index ``.npy`` vectors computed elsewhere (file stem = entry name) into ``space``."""
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
        return [self.add_embedding(file.stem, emb, source=str(file)) for file, emb in embeddings]

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
    ) -> Ranking:
        """Rank the zoo's entries for the target embeddings (one per space); the target is never ranked."""
        return rank(self, targets, exclude=set(exclude), top_k=top_k, methods=methods, reprs=reprs,
                    ensemble=ensemble, center=center)

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
            self._save(compacted)
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
        return _Release(lock)

    def _save(self, entries: list[Entry]) -> None:
        entries = sorted(entries, key=lambda e: (e.name, e.space))
        atomic_write_json(self.manifest_path, {"version": MANIFEST_VERSION,
                                               "entries": [e.to_json() for e in entries]})

    def _write_shard(self, name: str, emb: Embedding, source: str, meta: dict[str, Any]) -> Entry:
        shard = f"shards/{space_dirname(emb.space)}/{time.time_ns():x}-{uuid.uuid4().hex[:8]}.safetensors"
        entry = Entry(name=name, space=emb.space, method=emb.method, repr=emb.repr, pooling=emb.pooling,
                      dim=emb.dim, source=source, sha256=emb.sha256, shard=shard, row=0, metadata=meta,
                      added=time.time())
        write_vectors(self.root / shard, {"vectors": emb.vector[None, :]},
                      {"space": emb.space, "entries": [entry.to_json()]})
        return entry

    def _merge(self, space: str, group: list[Entry]) -> list[Entry]:
        """Rewrite ``group`` (one space) into one shard; returns the updated entries."""
        if len({e.shard for e in group}) <= 1 and all(e.row == i for i, e in enumerate(group)):
            return group
        shard = f"shards/{space_dirname(space)}/{time.time_ns():x}-{uuid.uuid4().hex[:8]}.safetensors"
        matrix = self.vectors(group)
        moved = [Entry(**{**e.to_json(), "shard": shard, "row": i}) for i, e in enumerate(group)]
        write_vectors(self.root / shard, {"vectors": matrix}, {"space": space, "entries": [e.to_json() for e in moved]})
        return moved

    def _maybe_merge(self, space: str) -> None:
        entries = self._load()
        in_space = [e for e in entries if e.space == space]
        sizes: dict[str, int] = {}
        for e in in_space:
            sizes[e.shard] = sizes.get(e.shard, 0) + 1
        small = {s for s, n in sizes.items() if n < SMALL_SHARD_ROWS}
        if len(small) <= MAX_SMALL_SHARDS:
            return
        merged = self._merge(space, [e for e in in_space if e.shard in small])
        keep = [e for e in entries if not (e.space == space and e.shard in small)]
        self._save(keep + merged)
        for shard in small:
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
                records = read_metadata(file)["entries"]
            except (ZooError, KeyError, OSError):
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
                file.unlink(missing_ok=True)
                count += 1
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        return count

    # ----------------------------------------------------------------- embedding cache
    def cached_embed(self, path: Path, repr_: str, pooling: str, include_heads: bool = False,
                     base_model_id: str | None = None, base_weights: Path | None = None) -> Embedding:
        """:func:`zoo_tupate.embed` through the content-hash cache."""
        from zoo_tupate.api import embed
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
        emb = embed(path, repr=repr_, pooling=pooling, include_heads=include_heads,
                    base_model_id=base_model_id, base_weights=base_weights)
        write_vectors(file, {"vector": emb.vector}, emb.to_json())
        return emb


class _Release:
    def __init__(self, lock: FileLock):
        self.lock = lock

    def __enter__(self) -> FileLock:
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def _entry_metadata(emb: Embedding) -> dict[str, Any]:
    meta = {"base_model": emb.base_model, "layers": emb.layers}
    for key in ("format", "num_params", "config", "weights_file"):
        if key in emb.metadata:
            meta[key] = emb.metadata[key]
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
