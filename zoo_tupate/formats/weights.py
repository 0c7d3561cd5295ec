"""Safe reading of checkpoint weight files: safetensors headers first, pickles only with ``weights_only``.

Nothing here unpickles arbitrary objects, follows links out of a checkpoint folder, or reads a tensor
before its header has been checked against the file size.
"""

from __future__ import annotations

import errno
import hashlib
import math
import mmap
import os
import struct
from pathlib import Path

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint
from zoo_tupate.formats.picklefile import load_pickle
from zoo_tupate.formats.safetensors_header import TensorInfo, check_header_len, parse_header_cached

#: Default bound on the tensor bytes one load may materialise (a sparse or lying file cannot exhaust memory).
DEFAULT_MAX_LOAD_BYTES = 4 * 1024**3


def sha256_files(paths: list[Path]) -> str:
    """Hex sha256 over the bytes of ``paths`` in order (one file: that file's plain sha256).

    A safetensors file just read by :func:`load_tensors`/:func:`read_safetensors_header` is hashed from
    the same mapping (the hash is of exactly the bytes that were parsed; a large file's pages are dropped
    chunk by chunk).
    """
    if len(paths) == 1:
        mapped = _cached_file(Path(paths[0]))
        if mapped is not None:
            return mapped.sha256()
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
    mapped = mapped_file(Path(path))
    return mapped.infos, mapped.metadata


def list_tensors(path: Path) -> dict[str, TensorInfo]:
    """Names, shapes and dtypes of the tensors in a weights file (safetensors or ``.bin``)."""
    if path.suffix == ".safetensors":
        return read_safetensors_header(path)[0]
    return {name: TensorInfo(name, tuple(arr.shape), str(arr.dtype)) for name, arr in _load_pickle(path).items()}


