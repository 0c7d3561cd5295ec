"""Ranking the zoo for a target: cosine similarity within each space, optional centering and ensemble."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo_tupate import ann
from zoo_tupate.crossrank import MODES, CrossGroup, CrossLayout, cross_groups, group_note, header_note
from zoo_tupate.defaults import DEFAULT_REPR, ensemble_weight, preferred_repr
from zoo_tupate.embedding import Embedding
from zoo_tupate.errors import EmptyZoo, IncompatibleSpace

if TYPE_CHECKING:
    from zoo_tupate.index import Entry, Index


@dataclass
class Suggestion:
    """One ranked source: its rank, score and where it comes from."""

    rank: int
    name: str
    score: float
    method: str
    space: str
    repr: str = ""
    source: str = ""
    methods: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # --ensemble: member (method/repr) -> weight
    modules: list[str] = field(default_factory=list)  # cross-layout rows: the modules the score used
    cross_layout: bool = False  # scored against another layout of the target's space, on shared modules

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class Ranking:
    """The ranked rows and notes (spaces that matched nothing, ...). Iterates over rows."""

    rows: list[Suggestion]
    notes: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)  # target spaces answered by cross-layout rows

    def __iter__(self) -> Iterator[Suggestion]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Suggestion:
        return self.rows[i]


def cosine_scores(target: np.ndarray, matrix: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Cosine of ``target`` with each row of ``matrix`` (after subtracting ``center`` when given)."""
    t = target.astype(np.float32)
    m = matrix
    if center is not None:
        t = t - center
        m = m - center
    norms = np.linalg.norm(m, axis=1) * float(np.linalg.norm(t))
    dots = m @ t
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(norms > 0, dots / norms, 0.0)
    return scores.astype(np.float64)


def rank(
    index: Index,
    targets: list[Embedding],
    exclude: set[str],
    top_k: int | None = 10,
    methods: Iterable[str] | None = None,
    reprs: Iterable[str] | None = None,
    ensemble: bool = False,
    center: bool = False,
    exact: bool = False,
    cross_layout: str = "auto",
    pool: Sequence[tuple[Index, set[str]]] | None = None,
) -> Ranking:
    """Rank index entries against each target embedding in its own space (see :meth:`Index.suggest`).

    ``cross_layout`` (:mod:`zoo_tupate.crossrank`): ``auto`` also scores entries of other layouts of the
    target's base model and method on their shared modules when the target's own space has no candidate in
    any index of ``pool`` (the zoo's layers, each with the names it leaves out; default: this index alone);
    ``always`` does so for every target; ``never`` does not.

    ``reprs`` keeps the targets in those representations; ``None`` applies the default per method (see
    :func:`preferred_targets`).

    Small spaces (at most ``ann.DIRECT_MAX_VALUES`` numbers) are scored directly on a copy. Larger ones
    are scanned through the memory maps: spaces with fewer than ``ann.EXACT_BELOW`` candidates, ``exact``,
    or when every row is wanted (``top_k=None``, ``ensemble``) by a full scan, else through the stored
    sketches plus an exact re-rank of the best candidates.
    """
    state = index.state()
    if not len(state):
        raise EmptyZoo(f"the index at {index.root} is empty: add sources with 'zoo-tupate index add' or 'pull'")
    if cross_layout not in MODES:
        raise ValueError(f"unknown cross_layout {cross_layout!r} (choose from {', '.join(MODES)})")
    methods = set(methods) if methods else None
    reprs = set(reprs) if reprs else None
    chosen = [t for t in targets if (methods is None or t.method in methods) and (reprs is None or t.repr in reprs)]
    cross = CrossLayout(cross_layout, [(ix.state(), out) for ix, out in pool] if pool else [(state, exclude)],
                        exclude)
    notes: list[str] = []
    if reprs is None:
        def comparable(t: Embedding) -> bool:  # other layouts count only when no same-space rows would show
            return _has_candidates(state, t.space, exclude) or (cross.reachable(state, t) and not any(
                _has_candidates(state, o.space, exclude) for o in chosen if o.method == t.method))
        chosen, notes = preferred_targets(chosen, comparable)
    if not chosen:
        raise IncompatibleSpace("no target embedding matches the requested --methods/--repr")
    per_space: list[list[Suggestion]] = []
    covered: list[str] = []
    for target in chosen:
        wanted = cross.wanted(target)
        own = _own_space(index, state, target, exclude, top_k, ensemble, center, exact, notes)
        if own is not None:
            per_space.append(own)
        if not wanted:
            continue
        groups, more = cross_groups(index, state, target, exclude, center)
        if groups:
            covered.append(target.space)
            notes.append(header_note(target, cross.mode == "always"))
            notes.extend(group_note(target, group) for group in groups)
            per_space.extend(_cross_rows(group) for group in groups)
        notes.extend(more)
    if not per_space:
        raise IncompatibleSpace("the target's spaces match nothing in the zoo: " + "; ".join(notes))
    rows = _ensemble(per_space) if ensemble else _stack(per_space)
    if top_k is not None:
        rows = _top(rows, top_k, ensemble)
    return Ranking(rows=rows, notes=[n for n in notes if not _answered(n, covered)], covered=covered)


def _answered(note: str, covered: list[str]) -> bool:
    """A "no zoo entry shares the target's space" note for a space that cross-layout rows answered."""
    return note.startswith(_NO_SPACE) and any(note.endswith(space) for space in covered)


_NO_SPACE = "no zoo entry shares the target's space"


