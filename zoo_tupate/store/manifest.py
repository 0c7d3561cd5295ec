"""The index manifest's contents: every live entry, held in columns with names, spaces, shards and
metadata interned (:class:`State`), and the compact column form that checkpoints and journal records share
(:func:`encode_entries`). How it is stored, committed and read back: :mod:`zoo_tupate.store.journal`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_VERSION = 2


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


class _Interned:
    """A list of distinct values and their positions (JSON values keyed by their canonical text)."""

    def __init__(self, values: list | None = None, keyed: bool = False):
        self.values: list = []
        self.ids: dict = {}
        self.keyed = keyed
        for value in values or []:
            self.add(value)

    def add(self, value: Any) -> int:
        key = json.dumps(value, sort_keys=True, default=str) if self.keyed else value
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.values)
            self.values.append(value)
        return found


class State:
    """Every live entry, in columns; slots of dropped entries are reused."""

    _COLUMNS = ("name", "kind", "shard", "row", "sha256", "source", "added", "meta")

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in self._COLUMNS}
        self.slot: dict[tuple[str, str], int] = {}
        self.free: list[int] = []
        self.kinds = _Interned()  # (space, method, repr, pooling, dim)
        self.shards = _Interned()
        self.metas = _Interned(keyed=True)
        self.version = 0
        self._derived: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.slot)

    # -------------------------------------------------------------- changes
    def put(self, e: dict[str, Any]) -> None:
        """Insert or replace the entry ``(e['name'], e['space'])``."""
        key = (e["name"], e["space"])
        values = {
            "name": e["name"],
            "kind": self.kinds.add((e["space"], e["method"], e["repr"], e["pooling"], int(e["dim"]))),
            "shard": self.shards.add(e["shard"]),
            "row": int(e["row"]),
            "sha256": e.get("sha256", ""),
            "source": e.get("source", ""),
            "added": float(e.get("added", 0.0)),
            "meta": self.metas.add(e.get("metadata") or {}),
        }
        slot = self.slot.get(key)
        if slot is None:
            slot = self.free.pop() if self.free else len(self.cols["name"])
            if slot == len(self.cols["name"]):
                for column in self._COLUMNS:
                    self.cols[column].append(None)
            self.slot[key] = slot
        for column, value in values.items():
            self.cols[column][slot] = value
        self._changed()

    def drop(self, name: str, space: str) -> None:
        """Remove an entry (no error when absent)."""
        slot = self.slot.pop((name, space), None)
        if slot is not None:
            self.cols["name"][slot] = None
            self.free.append(slot)
            self._changed()

    def apply(self, record: dict[str, Any]) -> None:
        """Apply one journal record (``put`` as a list of entries or in columns, see :func:`encode_entries`)."""
        for name, space in record.get("drop", []):
            self.drop(name, space)
        put = record.get("put", [])
        if isinstance(put, dict):
            self._put_columns(put)
        else:
            for e in put:
                self.put(e)

    def _put_columns(self, block: dict[str, Any]) -> None:
        kinds = [self.kinds.add((k[0], k[1], k[2], k[3], int(k[4]))) for k in block["kinds"]]
        shards = [self.shards.add(x) for x in block["shards"]]
        metas = [self.metas.add(m) for m in block["metas"]]
        c, b = self.cols, block["entries"]
        spaces = [self.kinds.values[k][0] for k in kinds]
        for i, name in enumerate(b["name"]):
            key = (name, spaces[b["kind"][i]])
            slot = self.slot.get(key)
            if slot is None:
                slot = self.free.pop() if self.free else len(c["name"])
                if slot == len(c["name"]):
                    for column in self._COLUMNS:
                        c[column].append(None)
                self.slot[key] = slot
            c["name"][slot] = name
            c["kind"][slot] = kinds[b["kind"][i]]
            c["shard"][slot] = shards[b["shard"][i]]
            c["row"][slot] = int(b["row"][i])
            c["sha256"][slot] = b["sha256"][i]
            c["source"][slot] = b["source"][i]
            c["added"][slot] = float(b["added"][i])
            c["meta"][slot] = metas[b["meta"][i]]
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._derived.clear()

    # -------------------------------------------------------------- reading
    def slots(self) -> list[int]:
        """Live slots."""
        return list(self.slot.values())

    def kind(self, slot: int) -> tuple[str, str, str, str, int]:
        return self.kinds.values[self.cols["kind"][slot]]

    def shard(self, slot: int) -> str:
        return self.shards.values[self.cols["shard"][slot]]

    def entry(self, slot: int) -> Entry:
        """The entry in ``slot`` (its metadata is a copy)."""
        space, method, repr_, pooling, dim = self.kind(slot)
        c = self.cols
        return Entry(name=c["name"][slot], space=space, method=method, repr=repr_, pooling=pooling, dim=dim,
                     source=c["source"][slot], sha256=c["sha256"][slot], shard=self.shard(slot),
                     row=c["row"][slot], metadata=dict(self.metas.values[c["meta"][slot]]),
                     added=c["added"][slot])

    def derived(self, key: str, build) -> Any:
        """A value computed from the current state, cached until the next change."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def by_name(self) -> dict[str, list[int]]:
        """Name → live slots."""
        def build() -> dict[str, list[int]]:
            out: dict[str, list[int]] = {}
            for (name, _), slot in self.slot.items():
                out.setdefault(name, []).append(slot)
            return out
        return self.derived("by_name", build)

    def by_space(self) -> dict[str, list[int]]:
        """Space → live slots."""
        def build() -> dict[str, list[int]]:
            out: dict[str, list[int]] = {}
            for (_, space), slot in self.slot.items():
                out.setdefault(space, []).append(slot)
            return out
        return self.derived("by_space", build)

    def space_dim(self, space: str) -> int | None:
        """The dim of a space's entries (None when it has none)."""
        slots = self.by_space().get(space)
        return self.kind(slots[0])[4] if slots else None

    # -------------------------------------------------------------- checkpoint format
    def to_json(self, generation: int) -> dict[str, Any]:
        """The checkpoint document (live entries only, sorted by name then space)."""
        order = [self.slot[k] for k in sorted(self.slot)]
        kinds, shards, metas = _Interned(), _Interned(), _Interned(keyed=True)
        c = self.cols
        columns = {
            "name": [c["name"][s] for s in order],
            "kind": [kinds.add(self.kind(s)) for s in order],
            "shard": [shards.add(self.shard(s)) for s in order],
            "row": [c["row"][s] for s in order],
            "sha256": [c["sha256"][s] for s in order],
            "source": [c["source"][s] for s in order],
            "added": [c["added"][s] for s in order],
            "meta": [metas.add(self.metas.values[c["meta"][s]]) for s in order],
        }
        return {"version": MANIFEST_VERSION, "generation": generation, "kinds": [list(k) for k in kinds.values],
                "shards": shards.values, "metas": metas.values, "entries": columns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> tuple[State, int]:
        """Parse a checkpoint (or a version-1 manifest: a list of entries); returns (state, generation)."""
        state = cls()
        if data.get("version") == 1 or isinstance(data.get("entries"), list):
            for e in data["entries"]:
                state.put(e)
            return state, int(data.get("generation", 0))
        columns = data["entries"]
        kinds = [tuple(k) for k in data["kinds"]]
        n = len(columns["name"])
        if any(len(columns[c]) != n for c in cls._COLUMNS):
            raise ValueError("columns of different lengths")
        state.kinds = _Interned([(k[0], k[1], k[2], k[3], int(k[4])) for k in kinds])
        state.shards = _Interned(list(data["shards"]))
        state.metas = _Interned(list(data["metas"]), keyed=True)
        if len(state.kinds.values) != len(kinds) or len(state.shards.values) != len(data["shards"]):
            raise ValueError("duplicate interned values")
        state.cols = {c: list(columns[c]) for c in cls._COLUMNS}
        spaces = [k[0] for k in state.kinds.values]
        state.slot = {(name, spaces[k]): i for i, (name, k) in enumerate(zip(columns["name"], columns["kind"],
                                                                              strict=True))}
        if len(state.slot) != n:
            raise ValueError("duplicate (name, space) entries")
        return state, int(data["generation"])


def encode_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Entries (``Entry.to_json()`` dicts) in the compact column form of checkpoints and journal records."""
    kinds, shards, metas = _Interned(), _Interned(), _Interned(keyed=True)
    meta_ids: dict[int, int] = {}
    columns: dict[str, list] = {c: [] for c in State._COLUMNS}
    for e in entries:
        meta = e.get("metadata") or {}
        mid = meta_ids.get(id(meta))
        if mid is None:
            mid = meta_ids[id(meta)] = metas.add(meta)
        columns["name"].append(e["name"])
        columns["kind"].append(kinds.add((e["space"], e["method"], e["repr"], e["pooling"], int(e["dim"]))))
        columns["shard"].append(shards.add(e["shard"]))
        columns["row"].append(int(e["row"]))
        columns["sha256"].append(e.get("sha256", ""))
        columns["source"].append(e.get("source", ""))
        columns["added"].append(float(e.get("added", 0.0)))
        columns["meta"].append(mid)
    return {"kinds": [list(k) for k in kinds.values], "shards": shards.values, "metas": metas.values,
            "entries": columns}
