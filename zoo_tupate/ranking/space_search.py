"""One space's candidates scored against a target: a direct cosine scan of small spaces, the stored sketches
with an exact re-rank for large ones (:mod:`zoo_tupate.store.ann`), excluded names and the target's own weights
left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo_tupate.embedding.rankable import rankable
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.ranking.result import Suggestion
from zoo_tupate.store import ann
from zoo_tupate.store.index import Entry, Index


def cosine_scores(target: np.ndarray, matrix: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Cosine of ``target`` with each row of ``matrix`` (after subtracting ``center`` when given); NaN for a
    row that cannot be ranked (zero, too small or non-finite: see :func:`~zoo_tupate.embedding.rankable.rankable`)."""
    t = target.astype(np.float32)
    m = matrix
    live = rankable(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    if center is not None:
        t = t - center
        m = m - center
    norms = np.linalg.norm(m, axis=1) * float(np.linalg.norm(t))
    dots = m @ t
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(norms > 0, dots / norms, 0.0)
    return np.where(live, scores, np.nan).astype(np.float64)  # a zero or non-finite row is never ranked


NO_SPACE = "no zoo entry shares the target's space"


def own_space(index: Index, state, target: Embedding, exclude: set[str], top_k: int | None, ensemble: bool,
               center: bool, exact: bool, notes: list[str]) -> list[Suggestion] | None:
    """The rows of the target's own space (None, with a note, when it has no candidate)."""
    base = _space_base(state, index.root, target.space)
    if base is None:
        notes.append(f"{NO_SPACE} {target.space}")
        return None
    slots, views = base
    keep = _candidate_mask(state, slots, target, exclude)
    if not keep.any():
        notes.append(f"{NO_SPACE} {target.space}")
        return None
    dim = state.space_dim(target.space)
    if dim != target.dim:
        notes.append(f"{target.space}: target dim {target.dim} differs from the zoo's {dim}")
        return None
    count = int(keep.sum())
    if count * target.dim <= ann.DIRECT_MAX_VALUES:
        candidates = [state.entry(int(s)) for s in slots[keep]]
        matrix = index.vectors(candidates)
        mean = np.vstack([matrix, target.vector[None, :]]).mean(axis=0) if center else None
        return score_rows(candidates, cosine_scores(target.vector, matrix, mean))
    wanted = None if (top_k is None or ensemble) else top_k
    return _large_space(index, state, slots, views, keep, target, wanted, center, exact or count < ann.EXACT_BELOW)


def _space_base(state, root: Path, space: str) -> tuple[np.ndarray, list[ann.ShardView]] | None:
    """A space's live slots ordered by name, and per shard the rows and their positions in that order."""
    def build():
        slots = state.by_space().get(space)
        if not slots:
            return None
        names = state.cols["name"]
        ordered = np.array(sorted(slots, key=names.__getitem__), dtype=np.int64)
        shard_ids = np.array([state.cols["shard"][s] for s in ordered], dtype=np.int64)
        rows = np.array([state.cols["row"][s] for s in ordered], dtype=np.int64)
        views = []
        by_shard = np.lexsort((rows, shard_ids))  # grouped by shard, rows ascending within a shard
        bounds = np.flatnonzero(np.diff(shard_ids[by_shard])) + 1
        for positions in np.split(by_shard, bounds):
            path = root / state.shards.values[int(shard_ids[positions[0]])]
            views.append(ann.ShardView(path=path, rows=rows[positions], positions=positions, nrows=0))
        return ordered, views
    return state.derived(f"space:{space}", build)


def _candidate_mask(state, slots: np.ndarray, target: Embedding, exclude: set[str]) -> np.ndarray:
    """Which of a space's slots are candidates: not excluded by name, not the target's own weights."""
    keep = np.ones(len(slots), bool)
    dropped: set[int] = set()
    by_name = state.by_name()
    for name in exclude:
        dropped.update(by_name.get(name, []))
    if target.sha256:
        by_sha = state.derived("by_sha", lambda: _by_sha(state))
        dropped.update(by_sha.get(target.sha256, []))
    if dropped:
        keep &= ~np.isin(slots, np.fromiter(dropped, np.int64))
    return keep


def _by_sha(state) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for slot in state.slots():
        out.setdefault(state.cols["sha256"][slot], []).append(slot)
    return out


def _large_space(index: Index, state, slots: np.ndarray, views: list[ann.ShardView], keep: np.ndarray,
                 target: Embedding, top_k: int | None, center: bool, exact: bool) -> list[Suggestion]:
    """Rank a large space through the memory maps (see :mod:`zoo_tupate.store.ann`)."""
    cache = index.shards.cache
    for view in views:
        if not view.nrows:
            view.nrows = int(cache.get(view.path).shape[0])
    n = len(slots)
    mean = None
    if center:
        total = ann.space_total(views, cache, target.dim)
        dropped = np.flatnonzero(~keep)
        if len(dropped):
            total -= ann.gather_rows(views, dropped, cache, target.dim).astype(np.float64).sum(axis=0)
        mean = (total + target.vector.astype(np.float64)) / (int(keep.sum()) + 1)
    use_sketch = not exact and top_k is not None and ann.sketch_dim(target.dim) > 0
    if use_sketch:
        scores = ann.sketch_scores(views, n, target.vector, mean, cache)
        count = ann.rerank_count(top_k, n)
    else:
        scores = ann.scan_scores(views, n, target.vector, mean, cache)
        # uncentered scan scores are already exact (float32 dots, stored float64 norms); with a center the
        # expanded norms can lose digits, so a margin of rows is recomputed directly
        count = n if top_k is None else (max(4 * top_k, 64) if center else top_k)
    keep = keep & ann.rankable_rows(views, n, cache)  # a zero or non-finite row is never ranked
    scores[~keep] = -np.inf
    count = min(count, int(keep.sum()))
    best = ann.top_positions(scores, count)
    best = best[keep[best]]
    if top_k is not None or use_sketch:
        rows = ann.gather_rows(views, best, cache, target.dim)
        final = ann.exact_cosines(target.vector, rows, mean)
    else:
        final = scores[best]
    order = np.lexsort((best, -final))  # score, then name order
    if top_k is not None:
        order = order[:top_k]
    out = []
    for r, i in enumerate(order):
        entry = state.entry(int(slots[best[i]]))
        out.append(Suggestion(rank=r + 1, name=entry.name, score=float(final[i]), method=entry.method,
                              space=entry.space, repr=entry.repr, source=entry.source, methods=[entry.method],
                              metadata=entry.metadata))
    return out


def score_rows(candidates: list[Entry], scores: np.ndarray) -> list[Suggestion]:
    order = [i for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]  # NaN: never ranked
    return [
        Suggestion(rank=r + 1, name=candidates[i].name, score=float(scores[i]), method=candidates[i].method,
                   space=candidates[i].space, repr=candidates[i].repr, source=candidates[i].source,
                   methods=[candidates[i].method], metadata=candidates[i].metadata)
        for r, i in enumerate(order)
    ]