def _own_space(index: Index, state, target: Embedding, exclude: set[str], top_k: int | None, ensemble: bool,
               center: bool, exact: bool, notes: list[str]) -> list[Suggestion] | None:
    """The rows of the target's own space (None, with a note, when it has no candidate)."""
    base = _space_base(state, index.root, target.space)
    if base is None:
        notes.append(f"{_NO_SPACE} {target.space}")
        return None
    slots, views = base
    keep = _candidate_mask(state, slots, target, exclude)
    if not keep.any():
        notes.append(f"{_NO_SPACE} {target.space}")
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
        return _rows(candidates, cosine_scores(target.vector, matrix, mean))
    wanted = None if (top_k is None or ensemble) else top_k
    return _large_space(index, state, slots, views, keep, target, wanted, center, exact or count < ann.EXACT_BELOW)


def _cross_rows(group: CrossGroup) -> list[Suggestion]:
    """A cross-layout group's rows, ranked by score (ties by name), each naming the modules it used."""
    rows = _rows(group.entries, group.scores)
    for row in rows:
        row.modules = list(group.modules)
        row.cross_layout = True
    return rows


def preferred_targets(targets: list[Embedding], comparable: Callable[[Embedding], bool]
                      ) -> tuple[list[Embedding], list[str]]:
    """Per method, the targets in its preferred repr (:func:`~zoo_tupate.defaults.preferred_repr`).

    When none of those is ``comparable`` (the index holds no candidate in its space), the method falls
    back to its ``DEFAULT_REPR`` targets with a note saying why and how to fix it. Returns the targets
    kept and the notes.
    """
    by_method: dict[str, list[Embedding]] = {}
    for target in targets:
        by_method.setdefault(target.method, []).append(target)
    kept: list[Embedding] = []
    notes: list[str] = []
    for method, group in by_method.items():
        want = preferred_repr(method)
        keep = [t for t in group if t.repr == want]
        fallback = [t for t in group if t.repr == DEFAULT_REPR]
        if want != DEFAULT_REPR and fallback and not any(comparable(t) for t in keep):
            notes.append(_fallback_note(method, want, bool(keep)))
            keep = fallback
        kept.extend(keep or group)
    return kept, notes


def _fallback_note(method: str, want: str, target_has_it: bool) -> str:
    """Why ``method`` is compared in ``DEFAULT_REPR`` rather than ``want``, and what to do about it."""
    head = f"{method} compared in {DEFAULT_REPR}, not {want} (the default, which ranks {method} sources better)"
    fix = "'zoo-tupate index add --repr both PATH...'"
    if target_has_it:
        return (f"{head}: the index holds no {method} {want} entry to compare with; "
                f"add them with {fix} or pull again")
    return f"{head}: the target has no {want} embedding (an index entry target: re-add it with {fix})"


def _has_candidates(state, space: str, exclude: set[str]) -> bool:
    """Whether ``space`` holds an entry not excluded by name."""
    names = state.cols["name"]
    return any(names[slot] not in exclude for slot in state.by_space().get(space, ()))


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
    """Rank a large space through the memory maps (see :mod:`zoo_tupate.ann`)."""
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


def _rows(candidates: list[Entry], scores: np.ndarray) -> list[Suggestion]:
    order = np.argsort(-scores, kind="stable")
    return [
        Suggestion(rank=r + 1, name=candidates[i].name, score=float(scores[i]), method=candidates[i].method,
                   space=candidates[i].space, repr=candidates[i].repr, source=candidates[i].source,
                   methods=[candidates[i].method], metadata=candidates[i].metadata)
        for r, i in enumerate(order)
    ]


def _stack(per_space: list[list[Suggestion]]) -> list[Suggestion]:
    return [row for rows in per_space for row in rows]


def _top(rows: list[Suggestion], k: int, ensemble: bool) -> list[Suggestion]:
    if ensemble:
        return rows[:k]
    return [row for row in rows if row.rank <= k]


def _ensemble(per_space: list[list[Suggestion]]) -> list[Suggestion]:
    """One row per source: the score averaged over the spaces (methods) in which it was compared, weighted
    by each member's measured ranking quality (:func:`~zoo_tupate.defaults.ensemble_weight`; a member of
    weight 0 is dropped unless every member is, then they count equally). ``weights`` shows the weights."""
    scores: dict[str, list[Suggestion]] = {}
    for rows in per_space:
        for row in rows:
            scores.setdefault(row.name, []).append(row)
    merged = []
    for name, rows in scores.items():
        weights = {f"{r.method}/{r.repr}": ensemble_weight(r.method, r.repr) for r in rows}
        if not any(weights.values()):
            weights = dict.fromkeys(weights, 1.0)
        used = [r for r in rows if weights[f"{r.method}/{r.repr}"] > 0]
        total = sum(weights[f"{r.method}/{r.repr}"] for r in used)
        score = sum(weights[f"{r.method}/{r.repr}"] * r.score for r in used) / total
        merged.append(Suggestion(rank=0, name=name, score=float(score),
                                 method="ensemble", space=", ".join(sorted({r.space for r in used})),
                                 repr=",".join(sorted({r.repr for r in used})), source=rows[0].source,
                                 methods=sorted({r.method for r in used}),
                                 metadata=rows[0].metadata, weights=weights,
                                 modules=sorted({m for r in used for m in r.modules}),
                                 cross_layout=any(r.cross_layout for r in used)))
    merged.sort(key=lambda s: (-s.score, s.name))
    for i, row in enumerate(merged):
        row.rank = i + 1
    return merged
