"""Crash-safe file primitives: atomic writes, shard files of vectors, memory-mapped reads."""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint

META_KEY = "zoo_tupate"


@contextmanager
def atomic_file(path: Path, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path`` for writing; on success fsync (if ``durable``) and rename it over
    ``path``; on any failure remove it, leaving ``path`` untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write or fsync (ENOSPC, EIO): say which file it was
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename.

    ``durable=False`` skips the fsyncs (still atomic against a killed process; for caches).
    """
    with atomic_file(path, durable) as handle:
        handle.write(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically replace ``path`` with ``obj`` as JSON."""
    atomic_write_bytes(path, json.dumps(obj, separators=(",", ":"), default=json_default).encode())


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or ``None`` when it is absent or unreadable (callers then recompute it)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for numpy values and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_vectors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, Any], durable: bool = True) -> None:
    """Atomically write float32 matrices as a safetensors file with one JSON metadata document."""
    write_tensor_parts(path, {k: [v] for k, v in tensors.items()}, metadata, durable=durable)


def write_tensor_parts(path: Path, tensors: dict[str, list[np.ndarray]], metadata: dict[str, Any],
                       durable: bool = True) -> None:
    """Atomically write a safetensors file, each tensor the row-wise concatenation of its parts.

    Tensors are float32 (``F32``) except uint8 ones (``U8``, e.g. JSON records). Streams the parts to
    disk (no full copy in memory: parts may be memory maps of other shards).
    """
    shapes, parts_of, dtypes = {}, {}, {}
    for name, parts in tensors.items():
        parts = [np.asarray(part) for part in parts]
        rest = parts[0].shape[1:]
        if any(part.shape[1:] != rest for part in parts):
            raise ValueError(f"{name}: parts of different shapes")
        shapes[name] = (sum(part.shape[0] for part in parts), *rest) if parts[0].ndim else ()
        parts_of[name] = parts
        dtypes[name] = ("U8", "u1") if parts[0].dtype == np.uint8 else ("F32", "<f4")
    header: dict[str, Any] = {"__metadata__": {META_KEY: json.dumps(metadata, default=json_default)}}
    offset = 0
    for name in sorted(shapes):
        width = 1 if dtypes[name][0] == "U8" else 4
        size = width * int(np.prod(shapes[name])) if shapes[name] else width
        header[name] = {"dtype": dtypes[name][0], "shape": list(shapes[name]), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with atomic_file(path, durable) as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        for name in sorted(shapes):
            for part in parts_of[name]:
                for start in range(0, max(part.shape[0], 1) if part.ndim else 1, _ROWS_PER_WRITE):
                    chunk = part[start:start + _ROWS_PER_WRITE] if part.ndim else part
                    handle.write(np.ascontiguousarray(chunk, dtype=dtypes[name][1]).tobytes())


_ROWS_PER_WRITE = 256


def _header(path: Path) -> tuple[dict[str, Any], int]:
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CorruptCheckpoint(f"{path}: truncated vector file")
        (length,) = struct.unpack("<Q", prefix)
        if length > 100 * 1024 * 1024:
            raise CorruptCheckpoint(f"{path}: vector file header too large")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise CorruptCheckpoint(f"{path}: vector file header is not JSON") from None
    if not isinstance(header, dict):
        raise CorruptCheckpoint(f"{path}: vector file header is not a JSON object")
    return header, 8 + length


def read_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata document of a vector file."""
    header, _ = _header(path)
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise CorruptCheckpoint(f"{path}: no '{META_KEY}' metadata")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise CorruptCheckpoint(f"{path}: '{META_KEY}' metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise CorruptCheckpoint(f"{path}: '{META_KEY}' metadata is not an object")
    return meta


def map_vectors(path: Path, name: str = "vectors") -> np.ndarray:
    """Memory-map one float32 matrix of a vector file (read-only, checked against the file size)."""
    return map_tensors(path, (name,))[name]


def map_tensors(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Memory-map the float32 tensors ``names`` (default: all) of a vector file, parsing its header once.

    A name in ``names`` that the file lacks (or holds in another dtype) raises :class:`CorruptCheckpoint`.
    """
    header, data_start = _header(path)
    size = path.stat().st_size
    wanted = names if names is not None else tuple(
        k for k, v in header.items() if k != "__metadata__" and isinstance(v, dict) and v.get("dtype") == "F32")
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        spec = header.get(name)
        if not isinstance(spec, dict) or spec.get("dtype") != "F32":
            raise CorruptCheckpoint(f"{path}: no float32 tensor {name!r}")
        try:
            shape = tuple(int(d) for d in spec["shape"])
            start, end = (int(o) for o in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a malformed header entry") from None
        count = int(np.prod(shape)) if shape else 1
        if any(d < 0 for d in shape) or data_start + end > size or end - start != 4 * count or start < 0:
            raise CorruptCheckpoint(f"{path}: tensor {name!r} does not fit the file (truncated?)")
        if count == 0:
            out[name] = np.zeros(shape, np.float32)
        else:
            out[name] = np.memmap(path, dtype=np.float32, mode="r", offset=data_start + start, shape=shape)
    return out


def read_bytes_tensor(path: Path, name: str) -> bytes:
    """The raw bytes of a ``U8`` tensor of a vector file (e.g. JSON records)."""
    header, data_start = _header(path)
    spec = header.get(name)
    if not isinstance(spec, dict) or spec.get("dtype") != "U8":
        raise CorruptCheckpoint(f"{path}: no byte tensor {name!r}")
    try:
        start, end = (int(o) for o in spec["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise CorruptCheckpoint(f"{path}: tensor {name!r} has a malformed header entry") from None
    with open(path, "rb") as handle:
        handle.seek(data_start + start)
        data = handle.read(end - start)
    if len(data) != end - start or start < 0:
        raise CorruptCheckpoint(f"{path}: tensor {name!r} does not fit the file (truncated?)")
    return data
