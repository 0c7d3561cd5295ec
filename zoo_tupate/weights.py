"""Safe reading of checkpoint weight files: safetensors headers first, pickles only with ``weights_only``.

Nothing here unpickles arbitrary objects, follows links out of a checkpoint folder, or reads a tensor
before its header has been checked against the file size.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo_tupate.errors import CorruptCheckpoint
from zoo_tupate.picklefile import load_pickle
from zoo_tupate.safetext import unique_pairs

#: Largest safetensors JSON header accepted (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: Default bound on the tensor bytes one load may materialise (a sparse or lying file cannot exhaust memory).
DEFAULT_MAX_LOAD_BYTES = 4 * 1024**3

_ST_DTYPES = {
    "F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2),
    "I64": (np.int64, 8), "I32": (np.int32, 4), "I16": (np.int16, 2), "I8": (np.int8, 1),
    "U8": (np.uint8, 1), "BOOL": (np.bool_, 1),
}


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and dtype of one stored tensor (read from a header, not from the data)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def sha256_files(paths: list[Path]) -> str:
    """Hex sha256 over the bytes of ``paths`` in order (one file: that file's plain sha256).

    A weights file just read by :func:`load_tensors`/:func:`read_safetensors_header` is hashed from the
    same bytes (no second read, and the hash is of exactly the bytes that were parsed).
    """
    if len(paths) == 1:
        loaded = _cached_file(Path(paths[0]))
        if loaded is not None:
            return loaded.sha256()
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def resolve_strictly(path: Path) -> Path:
    """``path`` with every link followed; a link loop or a dangling link is a :class:`CorruptCheckpoint`."""
    try:
        return path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        raise CorruptCheckpoint(f"{path}: is a symbolic link loop") from None
    except OSError as exc:
        what = "a symbolic link loop" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
        if exc.errno == errno.ENOENT and path.is_symlink():
            what = "a dangling symbolic link"
        raise CorruptCheckpoint(f"{path}: is {what}") from None


def check_inside(path: Path, folder: Path) -> None:
    """Refuse a file that is a link leading out of ``folder`` (or a link loop, or a dangling link)."""
    real = resolve_strictly(path)
    root = resolve_strictly(folder)
    if real != root and root not in real.parents:
        raise CorruptCheckpoint(f"{path}: is a link pointing outside the checkpoint folder ({real})")


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and validate a safetensors header: offsets inside the file, shapes consistent with dtypes."""
    path = Path(path)
    loaded = _load_small(path)
    if loaded is not None:
        return loaded.infos, loaded.metadata
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CorruptCheckpoint(f"{path}: truncated safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", prefix)
        _check_header_len(path, header_len, size)
        raw = handle.read(header_len)
    infos, metadata, _ = _parse_header(path, raw, size)
    return infos, metadata


def _check_header_len(path: Path, header_len: int, size: int) -> None:
    if header_len > MAX_HEADER_BYTES:
        raise CorruptCheckpoint(f"{path}: safetensors header length {header_len} exceeds the "
                                f"{MAX_HEADER_BYTES // 2**20} MiB header cap")
    if 8 + header_len > size:
        raise CorruptCheckpoint(f"{path}: safetensors header length {header_len} exceeds the file ({size} bytes)")


def _parse_header(path: Path, raw: bytes, size: int) -> tuple[dict[str, TensorInfo], dict[str, str], dict]:
    """Validate a safetensors JSON header; returns infos, metadata and ``{name: (start, end)}``."""
    header_len = len(raw)
    try:
        header = json.loads(raw, object_pairs_hook=unique_pairs)
    except RecursionError:
        raise CorruptCheckpoint(f"{path}: safetensors header is nested too deeply") from None
    except ValueError as exc:  # invalid JSON or UTF-8, a duplicate key, an integer of thousands of digits
        reason = str(exc) if exc.__class__ is ValueError else exc.__class__.__name__
        raise CorruptCheckpoint(f"{path}: safetensors header is not valid ({reason})") from None
    if not isinstance(header, dict):
        raise CorruptCheckpoint(f"{path}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CorruptCheckpoint(f"{path}: safetensors __metadata__ is not an object of strings")
    data_len = size - 8 - header_len
    infos: dict[str, TensorInfo] = {}
    offsets: dict[str, tuple[int, int]] = {}
    for name, spec in header.items():
        try:
            dtype = spec["dtype"]
            shape = _ints(spec["shape"])
            start, end = _ints(spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a malformed header entry") from None
        if not isinstance(dtype, str) or dtype not in _ST_DTYPES:
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has unknown dtype {str(dtype)[:40]!r}")
        if any(d < 0 for d in shape):
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a negative dimension {shape}")
        count = math.prod(shape)
        if not (0 <= start <= end <= data_len) or end - start != count * _ST_DTYPES[dtype][1]:
            raise CorruptCheckpoint(
                f"{path}: tensor {name!r} offsets [{start}, {end}) do not match shape {shape} {dtype} "
                f"within {data_len} data bytes"
            )
        infos[name] = TensorInfo(name, shape, dtype)
        offsets[name] = (start, end)
    _check_coverage(path, offsets, data_len)
    return infos, metadata, offsets


def _ints(values: object) -> tuple[int, ...]:
    """A JSON list of integers (not floats, bools or strings), as the safetensors format requires."""
    if type(values) is not list or any(type(v) is not int for v in values):
        raise TypeError("not a list of integers")
    return tuple(values)


def _check_coverage(path: Path, offsets: dict[str, tuple[int, int]], data_len: int) -> None:
    """Tensors must tile the data section exactly: no overlap, no hole, no trailing bytes (format rule)."""
    position = 0
    for name, (start, end) in sorted(offsets.items(), key=lambda item: item[1]):
        if start != position:
            what = "overlaps the previous tensor" if start < position else "leaves a hole before it"
            raise CorruptCheckpoint(f"{path}: tensor {name!r} at offset {start} {what} (expected {position})")
        position = end
    if position != data_len:
        raise CorruptCheckpoint(f"{path}: {data_len - position} bytes after the last tensor (not safetensors layout)")


def list_tensors(path: Path) -> dict[str, TensorInfo]:
    """Names, shapes and dtypes of the tensors in a weights file (safetensors or ``.bin``)."""
    if path.suffix == ".safetensors":
        return read_safetensors_header(path)[0]
    return {name: TensorInfo(name, tuple(arr.shape), str(arr.dtype)) for name, arr in _load_pickle(path).items()}


def load_tensors(path: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Load ``names`` (default: all) from a weights file as float32 numpy arrays.

    Small safetensors files are read once into memory and the arrays are read-only views of those bytes
    (float32 tensors are not copied); larger ones go through ``safetensors``' memory map.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        loaded = _load_small(path)
        if loaded is not None:
            wanted = list(loaded.infos) if names is None else names
            return {name: loaded.array(name) for name in wanted}
        infos = read_safetensors_header(path)[0]
        wanted = list(infos) if names is None else names
        check_load_size(path, [infos[n] for n in wanted if n in infos])
        from safetensors import safe_open

        out: dict[str, np.ndarray] = {}
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in wanted:
                    out[name] = handle.get_tensor(name).float().numpy()
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise CorruptCheckpoint(f"{path}: cannot read tensors ({exc})") from None
        return out
    tensors = _load_pickle(path)
    wanted = list(tensors) if names is None else names
    return {name: tensors[name] for name in wanted}


def max_load_bytes() -> int:
    """Most bytes of tensors one load may bring into memory (env ``ZOO_TUPATE_MAX_LOAD_BYTES``, default 4 GiB)."""
    try:
        return int(os.environ.get("ZOO_TUPATE_MAX_LOAD_BYTES", "")) or DEFAULT_MAX_LOAD_BYTES
    except ValueError:
        return DEFAULT_MAX_LOAD_BYTES


def check_load_size(path: Path, infos: list[TensorInfo]) -> None:
    """Refuse, before reading any data, tensors whose float32 copies would exceed :func:`max_load_bytes`."""
    total = sum(4 * math.prod(info.shape) for info in infos)
    if total > max_load_bytes():
        raise CorruptCheckpoint(f"{path}: the tuned tensors would take {total / 2**30:.1f} GiB in memory, over the "
                                f"{max_load_bytes() / 2**30:.1f} GiB limit (ZOO_TUPATE_MAX_LOAD_BYTES)")


#: Safetensors files up to this size are read whole, once: header, tensors and sha256 share that read.
WHOLE_READ_MAX_BYTES = 256 * 1024 * 1024

_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
                 "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


class _LoadedFile:
    """One safetensors file read into memory, with its parsed header (and its sha256 on demand)."""

    def __init__(self, path: Path, key: tuple, data: bytes):
        self.path, self.key, self.data = path, key, data
        if len(data) < 8:
            raise CorruptCheckpoint(f"{path}: truncated safetensors file ({len(data)} bytes)")
        (header_len,) = struct.unpack("<Q", data[:8])
        _check_header_len(path, header_len, len(data))
        self.data_start = 8 + header_len
        self.infos, self.metadata, self.offsets = _parse_header(path, data[8:self.data_start], len(data))
        self._sha: str | None = None

    def sha256(self) -> str:
        if self._sha is None:
            self._sha = hashlib.sha256(self.data).hexdigest()
        return self._sha

    def array(self, name: str) -> np.ndarray:
        try:
            info, (start, _) = self.infos[name], self.offsets[name]
        except KeyError:
            raise CorruptCheckpoint(f"{self.path}: no tensor named {name!r}") from None
        count = math.prod(info.shape)
        if count == 0:
            return np.zeros(info.shape, np.float32)
        raw = np.frombuffer(self.data, dtype=_NUMPY_DTYPES[info.dtype], count=count,
                            offset=self.data_start + start).reshape(info.shape)
        if info.dtype == "F32":
            return raw
        if info.dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32)
        return raw.astype(np.float32)


_FILE_CACHE: list[_LoadedFile] = []
_FILE_CACHE_SIZE = 2


def _file_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _cached_file(path: Path) -> _LoadedFile | None:
    key = _file_key(path)
    for loaded in _FILE_CACHE:
        if loaded.key == key:
            return loaded
    return None


def _load_small(path: Path) -> _LoadedFile | None:
    """The in-memory copy of a small safetensors file (read now, or reused while the file is unchanged)."""
    key = _file_key(path)
    if key is None or path.suffix != ".safetensors" or key[2] > WHOLE_READ_MAX_BYTES:
        return None
    for loaded in _FILE_CACHE:
        if loaded.key == key:
            return loaded
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) != key[2]:
        return None  # changed while reading: take the streaming path
    loaded = _LoadedFile(path, key, data)
    _FILE_CACHE.insert(0, loaded)
    del _FILE_CACHE[_FILE_CACHE_SIZE:]
    return loaded


def _load_pickle(path: Path) -> dict[str, np.ndarray]:
    """A torch ``.bin`` state dict (sized first, then ``weights_only`` loading; see :mod:`zoo_tupate.picklefile`)."""
    return load_pickle(path, max_load_bytes())
