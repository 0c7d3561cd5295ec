"""Torch ``.bin`` state dicts: sized before they are unpickled, then loaded only with ``weights_only=True``.

The pickle stream of a state dict is small (a few hundred bytes per tensor); the tensors live outside it
(zip members, or raw bytes after the pickles in the legacy format). A "list bomb" is a pickle stream of
megabytes that the pure-Python weights-only unpickler grinds through at ~1 s per MB: the stream is
measured first (zip directory, or a fast opcode scan of the legacy pickles) and refused above
:data:`MAX_PICKLE_BYTES`.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint, UnsupportedCheckpoint

#: Largest pickle stream unpickled (≈ 20,000 tensors' worth of names and shapes).
MAX_PICKLE_BYTES = 4 * 1024 * 1024
#: torch's legacy-format magic number (the first pickle of a pre-1.6 ``torch.save`` file).
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: Most bytes of the pickle holding that magic number (it takes 15).
_MAGIC_PICKLE_BYTES = 64
#: Pickles at the start of a legacy file: magic number, protocol version, sys info, the object, storage keys.
_LEGACY_PICKLES = 5

_CACHE: dict[tuple[str, float, int], dict[str, np.ndarray]] = {}


def is_zip(path: Path) -> bool:
    """True for torch's zip format (``torch.save`` since 1.6)."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def check_pickle_size(path: Path, zipped: bool) -> int:
    """Refuse a file whose pickle stream exceeds :data:`MAX_PICKLE_BYTES` or is not a torch file; returns the
    bytes of tensor data it declares (zip format; 0 when unknown)."""
    if zipped:
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise CorruptCheckpoint(f"{path}: not a readable torch zip file ({exc})") from None
        pickled = sum(m.file_size for m in members if m.filename.endswith(".pkl"))
        if pickled > MAX_PICKLE_BYTES:
            raise CorruptCheckpoint(f"{path}: pickle stream of {pickled} bytes, over the {MAX_PICKLE_BYTES} byte "
                                    "limit for a state dict (refused before unpickling)")
        return sum(m.file_size for m in members if "/data/" in m.filename)
    with open(path, "rb") as handle:
        for number in range(_LEGACY_PICKLES):
            budget = _MAGIC_PICKLE_BYTES if number == 0 else MAX_PICKLE_BYTES - handle.tell()
            ops = _scan_one(path, handle, budget)
            if number == 0 and (ops is None or _LEGACY_MAGIC not in [arg for _, arg in ops[:4]]):
                raise CorruptCheckpoint(f"{path}: refused without unpickling: not a torch.save file (no torch magic "
                                        "number); only torch files are loaded, with weights_only")
            if ops is None:
                raise CorruptCheckpoint(f"{path}: pickle stream over the {MAX_PICKLE_BYTES} byte limit for a "
                                        "state dict (refused before unpickling)")
    return 0


def _scan_one(path: Path, handle: io.BufferedReader, budget: int) -> list[tuple[str, object]] | None:
    """Opcodes of the next pickle in ``handle`` (names and args of the first few); None past ``budget`` bytes."""
    ops: list[tuple[str, object]] = []
    start = handle.tell()
    try:
        for opcode, arg, pos in pickletools.genops(handle):
            if len(ops) < 8:
                ops.append((opcode.name, arg))
            if pos - start > budget:
                return None
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise CorruptCheckpoint(f"{path}: refused without unpickling: not a torch file (bad pickle: "
                                f"{str(exc)[:80]})") from None
    return ops


def load_pickle(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """Load a torch ``.bin`` state dict with ``weights_only=True``; anything else is refused."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime, stat.st_size)
    if key in _CACHE:
        return _CACHE[key]
    import pickle

    import torch

    zipped = is_zip(path)
    data_bytes = check_pickle_size(path, zipped)
    if data_bytes > max_bytes:
        raise CorruptCheckpoint(f"{path}: {data_bytes / 2**30:.1f} GiB of tensors, over the {max_bytes / 2**30:.1f} "
                                "GiB limit (ZOO_TUPATE_MAX_LOAD_BYTES)")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as exc:
        detail = _unsafe_detail(str(exc))
        raise CorruptCheckpoint(f"{path}: refused: the pickle needs more than weights_only loading{detail}") from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, ...
        raise CorruptCheckpoint(f"{path}: cannot read torch file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsupportedCheckpoint(f"{path}: is not a flat state dict of tensors")
    for name, tensor in state.items():
        _check_tensor(path, str(name), tensor)
    arrays = {str(k): v.detach().float().numpy() for k, v in state.items()}
    _CACHE.clear()
    _CACHE[key] = arrays
    return arrays


#: torch dtypes a ``.bin`` adapter may hold (tuned parameters are real floating-point numbers).
_FLOAT_TORCH_DTYPES = ("float32", "float16", "bfloat16", "float64")


def _check_tensor(path: Path, name: str, tensor: Any) -> None:
    """A dense CPU tensor of real floating-point values, or :class:`CorruptCheckpoint` naming the tensor."""
    import torch

    where = f"{path}: tensor {name[:120]!r}"
    if tensor.layout != torch.strided:
        raise CorruptCheckpoint(f"{where} is {str(tensor.layout).removeprefix('torch.')}, not a dense tensor")
    if tensor.is_meta or tensor.device.type != "cpu":
        raise CorruptCheckpoint(f"{where} is on the {tensor.device.type} device: it holds no values")
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in _FLOAT_TORCH_DTYPES:
        raise CorruptCheckpoint(f"{where} has dtype {dtype}; tuned parameters must be real floating point "
                                f"({', '.join(_FLOAT_TORCH_DTYPES)})")


def _unsafe_detail(message: str) -> str:
    """The useful part of torch's weights_only refusal (which global it would have run)."""
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("WeightsUnpickler error:", "Unsupported global", "Unsupported operand")):
            return f" ({line.removeprefix('WeightsUnpickler error:').strip()[:160]})"
    return ""
