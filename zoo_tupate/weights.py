"""Safe reading of checkpoint weight files: safetensors headers first, pickles only with ``weights_only``.

Nothing here unpickles arbitrary objects, follows links out of a checkpoint folder, or reads a tensor
before its header has been checked against the file size.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo_tupate.errors import CorruptCheckpoint, UnsupportedCheckpoint

#: Largest safetensors JSON header accepted (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024

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
    """Hex sha256 over the bytes of ``paths`` in order (one file: that file's plain sha256)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def check_inside(path: Path, folder: Path) -> None:
    """Refuse a file that is a link leading out of ``folder``."""
    real = path.resolve()
    root = folder.resolve()
    if real != root and root not in real.parents:
        raise CorruptCheckpoint(f"{path}: is a link pointing outside the checkpoint folder ({real})")


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and validate a safetensors header: offsets inside the file, shapes consistent with dtypes."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CorruptCheckpoint(f"{path}: truncated safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            raise CorruptCheckpoint(f"{path}: safetensors header length {header_len} exceeds the file ({size} bytes)")
        raw = handle.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(f"{path}: safetensors header is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise CorruptCheckpoint(f"{path}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise CorruptCheckpoint(f"{path}: safetensors __metadata__ is not an object")
    data_len = size - 8 - header_len
    infos: dict[str, TensorInfo] = {}
    for name, spec in header.items():
        try:
            dtype = spec["dtype"]
            shape = tuple(int(d) for d in spec["shape"])
            start, end = (int(o) for o in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a malformed header entry") from None
        if dtype not in _ST_DTYPES:
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
        if any(d < 0 for d in shape):
            raise CorruptCheckpoint(f"{path}: tensor {name!r} has a negative dimension {shape}")
        count = int(np.prod(shape, dtype=np.float64)) if shape else 1
        if not (0 <= start <= end <= data_len) or end - start != count * _ST_DTYPES[dtype][1]:
            raise CorruptCheckpoint(
                f"{path}: tensor {name!r} offsets [{start}, {end}) do not match shape {shape} {dtype} "
                f"within {data_len} data bytes"
            )
        infos[name] = TensorInfo(name, shape, dtype)
    return infos, {str(k): str(v) for k, v in metadata.items()}


def list_tensors(path: Path) -> dict[str, TensorInfo]:
    """Names, shapes and dtypes of the tensors in a weights file (safetensors or ``.bin``)."""
    if path.suffix == ".safetensors":
        return read_safetensors_header(path)[0]
    return {name: TensorInfo(name, tuple(arr.shape), str(arr.dtype)) for name, arr in _load_pickle(path).items()}


def load_tensors(path: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Load ``names`` (default: all) from a weights file as float32 numpy arrays."""
    if path.suffix == ".safetensors":
        infos = read_safetensors_header(path)[0]
        wanted = list(infos) if names is None else names
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


_PICKLE_CACHE: dict[tuple[str, float, int], dict[str, np.ndarray]] = {}


def _load_pickle(path: Path) -> dict[str, np.ndarray]:
    """Load a torch ``.bin`` state dict with ``weights_only=True``; anything else is refused."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime, stat.st_size)
    if key in _PICKLE_CACHE:
        return _PICKLE_CACHE[key]
    import pickle

    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        detail = _unsafe_detail(str(exc))
        raise CorruptCheckpoint(f"{path}: refused: the pickle needs more than weights_only loading{detail}") from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ...
        raise CorruptCheckpoint(f"{path}: cannot read torch file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsupportedCheckpoint(f"{path}: is not a flat state dict of tensors")
    arrays = {str(k): v.detach().float().numpy() for k, v in state.items()}
    _PICKLE_CACHE.clear()
    _PICKLE_CACHE[key] = arrays
    return arrays


def _unsafe_detail(message: str) -> str:
    """The useful part of torch's weights_only refusal (which global it would have run)."""
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("WeightsUnpickler error:", "Unsupported global", "Unsupported operand")):
            return f" ({line.removeprefix('WeightsUnpickler error:').strip()[:160]})"
    return ""


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"
