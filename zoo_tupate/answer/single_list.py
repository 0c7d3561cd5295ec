"""``suggest``'s answer: one row per source in the default order, with its size, its similarity in each space,
the predicted effect of training on it first, and one sentence of advice.

The order comes from ONE function, :func:`default_order`; everything else (sizes, effects, advice) is laid
on top of it, so the default can change without touching how the answer is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from zoo_tupate.ranking.ranker.default import DEFAULT_SCORE_LABEL, default_notes, default_order
from zoo_tupate.ranking.ranker.product import FITTED_BASE, LIKELY, Explained, explain, fitted_for, source_size
from zoo_tupate.ranking.ranker.signals import family_of, task_key
from zoo_tupate.ranking.result import Ranking, Suggestion

#: The order in which a source's similarities are shown (the default order itself: ranking.ranker.default).
SPACE_PREFERENCE: tuple[str, ...] = ("lora/delta", "lora/raw", "prefix/raw", "bitfit/raw")
#: Units of the predicted effect.
EFFECT_UNITS = "points of the target's validation score (accuracy or correlation ×100)"
#: A source is "close" to the first when its score is within this share of the listed scores' range.
CLOSE_SHARE = 0.1


def space_label(row: Suggestion) -> str:
    """``method/repr`` of a per-space row."""
    return f"{row.method}/{row.repr or 'raw'}"


@dataclass
class Effect:
    """Predicted change of the target's validation score when it is trained on the source first (points)."""

    gain: float
    low: float
    high: float
    p_helps: float
    units: str = EFFECT_UNITS
    interval: str = "80%"


@dataclass
class SourceRow:
    """One source of the answer."""

    rank: int
    name: str
    score: float
    score_space: str
    size: int | None
    similarity: dict[str, float]
    effect: Effect | None
    zoo: str
    source: str
    cross_layout: bool = False
    modules: list[str] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=dict)  # the combined ranker's parts (--explain)


@dataclass
class Answer:
    """The whole answer: advice, rows, what the numbers mean, and the per-space rows it was built from."""

    target: str
    advice: str
    sources: list[SourceRow]
    footer: str
    score_label: str = DEFAULT_SCORE_LABEL
    notes: list[str] = field(default_factory=list)
    rows: list[Suggestion] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``suggest --json`` prints)."""
        return {"target": self.target, "advice": self.advice, "score": self.score_label, "footer": self.footer,
                "sources": [asdict(s) for s in self.sources], "notes": self.notes,
                "rows": [r.to_json() for r in self.rows]}


def build_answer(ranking: Ranking, target: str, top_k: int, zoo_of: Any = None,
                 notes: list[str] | None = None, task: str | None = None) -> Answer:
    """The answer for ``target`` from ``suggest``'s per-space ``ranking`` (``zoo_of(row)``: its layer name;
    ``task``: the target's task name when known, e.g. the catalog task a bare ``rte`` was taken as)."""
    target_name = _target_name(task or target)
    grouped = _by_source(ranking)
    order = default_order(ranking, target_name)[:top_k]
    notes = [*(notes or []), *default_notes(ranking)]
    explained_by: dict[str, Explained] = {e.name: e for e in explain(ranking, target_name=target_name)} if order else {}
    fitted = bool(order) and fitted_for(ranking)  # the effect model says nothing about other models/methods
    sources = []
    for i, (name, score) in enumerate(order, 1):
        rows = grouped[name]
        best: dict[str, Suggestion] = {}
        for row in rows:  # a same-space row wins over a cross-layout row of the same space
            label = space_label(row)
            if label not in best or best[label].cross_layout and not row.cross_layout:
                best[label] = row
        space = score_space(score, best)
        explained = explained_by.get(name)
        effect = (Effect(explained.gain, explained.gain_low, explained.gain_high, explained.p_helps)
                  if explained and fitted else None)
        sources.append(SourceRow(
            rank=i, name=name, score=score, score_space=space, size=source_size(name, rows[0].metadata),
            similarity={label: row.score for label, row in sorted(best.items(), key=lambda kv: _pref(kv[0]))},
            effect=effect, zoo=zoo_of(rows[0]) if zoo_of else "", source=rows[0].source,
            cross_layout=any(r.cross_layout for r in best.values()),
            modules=sorted({m for r in best.values() for m in r.modules}),
            parts=dict(explained.parts) if explained else {}))
    return Answer(target=target, advice=advice(sources, fitted=fitted), sources=sources,
                  footer=footer(sources), notes=notes, rows=list(ranking))


