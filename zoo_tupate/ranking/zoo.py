"""The zoo a user ranks against: their own index, over the read-only starter zoo shipped with the package.

Entries the user adds come first: a user entry shadows a starter entry of the same name, and writes only
ever go to the user's index. ``Zoo(home, starter=False)`` (``--no-starter``) is the user's index alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import EmptyZoo, EntryNotFound, IncompatibleSpace
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.ranking.hints import nearest_spaces
from zoo_tupate.ranking.rank import suggest
from zoo_tupate.ranking.result import Ranking, Suggestion
from zoo_tupate.store.index import Entry, Index

USER, STARTER = "user", "starter"


class Zoo:
    """The user's :class:`Index` (``.index``) with the starter zoo beneath it."""

    def __init__(self, home: str | Path, starter: bool = True):
        self.index = Index(home)
        self.home = self.index.home
        self.root = self.index.root
        self.use_starter = starter
        self._starter: Index | None = None
        self._starter_loaded = False

    @property
    def starter(self) -> Index | None:
        """The starter layer (built on first use), or ``None`` when off or not packaged."""
        if self.use_starter and not self._starter_loaded:
            from zoo_tupate.store.starter import starter_index

            self._starter = starter_index(self.home)
            self._starter_loaded = True
        return self._starter if self.use_starter else None

    def layers(self) -> list[tuple[str, Index]]:
        """``(layer name, index)``, the user's first."""
        starter = self.starter
        return [(USER, self.index)] + ([(STARTER, starter)] if starter is not None else [])

    def listing(self) -> list[tuple[str, Entry]]:
        """Every visible entry with its layer, sorted by name then space (shadowed starter entries hidden)."""
        user = self.index.entries()
        names = {e.name for e in user}
        rows = [(USER, e) for e in user]
        if self.starter is not None:
            rows += [(STARTER, e) for e in self.starter.entries() if e.name not in names]
        return sorted(rows, key=lambda r: (r[1].name, r[1].space))

    def entries(self) -> list[Entry]:
        """Every visible entry (see :meth:`listing`)."""
        return [e for _, e in self.listing()]

    def names(self) -> set[str]:
        """Visible entry names."""
        return {e.name for e in self.entries()}

    def get(self, name: str) -> list[Entry]:
        """The entries of ``name`` in the first layer that holds it; EntryNotFound when none does."""
        for _, layer in self.layers():
            try:
                return layer.get(name)
            except EntryNotFound:
                continue
        raise EntryNotFound(f"no index entry named {name!r} in {self.root}")

    def layer_of(self, entry: Entry) -> Index:
        """The index that holds ``entry`` (the user's when several hold its name)."""
        for _, layer in self.layers():
            if name_in(layer, entry.name):
                return layer
        raise EntryNotFound(f"no index entry named {entry.name!r} in {self.root}")

    def embedding_of(self, entry: Entry) -> Embedding:
        """An entry as an :class:`Embedding`, read from its own layer."""
        return self.layer_of(entry).embedding_of(entry)

    def cached_embed(self, *args: Any, **kwargs: Any) -> Embedding:
        """:meth:`Index.cached_embed` of the user's index (the cache lives there)."""
        return self.index.cached_embed(*args, **kwargs)

    def suggest(self, targets: list[Embedding], exclude: Iterable[str] = (), top_k: int | None = 10,
                ensemble: bool = False, **options: Any) -> Ranking:
        """:func:`~zoo_tupate.ranking.rank.suggest` over every layer, merged: per space (or per source with ``ensemble``) the
        rows of all layers re-ranked by score; starter entries shadowed by a user name are left out, and so
        is a starter entry of a task and space a user entry was built or pulled for (:meth:`task_spaces`)."""
        exclude = set(exclude)
        results: list[Ranking] = []
        errors: list[Exception] = []
        shadow: set[str] = set()
        layers = self.layers()
        names = self.index.names() if len(layers) > 1 else set()
        # cross-layout scoring decides over every layer at once (each with what it leaves out)
        pool = [(layer, exclude | (names if name != USER else set())) for name, layer in layers]
        by_task = self.task_spaces() if len(layers) > 1 else set()
        for name, layer in layers:
            wanted = top_k + len(by_task) if top_k is not None and name != USER and by_task else top_k
            try:
                ranked = suggest(layer, targets, exclude=exclude | shadow, top_k=wanted, ensemble=ensemble,
                                 pool=pool, **options)
                results.append(ranked if name == USER else _unshadowed(ranked, by_task, top_k, ensemble))
            except (EmptyZoo, IncompatibleSpace) as exc:
                errors.append(exc)
            if name == USER:
                shadow = names
        if not results:
            error = _most_telling(errors)
            hint = nearest_spaces(targets, self.entries()) if isinstance(error, IncompatibleSpace) else ""
            raise type(error)(f"{error}; {hint}" if hint else str(error))
        return _merge(results, top_k, ensemble)


    def task_spaces(self) -> set[tuple[str, str]]:
        """``(catalog task, space)`` of the user's entries that record their task (``zoo build``, ``pull``)."""
        out = set()
        for entry in self.index.entries():
            meta = entry.metadata or {}
            task = next((m.get("task") for m in (meta.get("zoo_build"), meta.get("hub"))
                         if isinstance(m, dict) and m.get("task")), None)
            if isinstance(task, str):
                out.add((task, entry.space))
        return out


