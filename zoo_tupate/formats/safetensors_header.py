"""A safetensors file's JSON header, parsed and checked against the file's size before any tensor is read:
names, shapes and dtypes (:class:`TensorInfo`), offsets that cover the data exactly, bounded sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint
from zoo_tupate.core.safetext import loads_bounded

#: Largest safetensors JSON header accepted (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: Largest tensor dimension accepted (numpy refuses ~2**63; no adapter comes near 2**40, even with a 0 beside it).
MAX_DIMENSION = 2**40


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


def check_header_len(path: Path, header_len: int, size: int) -> None:
    if header_len > MAX_HEADER_BYTES:
        raise CorruptCheckpoint(f"{path}: safetensors header length {header_len} exceeds the "
                                f"{MAX_HEADER_BYTES // 2**20} MiB header cap")
    if 8 + header_len > size:
        raise CorruptCheckpoint(f"{path}: safetensors header length {header_len} exceeds the file ({size} bytes)")


def _parse_header(path: Path, raw: bytes, size: int) -> tuple[dict[str, TensorInfo], dict[str, str], dict]:
    """Validate a safetensors JSON header; returns infos, metadata and ``{name: (start, end)}``."""
    header_len = len(raw)
    try:
        header = loads_bounded(raw, unique_keys=True)
    except ValueError as exc:  # invalid JSON or UTF-8, a duplicate key, too deep, an integer of thousands of digits
        reason = str(exc) if exc.__class__ is ValueError else exc.__class__.__name__
        if "nested" in reason:
            raise CorruptCheckpoint(f"{path}: safetensors header is nested too deeply") from None
        raise CorruptCheckpoint(f"{path}: safetensors header is not valid JSON ({reason})") from None
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
        if shape and min(shape) < 0:
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a negative dimension {shape}")
        if shape and max(shape) > MAX_DIMENSION:
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a dimension over 2**40 {list(shape)}")
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


#: Parsed headers kept by (header bytes, file size): adapters of one architecture share their header
#: byte for byte, and validation depends on nothing else. Headers above the size below are not kept.
_HEADER_CACHE: dict[tuple[bytes, int], tuple[dict[str, TensorInfo], dict[str, str], dict]] = {}


_HEADER_CACHE_SIZE, _HEADER_CACHE_MAX_BYTES = 8, 1 << 20


def parse_header_cached(path: Path, raw: bytes, size: int) -> tuple[dict[str, TensorInfo], dict[str, str], dict]:
    """:func:`_parse_header`, reusing the result for a header seen before (the returned dicts are shared: read only)."""
    if len(raw) > _HEADER_CACHE_MAX_BYTES:
        return _parse_header(path, raw, size)
    key = (raw, size)
    found = _HEADER_CACHE.pop(key, None)
    if found is None:
        found = _parse_header(path, raw, size)
        while len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            del _HEADER_CACHE[next(iter(_HEADER_CACHE))]
    _HEADER_CACHE[key] = found  # most recently used last
    return found


def _ints(values: object) -> tuple[int, ...]:
    """A JSON list of integers (not floats, bools or strings), as the safetensors format requires."""
    if type(values) is list:
        for value in values:
            if type(value) is not int:
                break
        else:
            return tuple(values)
    raise TypeError("not a list of integers")


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