def score_space(score: float, rows: dict[str, Suggestion]) -> str:
    """The space whose cosine the default score is (``""`` when it is no cosine, e.g. a size)."""
    return next((label for label, row in sorted(rows.items(), key=lambda kv: _pref(kv[0]))
                 if abs(row.score - score) < 1e-12), "")


def advice(sources: list[SourceRow], fitted: bool) -> str:
    """One sentence: which source to train on first, which are close, and how sure that is, and why."""
    if not sources:
        return "No source to suggest."
    first = sources[0]
    if fitted and all(s.effect is not None and s.effect.p_helps < LIKELY for s in sources):
        best = max(sources, key=lambda s: s.effect.p_helps if s.effect else 0.0)
        e = best.effect
        assert e is not None
        return (f"Train on the target alone: no source is likely to help (the most likely, {best.name}, helps "
                f"with probability {e.p_helps:.2f}; predicted {e.gain:+.1f} points, 80% [{e.low:+.1f}, "
                f"{e.high:+.1f}]). How sure: not very, because that prediction's error is as large as the "
                f"effects themselves (docs/reading-the-answer.md).")
    close = close_to_first(sources)
    head = f"Train on {first.name} first"
    if close:
        names = " and ".join([", ".join(s.name for s in close[:-1]), close[-1].name] if len(close) > 1
                             else [close[0].name])
        head += f"; {names} {'is' if len(close) == 1 else 'are'} close"
    return f"{head}. How sure: {_how_sure(first, fitted)}"


def close_to_first(sources: list[SourceRow], limit: int = 2) -> list[SourceRow]:
    """Up to ``limit`` sources after the first whose score is within :data:`CLOSE_SHARE` of the listed
    scores' range of the first's (same score space only)."""
    if len(sources) < 2:
        return []
    first = sources[0]
    same = [s for s in sources if s.score_space == first.score_space]
    spread = max(s.score for s in same) - min(s.score for s in same)
    return [s for s in same[1:] if first.score - s.score <= CLOSE_SHARE * spread][:limit]


def _how_sure(first: SourceRow, fitted: bool) -> str:
    e = first.effect
    if not fitted or e is None:
        return ("unmeasured, because no measured transfer backs this zoo's base model and methods (the effect "
                f"model was fitted on {FITTED_BASE} LoRA/prefix probes); a dataset target can measure the top "
                "K with --verify K.")
    level = "fairly sure" if e.p_helps >= 0.8 else ("somewhat" if e.p_helps >= 0.65 else "not very")
    spans = ", which spans 0" if e.low < 0 < e.high else ""
    return (f"{level}, because training on {first.name} first is predicted to change the target's score by "
            f"{e.gain:+.1f} points (80% interval [{e.low:+.1f}, {e.high:+.1f}]{spans}; helps with probability "
            f"{e.p_helps:.2f}).")


def footer(sources: list[SourceRow]) -> str:
    """One line on what the numbers mean."""
    spaces = sorted({s.score_space for s in sources if s.score_space}, key=_pref)
    if spaces and all(s.score_space for s in sources):
        basis = _space_words(spaces[0]) + (f" (else {', '.join(spaces[1:])})" if len(spaces) > 1 else "")
        what = f"cosine of task embeddings in {basis}, from −1 to 1, only the order matters"
    else:
        what = f"{DEFAULT_SCORE_LABEL}; similarity columns: cosine of task embeddings, only the order matters"
    effect = ("; effect: predicted change of the target's validation score in points when trained on the "
              "source first, with its calibrated 80% interval" if any(s.effect for s in sources) else "")
    return f"score: {what}; rows: the source's training rows{effect}."


def _space_words(space: str) -> str:
    return {"lora/delta": "LoRA ΔW space", "lora/raw": "LoRA raw space", "prefix/raw": "prefix space"}.get(
        space, f"{space} space")


def _pref(space: str) -> int:
    return SPACE_PREFERENCE.index(space) if space in SPACE_PREFERENCE else len(SPACE_PREFERENCE)


def _by_source(ranking: Ranking) -> dict[str, list[Suggestion]]:
    grouped: dict[str, list[Suggestion]] = {}
    for row in ranking:
        grouped.setdefault(row.name, []).append(row)
    return grouped


def _target_name(target: str) -> str | None:
    """The target's task name when it is a known task (its last path part), for the family signal."""
    name = task_key(target.rstrip("/"))
    return name if family_of(name) else None
