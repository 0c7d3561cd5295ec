"""One embedding vector from a ``.npy`` file computed elsewhere (``index import``), checked before it is read.

The header's shape and dtype are checked against the file's size first, so a header that lies (a shape of
10**12 floats in a 200-byte file) is refused instead of allocating; the vector must be 1-D, non-empty,
real-valued, finite and not all zero (a zero vector has no direction to rank by).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint, UnsupportedCheckpoint

#: Largest vector imported (values; 2**28 float32 = 1 GiB).
MAX_VALUES = 2**28


def read_vector(path: Path) -> np.ndarray:
    """The float32 vector in ``path``; :class:`CorruptCheckpoint` / :class:`UnsupportedCheckpoint` naming it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CorruptCheckpoint(f"{path}: unreadable ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpoint(f"{path}: is not a regular file")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = reader(handle, max_header_size=10_000)
            offset = handle.tell()
    except (ValueError, OSError, SyntaxError, EOFError) as exc:
        raise CorruptCheckpoint(f"{path}: not a .npy file ({str(exc)[:120]})") from None
    if dtype.hasobject or dtype.kind not in "fiu" or dtype.itemsize > 8:
        raise UnsupportedCheckpoint(f"{path}: dtype {dtype} is not a real number type")
    if len(shape) != 1:
        raise UnsupportedCheckpoint(f"{path}: expected a 1-D vector, got shape {shape}")
    count = int(shape[0])
    if count == 0:
        raise UnsupportedCheckpoint(f"{path}: an empty vector (shape {shape}): nothing to rank")
    if count > MAX_VALUES:
        raise UnsupportedCheckpoint(f"{path}: {count:,} values, more than the {MAX_VALUES:,} an embedding may hold")
    if offset + count * dtype.itemsize != st.st_size:
        raise CorruptCheckpoint(f"{path}: the header says {count:,} values of {dtype} ({count * dtype.itemsize:,} "
                                f"bytes) but the file holds {st.st_size - offset:,} bytes of data")
    vector = np.fromfile(path, dtype=dtype, count=count, offset=offset).astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise CorruptCheckpoint(f"{path}: non-finite values (NaN or infinity, or too large for float32)")
    if not np.any(vector):
        raise UnsupportedCheckpoint(f"{path}: every value is zero: a zero vector cannot be ranked")
    return vector
