"""Ranking the zoo for a target: cosine similarity within each space, optional centering and ensemble."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from zoo_tupate.core.errors import EmptyZoo, IncompatibleSpace
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.ranking.crosslayout import (
    MODES,
    CrossGroup,
    CrossLayout,
    cross_groups,
    group_note,
    header_note,
)
from zoo_tupate.ranking.defaults import DEFAULT_REPR, ensemble_weight, preferred_repr
from zoo_tupate.ranking.result import Ranking, Suggestion
from zoo_tupate.ranking.space_search import NO_SPACE, own_space, score_rows
from zoo_tupate.store.index import Index


def _rank(index: Index, targets: list[Embedding], exclude: set[str], top_k: int | None,
          methods: Iterable[str] | None, reprs: Iterable[str] | None, ensemble: bool, center: bool, exact: bool,
          cross_layout: str, pool: Sequence[tuple[Index, set[str]]] | None) -> Ranking:
    """One pass of :func:`suggest`: index entries against each target embedding in its own space.

    ``cross_layout`` (:mod:`zoo_tupate.ranking.crosslayout`): ``auto`` also scores entries of other layouts of the
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
        own = own_space(index, state, target, exclude, top_k, ensemble, center, exact, notes)
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
    return note.startswith(NO_SPACE) and any(note.endswith(space) for space in covered)


def _cross_rows(group: CrossGroup) -> list[Suggestion]:
    """A cross-layout group's rows, ranked by score (ties by name), each naming the modules it used."""
    rows = score_rows(group.entries, group.scores)
    for row in rows:
        row.modules = list(group.modules)
        row.cross_layout = True
    return rows


def preferred_targets(targets: list[Embedding], comparable: Callable[[Embedding], bool]
                      ) -> tuple[list[Embedding], list[str]]:
    """Per method, the targets in its preferred repr (:func:`~zoo_tupate.ranking.defaults.preferred_repr`).

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


def _stack(per_space: list[list[Suggestion]]) -> list[Suggestion]:
    return [row for rows in per_space for row in rows]


def _top(rows: list[Suggestion], k: int, ensemble: bool) -> list[Suggestion]:
    if ensemble:
        return rows[:k]
    return [row for row in rows if row.rank <= k]


def _ensemble(per_space: list[list[Suggestion]]) -> list[Suggestion]:
    """One row per source: the score averaged over the spaces (methods) in which it was compared, weighted
    by each member's measured ranking quality (:func:`~zoo_tupate.ranking.defaults.ensemble_weight`; a member of
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


def suggest(
    index: Index,
    targets: list[Embedding],
    exclude: Iterable[str] = (),
    top_k: int | None = 10,
    methods: Iterable[str] | None = None,
    reprs: Iterable[str] | None = None,
    ensemble: bool = False,
    center: bool = False,
    exact: bool = False,
    cross_layout: str = "auto",
    pool: list[tuple[Index, set[str]]] | None = None,
) -> Ranking:
    """Rank ``index``'s entries for the target embeddings (one per space); the target is never ranked.

    ``reprs`` compares only the targets in those representations; ``None`` (the default) compares each
    method in its preferred one (LoRA: ``delta``, else ``raw``; see :mod:`zoo_tupate.ranking.defaults`), falling
    back to ``raw`` with a note when the index holds no entry to compare it with. Spaces with many
    entries are searched through the stored sketches with an exact re-rank of the best candidates
    (see :mod:`zoo_tupate.store.ann`); ``exact`` forces a full scan. ``cross_layout`` scores entries of other
    layouts on their shared modules (:mod:`zoo_tupate.ranking.crosslayout`; ``pool``: the zoo's layers, each with the
    names it leaves out).
    """
    for attempt in range(2):
        try:
            return _rank(index, targets, set(exclude), top_k, methods, reprs, ensemble, center, exact, cross_layout,
                         pool)
        except FileNotFoundError:
            if attempt:
                raise
            # a writer merged shards away since this process loaded the manifest: load it again
            index.reload()
    raise AssertionError("unreachable")
