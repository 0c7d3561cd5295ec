"""What a ranking gives back: ranked rows (:class:`Suggestion`) and the notes beside them (:class:`Ranking`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


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
