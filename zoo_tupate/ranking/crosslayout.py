"""Cross-layout ranking: index entries of other layouts scored on the modules they share with the target.

Spaces ``<base>/<method>/<repr>/<pooling>/<layout hash>`` that differ only in the layout hash are
*siblings*: the same base model and method, other target modules, ranks or bias subsets. Their stored
vectors are cut by their recorded segments (:mod:`zoo_tupate.embedding.segments`) into per-module parts and compared
with the target's parts on the keys (module name, shape) both have — the comparison of
:func:`zoo_tupate.ranking.ranker.layout.shared_cosine`, on stored vectors, without reading any checkpoint.

Modes (``suggest --cross-layout``): ``auto`` (the default) scores siblings only for a target whose own space
holds no candidate in any layer of the zoo, so every existing same-space ranking is unchanged (a cosine on
a subset of modules is not on the scale of a full-layout one, so the two are never mixed in one ranked
list: cross-layout rows are ranked per sibling space); ``always`` adds them beside the same-space rows;
``never`` turns them off.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from zoo_tupate.embedding.rankable import rankable
from zoo_tupate.embedding.segments import Key, segment_keys, segments_of, short_modules
from zoo_tupate.embedding.space import parse_space, short_space
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.ranking.ranker.layout import shared_parts

if TYPE_CHECKING:
    from zoo_tupate.store.index import Entry, Index
    from zoo_tupate.store.manifest import State

MODES = ("auto", "always", "never")
#: Values read at a time when scoring a sibling space (rows × dim).
CHUNK_VALUES = 4_000_000
_SAME = ("base_model", "method", "repr", "pooling")


@dataclass
class CrossGroup:
    """Candidates of one sibling space with one segment layout, scored on the keys shared with the target."""

    space: str
    modules: list[str]
    only_target: list[str]
    only_zoo: list[str]
    entries: list[Entry] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def target_segments(target: Embedding) -> list[list] | None:
    """The target's segments (recorded, or derived from its layout), or None."""
    return segments_of(target.metadata, target.method, target.repr, target.pooling, target.dim)


def sibling_spaces(state: State, space: str) -> list[str]:
    """The spaces of ``state`` with the same base model, method, repr and pooling as ``space``, other layout."""
    want = parse_space(space)
    if not want["method"]:
        return []
    return sorted(other for other in state.by_space() if other != space
                  and all(parse_space(other)[k] == want[k] for k in _SAME))


def _layouts(state: State, space: str, target: Embedding, exclude: set[str]
             ) -> tuple[dict[str, tuple[list[list], list[int]]], int]:
    """A sibling space's candidate slots grouped by segment layout (JSON text -> segments, slots), and how
    many candidates carry no segments."""
    names, shas, metas = state.cols["name"], state.cols["sha256"], state.cols["meta"]
    groups: dict[str, tuple[list[list], list[int]]] = {}
    bare = 0
    for slot in sorted(state.by_space().get(space, []), key=names.__getitem__):
        if names[slot] in exclude or (target.sha256 and shas[slot] == target.sha256):
            continue
        _, method, repr_, pooling, dim = state.kind(slot)
        segments = segments_of(state.metas.values[metas[slot]], method, repr_, pooling, dim)
        if segments is None:
            bare += 1
            continue
        text = json.dumps(segments)
        groups.setdefault(text, (segments, []))[1].append(slot)
    return groups, bare


def _lengths(segments: list[list]) -> dict[Key, int]:
    return {key: length for key, (_, length) in segment_keys(segments).items()}


@dataclass
class CrossLayout:
    """When and where cross-layout rows are scored: over every layer of the zoo (``layers``: each state with
    the names it leaves out) and, within one layer, with ``exclude``."""

    mode: str
    layers: list[tuple[State, set[str]]]
    exclude: set[str]

    def own(self, target: Embedding) -> bool:
        """Whether the target's own space holds a candidate (not excluded by name) in any layer."""
        return any(any(s.cols["name"][slot] not in out for slot in s.by_space().get(target.space, ()))
                   for s, out in self.layers)

    def wanted(self, target: Embedding) -> bool:
        """Whether to score the target's sibling spaces (``always``, or ``auto`` with no own candidate)."""
        return self.mode == "always" or (self.mode == "auto" and not self.own(target))

    def reachable(self, state: State, target: Embedding) -> bool:
        """Whether a sibling space of ``state`` holds a candidate (scored, or explained in a note)."""
        if self.mode == "never":
            return False
        names = state.cols["name"]
        return any(names[slot] not in self.exclude
                   for space in sibling_spaces(state, target.space) for slot in state.by_space()[space])