def load_tensors(path: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Load ``names`` (default: all) from a weights file as float32 numpy arrays.

    Safetensors files are memory-mapped (:class:`MappedFile`): float32 tensors are read-only views of the
    mapping, other dtypes are converted tensor by tensor.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        mapped = mapped_file(path)
        wanted = list(mapped.infos) if names is None else names
        check_load_size(path, [mapped.infos[n] for n in wanted if n in mapped.infos])
        return {name: mapped.array(name) for name in wanted}
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


#: Mapped files at least this large give back the pages they touched after each use (bounded peak memory).
RELEASE_MIN_BYTES = 32 * 1024 * 1024
#: Bytes hashed between two page releases of a large mapped file.
HASH_CHUNK_BYTES = 1024 * 1024

_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
                 "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


class MappedFile:
    """One safetensors file memory-mapped read-only: header parsed and validated once, tensors as views.

    Float32 tensors are read-only views of the mapping (never copied); other dtypes are converted per
    tensor when asked for. The sha256 is taken over the same mapped bytes. Files of :data:`RELEASE_MIN_BYTES`
    or more drop the pages they touched (:meth:`release`): about one tensor is held, whatever the file's
    size. Like safetensors' own mapping, a file truncated by another process while it is read ends the
    process (SIGBUS); files are read after they are complete (``pull`` renames finished downloads).
    """

    def __init__(self, path: Path, key: tuple, fd: int):
        size = key[2]
        self.path, self.key = path, key
        if size < 8:
            raise CorruptCheckpoint(f"{path}: truncated safetensors file ({size} bytes)")
        try:
            self.map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise CorruptCheckpoint(f"{path}: cannot be memory-mapped ({exc})") from None
        (header_len,) = struct.unpack_from("<Q", self.map, 0)
        check_header_len(path, header_len, size)
        self.data_start = 8 + header_len
        self.infos, self.metadata, self.offsets = parse_header_cached(path, self.map[8:self.data_start], size)
        self.large = size >= RELEASE_MIN_BYTES
        self._sha: str | None = None
        self._f32: np.ndarray | None = None  # the data section as float32, when every tensor is F32
        if (self.data_start % 4 == 0 and size > self.data_start
                and all(info.dtype == "F32" for info in self.infos.values())):
            self._f32 = np.frombuffer(self.map, np.float32, offset=self.data_start)

    def sha256(self) -> str:
        """Hex sha256 of the file (large files chunk by chunk, each chunk's pages dropped after hashing)."""
        if self._sha is None:
            if not self.large:
                self._sha = hashlib.sha256(self.map).hexdigest()
            else:
                digest = hashlib.sha256()
                with memoryview(self.map) as view:
                    for start in range(0, len(view), HASH_CHUNK_BYTES):
                        digest.update(view[start:start + HASH_CHUNK_BYTES])
                        self.release()
                self._sha = digest.hexdigest()
        return self._sha

    def release(self) -> None:
        """Drop this process's pages of a large mapping (they stay in the page cache; a later read maps them again)."""
        if self.large:
            self.map.madvise(mmap.MADV_DONTNEED)

    def span(self, names: list[str]) -> np.ndarray | None:
        """Tensors ``names`` as one flat float32 view, when every tensor is F32 and they lie back to back in
        this order (else None)."""
        if self._f32 is None or not names:
            return None
        start, end = self.offsets[names[0]]
        for name in names[1:]:
            following = self.offsets[name]
            if following[0] != end:
                return None
            end = following[1]
        return self._f32[start >> 2:end >> 2]

    def array(self, name: str, lazy: bool = False) -> np.ndarray:
        """Tensor ``name`` as float32: a view for F32, a per-tensor conversion for other dtypes (``lazy``:
        a :class:`HalfTensor` for F16/BF16, converted only where it is used)."""
        try:
            info, (start, end) = self.infos[name], self.offsets[name]
        except KeyError:
            raise CorruptCheckpoint(f"{self.path}: no tensor named {name!r}") from None
        if self._f32 is not None:  # offsets were checked against shape and dtype: a slice, no copy
            return self._f32[start >> 2:end >> 2].reshape(info.shape)
        count = math.prod(info.shape)
        if count == 0:
            return np.zeros(info.shape, np.float32)
        raw = np.frombuffer(self.map, dtype=_NUMPY_DTYPES[info.dtype], count=count,
                            offset=self.data_start + start).reshape(info.shape)
        if info.dtype == "F32":
            return raw
        if info.dtype in ("F16", "BF16"):
            half = HalfTensor(raw, info.dtype == "BF16")
            return half if lazy else np.asarray(half)  # type: ignore[return-value]
        return raw.astype(np.float32)


class HalfTensor:
    """A float16/bfloat16 tensor of a mapped file, converted to float32 only where and when it is used.

    ``shape``, ``ndim`` and ``size`` come from the stored view and ``reshape`` stays lazy; indexing converts
    only the elements it selects (pooling and sketching go slab by slab); ``np.asarray``, ``astype``,
    arithmetic and every other use convert the whole tensor, freed after use.
    """

    __slots__ = ("raw", "bf16")
    dtype = np.dtype(np.float32)

    def __init__(self, raw: np.ndarray, bf16: bool):
        self.raw, self.bf16 = raw, bf16

    shape = property(lambda self: self.raw.shape)
    ndim = property(lambda self: self.raw.ndim)
    size = property(lambda self: self.raw.size)

    def __len__(self) -> int:
        return len(self.raw)

    def reshape(self, *shape: int) -> HalfTensor:
        return HalfTensor(self.raw.reshape(*shape), self.bf16)

    def __getitem__(self, index: object) -> np.ndarray:
        return _to_float32(self.raw[index], self.bf16)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        out = _to_float32(self.raw, self.bf16)
        return out if dtype is None else out.astype(dtype, copy=False)

    def astype(self, dtype: object, copy: bool = True) -> np.ndarray:
        return np.asarray(self).astype(dtype, copy=False)

    def ravel(self) -> np.ndarray:
        return np.asarray(self).ravel()


def _to_float32(raw: np.ndarray, bf16: bool) -> np.ndarray:
    """Stored float16 or bfloat16 values (exactly) as float32; bfloat16 is the top half of a float32."""
    if bf16:
        return (np.asarray(raw).astype(np.uint32) << 16).view(np.float32)
    return np.asarray(raw).astype(np.float32)


_FILE_CACHE: list[MappedFile] = []
_FILE_CACHE_SIZE = 2


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _cached_file(path: Path) -> MappedFile | None:
    try:
        key = _stat_key(os.stat(path))
    except OSError:
        return None
    for mapped in _FILE_CACHE:
        if mapped.key == key:
            return mapped
    return None


def mapped_file(path: Path) -> MappedFile:
    """The memory-mapped, validated safetensors file at ``path`` (mapped now, or reused while unchanged)."""
    found = _cached_file(path)
    if found is not None:
        return found
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CorruptCheckpoint(f"{path}: cannot open ({exc.strerror})") from None
    try:
        mapped = MappedFile(path, _stat_key(os.fstat(fd)), fd)
    finally:
        os.close(fd)
    _FILE_CACHE.insert(0, mapped)
    del _FILE_CACHE[_FILE_CACHE_SIZE:]
    return mapped


def _load_pickle(path: Path) -> dict[str, np.ndarray]:
    """A torch ``.bin`` state dict (sized first, then ``weights_only`` loading; see :mod:`zoo_tupate.formats.picklefile`)."""
    return load_pickle(path, max_load_bytes())
