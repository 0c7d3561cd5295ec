"""The index manifest on disk: a compact checkpoint plus an append-only journal of committed changes.

Files under ``<home>/index``::

    manifest.json            checkpoint generation g: every live entry, in columns (names, spaces, shards
                             and metadata interned), written atomically (temp file, fsync, rename)
    journal.<g>.jsonl        changes committed since checkpoint g, one record a line:
                             ``<crc32 hex> {"put": [entry, ...], "drop": [[name, space], ...]}``

A change is committed when its line is fully written and fsynced. Readers (no lock) apply every line whose
checksum verifies and stop at the first that does not (a torn tail from a killed writer: not committed);
the next writer truncates that tail before appending. Once the journal outgrows a fraction of the
checkpoint, the writer folds it into checkpoint g+1 and deletes journal g-1 (journal g stays one more
generation for readers that opened checkpoint g). So an add costs one small shard, one journal line and
two fsyncs, whatever the size of the index, and ``kill -9`` at any point leaves exactly the committed
entries. A process keeps its loaded state and reads only the journal's new lines on the next call.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import IndexError_
from zoo_tupate.core.storage import _fsync_dir, atomic_write_json, json_default
from zoo_tupate.store.manifest import State

#: Checkpoint once the journal is larger than this fraction of the manifest (and at least JOURNAL_MIN_BYTES).
JOURNAL_FRACTION = 0.5
JOURNAL_MIN_BYTES = 1 << 20


def _record_line(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), default=json_default).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def _parse_lines(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Committed records at the start of ``data`` and the byte length they span."""
    records, pos = [], 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end]
        if len(line) < 10 or line[8:9] != b" ":
            break
        try:
            crc = int(line[:8], 16)
        except ValueError:
            break
        body = line[9:]
        if zlib.crc32(body) != crc:
            break
        try:
            records.append(json.loads(body))
        except ValueError:
            break
        pos = end + 1
    return records, pos


def _stat_sig(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ManifestStore:
    """Loads, caches and commits the manifest of one index folder (commits need the index lock)."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / "manifest.json"
        self._state: State | None = None
        self._sig: tuple | None = None  # manifest file signature the state was loaded from
        self._generation = 0
        self._offset = 0  # bytes of the journal applied
        self.manifest_bytes = 0

    def journal_path(self, generation: int | None = None) -> Path:
        return self.root / f"journal.{self._generation if generation is None else generation}.jsonl"

    def state(self) -> State:
        """The current state: cached, refreshed from the journal's new lines or reloaded when replaced."""
        for _ in range(10):
            sig = _stat_sig(self.path)
            if self._state is None or sig != self._sig:
                self._full_load(sig)
            else:
                self._read_journal_tail()
            if _stat_sig(self.path) == self._sig:
                return self._state  # type: ignore[return-value]
            self._state = None  # replaced while reading: a checkpoint happened, load again
        raise IndexError_(f"{self.path}: manifest keeps changing while being read; try again")

    def _full_load(self, sig: tuple | None) -> None:
        if sig is None:
            state, generation, size = State(), 0, 0
        else:
            try:
                raw = self.path.read_bytes()
                state, generation = State.from_json(json.loads(raw))
                size = len(raw)
            except FileNotFoundError:
                state, generation, size = State(), 0, 0
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                raise IndexError_(
                    f"{self.path}: damaged manifest ({type(exc).__name__}); run 'zoo-tupate index rebuild'"
                ) from None
        self._state, self._sig, self._generation, self._offset = state, sig, generation, 0
        self.manifest_bytes = size
        self._read_journal_tail()

    def _read_journal_tail(self) -> None:
        path = self.journal_path()
        try:
            with open(path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        if not data:
            return
        records, used = _parse_lines(data)
        for record in records:
            self._state.apply(record)  # type: ignore[union-attr]
        self._offset += used

    def journal_bytes(self) -> int:
        return self._offset

    # -------------------------------------------------------------- writing (caller holds the lock)
    def commit(self, record: dict[str, Any]) -> None:
        """Durably append one record (or fold everything into a new checkpoint when due)."""
        state = self.state()
        line = _record_line(record)
        if self._sig is None or self._offset + len(line) > max(JOURNAL_MIN_BYTES,
                                                                JOURNAL_FRACTION * self.manifest_bytes):
            state.apply(record)
            self.checkpoint()
            return
        path = self.journal_path()
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, self._offset)  # drop a torn tail left by a killed writer
            os.lseek(fd, self._offset, os.SEEK_SET)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:  # ENOSPC, EIO: name the journal
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.root)
        state.apply(record)
        self._offset += len(line)

    def checkpoint(self, state: State | None = None, generation: int | None = None) -> None:
        """Write the state as checkpoint ``generation`` (default: next) and retire old journals."""
        state = state if state is not None else self.state()
        generation = self._generation + 1 if generation is None else generation
        document = state.to_json(generation)
        atomic_write_json(self.path, document)
        self._state, self._generation, self._offset = state, generation, 0
        self._sig = _stat_sig(self.path)
        self.manifest_bytes = self._sig[1] if self._sig else 0
        for old in self.root.glob("journal.*.jsonl"):
            try:
                number = int(old.name.split(".")[1])
            except ValueError:
                continue
            if number < generation - 1 or number > generation:
                old.unlink(missing_ok=True)
        journal = self.journal_path()
        if journal.exists():
            journal.unlink()  # a leftover of a rebuild that reused this generation number

    def max_journal_generation(self) -> int:
        numbers = []
        for old in self.root.glob("journal.*.jsonl"):
            try:
                numbers.append(int(old.name.split(".")[1]))
            except ValueError:
                continue
        return max(numbers, default=0)

    def invalidate(self) -> None:
        self._state, self._sig = None, None
