"""Ranking the zoo for a target: cosine similarity within each space, optional centering and ensemble."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class Ranking:
    """The ranked rows and notes (spaces that matched nothing, ...). Iterates over rows."""

    rows: list[Suggestion]
    notes: list[str] = field(default_factory=list)

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
) -> Ranking:
    """Rank index entries against each target embedding in its own space (see :meth:`Index.suggest`)."""
    entries = index.entries()
    if not entries:
        raise EmptyZoo(f"the index at {index.root} is empty: add sources with 'zoo-tupate index add' or 'pull'")
    methods = set(methods) if methods else None
    reprs = set(reprs) if reprs else None
    chosen = [t for t in targets if (methods is None or t.method in methods) and (reprs is None or t.repr in reprs)]
    if not chosen:
        raise IncompatibleSpace("no target embedding matches the requested --methods/--repr")
    notes: list[str] = []
    per_space: list[list[Suggestion]] = []
    for target in chosen:
        candidates = [e for e in entries if e.space == target.space and e.name not in exclude
                      and not (target.sha256 and e.sha256 == target.sha256)]
        if not candidates:
            notes.append(f"no zoo entry shares the target's space {target.space}")
            continue
        matrix = index.vectors(candidates)
        if matrix.shape[1] != target.dim:
            notes.append(f"{target.space}: target dim {target.dim} differs from the zoo's {matrix.shape[1]}")
            continue
        mean = np.vstack([matrix, target.vector[None, :]]).mean(axis=0) if center else None
        scores = cosine_scores(target.vector, matrix, mean)
        per_space.append(_rows(candidates, scores))
    if not per_space:
        raise IncompatibleSpace("the target's spaces match nothing in the zoo: " + "; ".join(notes))
    rows = _ensemble(per_space) if ensemble else _stack(per_space)
    if top_k is not None:
        rows = _top(rows, top_k, ensemble)
    return Ranking(rows=rows, notes=notes)


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
    """One row per source: the score averaged over the spaces (methods) in which it was compared."""
    scores: dict[str, list[Suggestion]] = {}
    for rows in per_space:
        for row in rows:
            scores.setdefault(row.name, []).append(row)
    merged = []
    for name, rows in scores.items():
        merged.append(Suggestion(rank=0, name=name, score=float(np.mean([r.score for r in rows])),
                                 method="ensemble", space=", ".join(sorted({r.space for r in rows})),
                                 repr=",".join(sorted({r.repr for r in rows})), source=rows[0].source,
                                 methods=sorted({r.method for r in rows}),
                                 metadata=rows[0].metadata))
    merged.sort(key=lambda s: (-s.score, s.name))
    for i, row in enumerate(merged):
        row.rank = i + 1
    return merged
