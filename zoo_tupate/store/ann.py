"""Fast search over large spaces: a fixed sketch for candidate selection, memory-bound exact scans.

Every shard stores, beside its ``vectors`` (n × dim):

* ``sqnorm`` (n): each row's squared norm (so an exact scan is one pass over the matrix);
* ``total`` (dim): the sum of its rows (so the space mean for ``--center`` needs no scan);
* when ``dim > MIN_SKETCH_INPUT``: ``sketch.v<SKETCH_VERSION>`` (n × SKETCH_DIM), each row through a fixed,
  seeded CountSketch projection ``P`` (coordinate ``i`` goes to bucket ``h(i)`` with sign ``s(i)``; ``h``
  and ``s`` depend only on the seed and ``dim``), and ``sketch_sq.v<SKETCH_VERSION>``, its rows' squared
  norms. ``P`` is linear, so the projected mean is the mean of the projected rows: centering works in
  the sketch as in the full space.

Default search (spaces of ``EXACT_BELOW`` candidates or more): cosine in the sketch over all rows, then
an exact re-rank of the best ``rerank_count(k, n)`` candidates, read from the shard files. Exact search:
one matrix–vector pass per shard with the stored norms, then the same exact re-rank of the top rows.
Small products run on one thread (:func:`_matvec`); the big scan uses the BLAS.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint
from zoo_tupate.core.storage import map_tensors

SKETCH_DIM = 256
SKETCH_SEED = 20260127
#: Bumped whenever the projection changes; stored sketches are named after it, so a shard whose sketch was
#: made by another projection is never compared with a target projected by this one (it is re-sketched).
SKETCH_VERSION = 2
SKETCH_TENSOR = f"sketch.v{SKETCH_VERSION}"
SKETCH_SQ_TENSOR = f"sketch_sq.v{SKETCH_VERSION}"
#: Spaces of vectors this short are never sketched (an exact scan is as cheap).
MIN_SKETCH_INPUT = 4 * SKETCH_DIM
#: Spaces with fewer candidates than this are always scanned exactly.
EXACT_BELOW = 2000
#: Spaces with at most this many numbers (candidates × dim) are scored on an in-memory copy.
DIRECT_MAX_VALUES = 4_000_000
_ROW_CHUNK = 512


def rerank_count(top_k: int, n: int) -> int:
    """How many sketch candidates are re-ranked exactly for a top-``top_k`` query over ``n`` rows."""
    return min(n, max(200, 20 * top_k, n // 250))


@lru_cache(maxsize=8)
def _countsketch(dim: int, p: int = SKETCH_DIM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column order grouping coordinates by bucket, signs in that order, bucket start offsets)."""
    if dim < p:
        raise ValueError(f"dim {dim} too small to sketch to {p}")
    rng = np.random.default_rng([SKETCH_SEED, dim, p])
    # every bucket gets one coordinate of a random permutation first (reduceat needs non-empty buckets),
    # the remaining coordinates are hashed uniformly
    perm = rng.permutation(dim)
    buckets = np.empty(dim, np.int64)
    buckets[perm[:p]] = np.arange(p)
    buckets[perm[p:]] = rng.integers(0, p, dim - p)
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), dim)
    order = np.argsort(buckets, kind="stable")
    counts = np.bincount(buckets, minlength=p)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, signs[order], starts


def sketch_dim(dim: int) -> int:
    """Sketch width for vectors of ``dim`` (0: not sketched)."""
    return SKETCH_DIM if dim > MIN_SKETCH_INPUT else 0


def sketch(rows: np.ndarray) -> np.ndarray:
    """Project rows (n × dim, or one vector) with the fixed CountSketch of their dim (float32)."""
    single = rows.ndim == 1
    matrix = rows[None, :] if single else rows
    order, signs, starts = _countsketch(int(matrix.shape[1]))
    out = np.empty((matrix.shape[0], SKETCH_DIM), np.float32)
    for i in range(0, matrix.shape[0], _ROW_CHUNK):
        chunk = np.asarray(matrix[i:i + _ROW_CHUNK], dtype=np.float32)[:, order] * signs
        out[i:i + _ROW_CHUNK] = np.add.reduceat(chunk, starts, axis=1)
    return out[0] if single else out