def _unshadowed(ranking: Ranking, by_task: set[tuple[str, str]], top_k: int | None, ensemble: bool) -> Ranking:
    """A lower layer's ranking without the rows a user entry of the same task and space replaces."""
    if not by_task:
        return ranking
    tasks = {task for task, _ in by_task}
    rows = [r for r in ranking.rows
            if not ((r.name in tasks) if ensemble else ((r.name, r.space) in by_task))]
    groups: dict[tuple[str, bool], list[Suggestion]] = {}
    for row in rows:
        groups.setdefault(("" if ensemble else row.space, row.cross_layout), []).append(row)
    kept = []
    for group in groups.values():
        _renumber(group)
        kept.extend(group if top_k is None else group[:top_k])
    return Ranking(rows=kept, notes=ranking.notes, covered=ranking.covered)


def name_in(index: Index, name: str) -> bool:
    """Whether ``index`` holds an entry named ``name``."""
    return name in index.state().by_name()


def _most_telling(errors: list[Exception]) -> Exception:
    """The error to report when no layer could rank: a space mismatch says more than an empty layer."""
    return next((e for e in errors if isinstance(e, IncompatibleSpace)), errors[0])


def _merge(results: list[Ranking], top_k: int | None, ensemble: bool) -> Ranking:
    if len(results) == 1:
        return results[0]
    rows = [row for result in results for row in result.rows]
    covered = sorted({space for result in results for space in result.covered})
    matched = {row.space for row in rows} | set(covered)
    notes = []
    for result in results:
        for note in result.notes:
            if note in notes or any(note.endswith(space) for space in matched):
                continue  # "no zoo entry shares ... <space>" when another layer did (or cross-layout rows)
            notes.append(note)
    if ensemble:
        rows.sort(key=lambda r: (-r.score, r.name))
        _renumber(rows)
        return Ranking(rows=rows[:top_k] if top_k else rows, notes=notes, covered=covered)
    by_space: dict[tuple[str, bool], list[Suggestion]] = {}
    for row in rows:  # cross-layout rows are ranked apart from same-space rows of the same space
        by_space.setdefault((row.space, row.cross_layout), []).append(row)
    merged: list[Suggestion] = []
    for group in by_space.values():
        group.sort(key=lambda r: (-r.score, r.name))
        _renumber(group)
        merged.extend(group if top_k is None else group[:top_k])
    return Ranking(rows=merged, notes=notes, covered=covered)


def _renumber(rows: list[Suggestion]) -> None:
    for i, row in enumerate(rows):
        row.rank = i + 1