def cross_groups(index: Index, state: State, target: Embedding, exclude: set[str], center: bool
                 ) -> tuple[list[CrossGroup], list[str]]:
    """Score the target against ``index``'s sibling spaces on shared segments; returns the scored groups and
    notes (entries without segments, siblings that share nothing, a target without segments)."""
    siblings = sibling_spaces(state, target.space)
    if not siblings:
        return [], []
    what = f"{parse_space(target.space)['method']}/{target.repr}"
    mine = target_segments(target)
    if mine is None:
        return [], [f"the target's {what} embedding records no segment layout, so the zoo's other {what} "
                    "layouts cannot be compared with it (re-embed the target with this zoo-tupate)"]
    lengths = _lengths(mine)
    parts = segment_keys(mine)
    groups: list[CrossGroup] = []
    notes: list[str] = []
    unshared: set[str] = set()
    bare = 0
    for space in siblings:
        layouts, missing = _layouts(state, space, target, exclude)
        bare += missing
        for segments, slots in layouts.values():
            theirs = segment_keys(segments)
            shared = shared_parts(lengths, _lengths(segments))
            if not shared:
                unshared.update(name for name, _ in theirs)
                continue
            entries = [state.entry(slot) for slot in slots]
            left = [theirs[k] for k in shared]
            right = [parts[k] for k in shared]
            scores = _scores(index, entries, target.vector, right, left, center)
            groups.append(CrossGroup(space=space, modules=[k[0] for k in shared],
                                     only_target=sorted(k[0] for k in set(parts) - set(shared)),
                                     only_zoo=sorted(k[0] for k in set(theirs) - set(shared)),
                                     entries=entries, scores=scores))
    if bare:
        notes.append(f"some zoo entries of other {what} layouts record no segment layout (indexed before "
                     "zoo-tupate recorded one) and were not compared; add them again ('zoo-tupate index add "
                     "PATH', or pull) to score them on shared modules")
    if unshared and not groups:
        notes.append(f"no zoo entry of another {what} layout of {parse_space(target.space)['base_model']} "
                     f"shares a module with the target (target: {_names(n for n, _ in parts)}; zoo: "
                     f"{_names(unshared)})")
    return groups, notes


def group_note(target: Embedding, group: CrossGroup) -> str:
    """What one cross-layout group was computed on, and what it left out."""
    left = []
    if group.only_target:
        left.append(f"{_names(group.only_target)} (target only)")
    if group.only_zoo:
        left.append(f"{_names(group.only_zoo)} (zoo only)")
    return (f"{short_space(group.space)}: another layout than the target's, scored on the modules both tune: "
            f"{_names(group.modules)}" + (f"; left out {', '.join(left)}" if left else ""))


def header_note(target: Embedding, always: bool) -> str:
    """The one note that says cross-layout rows follow and how they are marked."""
    what = f"{parse_space(target.space)['method']}/{target.repr}"
    head = ("entries of other layouts are scored too" if always else
            f"no zoo entry has the target's {what} layout ({parse_space(target.space)['layout']}); entries of "
            "other layouts of the same base model are scored instead")
    return f"{head}, on the modules both tune (marked 'shared:'; JSON 'modules', 'cross_layout')"


def _names(names: Iterable[str]) -> str:
    ordered = sorted(set(names))
    return ",".join(short_modules(ordered))


def _scores(index: Index, entries: list[Entry], vector: np.ndarray, target_parts: list[tuple[int, int]],
            zoo_parts: list[tuple[int, int]], center: bool) -> np.ndarray:
    """Cosines of the target's shared parts with each entry's, read from the stored vectors a chunk of rows
    at a time (``center``: after subtracting the mean of the candidates' and the target's shared parts)."""
    take_t = np.concatenate([np.arange(o, o + n) for o, n in target_parts])
    take_z = np.concatenate([np.arange(o, o + n) for o, n in zoo_parts])
    t = vector[take_t].astype(np.float64)
    step = max(1, CHUNK_VALUES // max(1, entries[0].dim))
    chunks = [entries[i:i + step] for i in range(0, len(entries), step)]
    mean = None
    if center:
        total = t.copy()
        for chunk in chunks:
            total += index.vectors(chunk)[:, take_z].astype(np.float64).sum(axis=0)
        mean = total / (len(entries) + 1)
        t = t - mean
    out = []
    for chunk in chunks:
        rows = index.vectors(chunk)[:, take_z].astype(np.float64)
        live = rankable(np.einsum("ij,ij->i", rows, rows))  # a zero or non-finite part is never ranked
        if mean is not None:
            rows -= mean
        norms = np.linalg.norm(rows, axis=1) * float(np.linalg.norm(t))
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(live & (norms > 0), (rows @ t) / norms, np.nan))
    return np.concatenate(out)