def shard_extras(vectors: np.ndarray) -> dict[str, np.ndarray]:
    """The tensors stored beside ``vectors`` in a shard (see module docstring)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    sq = np.empty(vectors.shape[0], np.float32)
    total = np.zeros(vectors.shape[1], np.float64)
    for i in range(0, vectors.shape[0], _ROW_CHUNK):
        chunk = vectors[i:i + _ROW_CHUNK].astype(np.float64)
        sq[i:i + _ROW_CHUNK] = np.einsum("ij,ij->i", chunk, chunk)
        total += chunk.sum(axis=0)
    extras = {"sqnorm": sq, "total": total.astype(np.float32)}
    if sketch_dim(vectors.shape[1]):
        extras[SKETCH_TENSOR] = sketched = sketch(vectors)
        extras[SKETCH_SQ_TENSOR] = np.einsum("ij,ij->i", sketched, sketched, dtype=np.float64).astype(np.float32)
    return extras


@dataclass
class ShardView:
    """The live candidate rows of one shard for a query: file, row numbers, and their global positions."""

    path: Path
    rows: np.ndarray  # live candidate rows in this shard (sorted)
    positions: np.ndarray  # where each row's score goes in the candidate list
    nrows: int  # rows in the file


class ShardCache:
    """Open memory maps of immutable shard files (a shard is never rewritten in place); each file's header
    is parsed once."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, np.ndarray]] = {}

    def get(self, path: Path, name: str = "vectors", required: bool = True) -> np.ndarray | None:
        key = str(path)
        tensors = self._files.get(key)
        if tensors is None:
            tensors = self._files[key] = map_tensors(path)
            if len(self._files) > 4096:
                self._files.pop(next(iter(self._files)))
        found = tensors.get(name)
        if found is None and required:
            raise CorruptCheckpoint(f"{path}: no float32 tensor {name!r}")
        return found

    def put(self, path: Path, name: str, array: np.ndarray) -> None:
        """Remember an array computed for a shard (e.g. a sketch the file lacks)."""
        self.get(path)
        self._files[str(path)][name] = array

    def forget(self, path: Path) -> None:
        self._files.pop(str(path), None)


def exact_cosines(target: np.ndarray, rows: np.ndarray, center: np.ndarray | None) -> np.ndarray:
    """Cosine of ``target`` with ``rows`` (after subtracting ``center``), computed directly from the vectors
    in float32 like the small-zoo path: the scores the re-rank reports."""
    t = np.asarray(target, dtype=np.float32)
    m = np.asarray(rows, dtype=np.float32)
    if center is not None:
        c = np.asarray(center, dtype=np.float32)
        t = t - c
        m = m - c
    norms = np.sqrt(np.einsum("ij,ij->i", m, m).astype(np.float64)) * _norm(t)
    dots = _matvec(m, t).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, dots / norms, 0.0)


def scan_scores(views: list[ShardView], n: int, target: np.ndarray, center: np.ndarray | None,
                cache: ShardCache) -> np.ndarray:
    """Approximate-free cosines of all ``n`` candidates by one pass over each shard's matrix (float32 dots).

    With a center ``c``: ``⟨v−c, t−c⟩ = v·(t−c) − c·(t−c)`` and ``‖v−c‖² = ‖v‖² − 2 v·c + ‖c‖²``, so the
    scan is one product of the matrix with two vectors, using the stored row norms.
    """
    t = target.astype(np.float64)
    scores = np.zeros(n, np.float64)
    if center is not None:
        tc = t - center
        probe = np.stack([tc, center]).T.astype(np.float32)
        c_sq, c_tc = float(center @ center), float(center @ tc)
    else:
        tc = t
        probe = tc.astype(np.float32)
    t_norm = _norm(tc)
    for view in views:
        matrix = cache.get(view.path)
        sq = _sqnorms(view, cache)
        products = np.asarray(matrix @ probe, dtype=np.float64)
        if products.ndim == 1:
            products = products[:, None]
        scores[view.positions] = _cosines_from_products(
            products, view.rows, sq, t_norm, (c_tc, c_sq) if center is not None else None)
    return scores


def _cosines_from_products(products: np.ndarray, rows: np.ndarray, sq: np.ndarray, t_norm: float,
                           centered: tuple[float, float] | None) -> np.ndarray:
    """Cosines of ``rows`` from their products with the probe (column 0: t−c; column 1: c) and stored
    squared norms; ``centered`` is ``(c·(t−c), ‖c‖²)`` when a center was subtracted."""
    dots = products[rows, 0]
    sqn = np.asarray(sq, dtype=np.float64)[rows]
    if centered is not None:
        c_tc, c_sq = centered
        dots = dots - c_tc
        sqn = sqn - 2 * products[rows, 1] + c_sq
    norms = np.sqrt(np.maximum(sqn, 0.0)) * t_norm
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, dots / norms, 0.0)


def sketch_scores(views: list[ShardView], n: int, target: np.ndarray, center: np.ndarray | None,
                  cache: ShardCache) -> np.ndarray:
    """Approximate cosines of all ``n`` candidates in the sketch: one small product per shard, using the
    stored squared norms of the sketch rows (the center is projected too: the sketch is linear)."""
    q = sketch(np.asarray(target, dtype=np.float32)).astype(np.float64)
    c = sketch(np.asarray(center, dtype=np.float32)).astype(np.float64) if center is not None else None
    if c is not None:
        q = q - c
        probe = np.stack([q, c]).T.astype(np.float32)
        c_sq, c_q = float(c @ c), float(c @ q)
    else:
        probe = q.astype(np.float32)
    q_norm = _norm(q)
    scores = np.zeros(n, np.float64)
    for view in views:
        sk = cache.get(view.path, SKETCH_TENSOR, required=False)
        sq = cache.get(view.path, SKETCH_SQ_TENSOR, required=False)
        if sk is None or sq is None:  # written before this projection existed: sketch it now, once
            sk = sketch(np.asarray(cache.get(view.path)))
            sq = np.einsum("ij,ij->i", sk, sk)
            cache.put(view.path, SKETCH_TENSOR, sk)
            cache.put(view.path, SKETCH_SQ_TENSOR, sq)
        products = np.stack([_matvec(sk, column) for column in np.atleast_2d(probe.T)], axis=1).astype(np.float64)
        scores[view.positions] = _cosines_from_products(
            products, view.rows, sq, q_norm, (c_q, c_sq) if c is not None else None)
    return scores


def _norm(vector: np.ndarray) -> float:
    """Euclidean norm in float64 on one thread (``np.linalg.norm`` goes through BLAS: see :func:`_matvec`)."""
    v = np.asarray(vector, dtype=np.float64)
    return math.sqrt(float(np.einsum("i,i->", v, v)))


def _matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` on one thread: for small products, where a multi-threaded BLAS call costs more
    in thread hand-offs (badly so on a busy machine) than the arithmetic."""
    return np.einsum("ij,j->i", matrix, vector)


def _sqnorms(view: ShardView, cache: ShardCache) -> np.ndarray:
    sq = cache.get(view.path, "sqnorm", required=False)
    if sq is None:
        matrix = cache.get(view.path)
        sq = np.array([float(np.dot(r, r)) for r in np.asarray(matrix, dtype=np.float64)])
    return sq


def rankable_rows(views: list[ShardView], n: int, cache: ShardCache) -> np.ndarray:
    """Which of the ``n`` candidates can be ranked, from the stored squared norms (see
    :func:`~zoo_tupate.embedding.rankable`)."""
    from zoo_tupate.embedding.rankable import rankable

    out = np.zeros(n, bool)
    for view in views:
        out[view.positions] = rankable(np.asarray(_sqnorms(view, cache), dtype=np.float64)[view.rows])
    return out


def space_total(views: list[ShardView], cache: ShardCache, dim: int) -> np.ndarray:
    """Sum (float64) of the candidate rows: stored shard totals minus the rows that are not candidates."""
    total = np.zeros(dim, np.float64)
    for view in views:
        matrix = cache.get(view.path)
        stored = cache.get(view.path, "total", required=False)
        live = np.zeros(view.nrows, bool)
        live[view.rows] = True
        if stored is None or live.sum() < view.nrows // 2:
            for i in range(0, len(view.rows), _ROW_CHUNK):
                total += np.asarray(matrix[view.rows[i:i + _ROW_CHUNK]], dtype=np.float64).sum(axis=0)
            continue
        total += np.asarray(stored, dtype=np.float64)
        dead = np.flatnonzero(~live)
        if len(dead):
            total -= np.asarray(matrix[dead], dtype=np.float64).sum(axis=0)
    return total


def gather_rows(views: list[ShardView], positions: np.ndarray, cache: ShardCache, dim: int) -> np.ndarray:
    """The vectors of the candidates at ``positions`` (in that order).

    Read with ``pread`` rather than through the memory maps, so a long-lived process does not keep the
    pages of every row it ever re-ranked mapped (resident) after the query.
    """
    out = np.empty((len(positions), dim), np.float32)
    if not len(positions):
        return out
    lookup = np.full(int(max(int(v.positions.max(initial=-1)) for v in views)) + 1, -1, np.int64)
    lookup[positions] = np.arange(len(positions))
    row_bytes = dim * 4
    for view in views:
        dest = lookup[view.positions]
        hit = dest >= 0
        if not hit.any():
            continue
        matrix = cache.get(view.path)
        base = getattr(matrix, "offset", None)
        if base is None or not isinstance(matrix, np.memmap):
            out[dest[hit]] = matrix[view.rows[hit]]
            continue
        fd = os.open(view.path, os.O_RDONLY)
        try:
            for row, d in zip(view.rows[hit], dest[hit], strict=True):
                buffer = memoryview(out[d]).cast("B")
                if os.preadv(fd, [buffer], base + int(row) * row_bytes) != row_bytes:
                    raise CorruptCheckpoint(f"{view.path}: truncated while reading row {row}")
        finally:
            os.close(fd)
    return out


def top_positions(scores: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` highest scores (unordered)."""
    if count >= len(scores):
        return np.arange(len(scores))
    return np.argpartition(-scores, count - 1)[:count]
