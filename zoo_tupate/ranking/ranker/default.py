"""``suggest``'s default order: the ranking the pre-registered rule picked, read from ``default.json``.

``default.json`` (next to this module) records the winner of docs/prediction-quality-v3-prereg.md §4 and
the measurement that chose it (written by the benchmark script ``benchmarks/quality_v3.py``).
:func:`default_order` orders a ``suggest`` ranking's sources by the winner's key, with similarity (the
source's LoRA ΔW score, else its best row's score) as the second key. Sources whose primary key is unknown (a user's entry that
records no size, a task the prior does not cover) come after the known ones, by similarity, and
:func:`default_notes` says which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.ranking.ranker.signals import task_key
from zoo_tupate.ranking.result import Ranking, Suggestion

#: The one file that records the default ranking and its measurement.
DEFAULT_FILE = Path(__file__).with_name("default.json")
#: What each possible winner's score is, for a table header.
LABELS: dict[str, str] = {
    "datasize": "source size (log10 training rows), then similarity",
    "prior": "source prior (mean z-scored transfer on the measured tasks), then similarity",
    "embedding": "task-embedding similarity (LoRA ΔW cosine)",
    "prior+embedding": "z(source prior) + z(similarity)",
    "size+embedding": "z(log10 source size) + z(similarity)",
}


@lru_cache(maxsize=1)
def decision() -> dict[str, Any]:
    """The recorded decision (``default.json``)."""
    return json.loads(DEFAULT_FILE.read_text(encoding="utf-8"))


def default_method() -> str:
    """The name of the default ranking (``datasize``, ``prior``, ``embedding``, ...)."""
    return str(decision()["winner"])


DEFAULT_SCORE_LABEL: str = LABELS.get(default_method(), default_method()) if DEFAULT_FILE.is_file() else ""


def similarity(rows: list[Suggestion]) -> float:
    """A source's similarity: its LoRA ΔW row's score, else LoRA raw, else its best row's score."""
    by_space = {(r.method, r.repr or "raw"): r.score for r in rows}
    for key in (("lora", "delta"), ("lora", "raw")):
        if key in by_space:
            return float(by_space[key])
    return float(max(r.score for r in rows))


def _size(rows: list[Suggestion]) -> float | None:
    from zoo_tupate.ranking.ranker.product import source_size

    size = source_size(rows[0].name, rows[0].metadata)
    return math.log10(size) if size else None


def _z(values: Mapping[str, float]) -> dict[str, float]:
    array = np.array(list(values.values()), dtype=np.float64)
    std = float(array.std()) if len(array) > 1 else 0.0
    return {k: (v - float(array.mean())) / std if std > 0 else 0.0 for k, v in values.items()}


def primary_keys(grouped: Mapping[str, list[Suggestion]], method: str | None = None) -> dict[str, float | None]:
    """Each source's primary key under ``method`` (default: the recorded winner); ``None`` when unknown."""
    method = method or default_method()
    sims = {name: similarity(rows) for name, rows in grouped.items()}
    if method == "embedding":
        return dict(sims)
    if method in ("datasize", "size+embedding"):
        base = {name: _size(rows) for name, rows in grouped.items()}
    elif method in ("prior", "prior+embedding"):
        prior = decision().get("prior", {})
        base = {name: prior.get(task_key(name)) for name in grouped}
    else:
        raise ValueError(f"{DEFAULT_FILE}: unknown default ranking {method!r}")
    if method.endswith("+embedding"):
        known = {n: float(v) for n, v in base.items() if v is not None}
        zb, zs = _z(known), _z({n: sims[n] for n in known})
        return {n: (zb[n] + zs[n] if n in known else None) for n in grouped}
    return base


def _grouped(ranking: Ranking) -> dict[str, list[Suggestion]]:
    grouped: dict[str, list[Suggestion]] = {}
    for row in ranking:
        grouped.setdefault(row.name, []).append(row)
    return grouped


def default_order(ranking: Ranking, target_name: str | None = None) -> list[tuple[str, float]]:
    """(source name, default score) for every source in ``ranking``, best first.

    The score is the winner's primary key (NaN when unknown for that source: such sources follow the known
    ones, ordered by similarity). Ties on the primary key are broken by similarity, then by name.
    ``target_name`` is accepted for callers that know it; the recorded rankings do not depend on it.
    """
    del target_name
    grouped = _grouped(ranking)
    keys = primary_keys(grouped)
    sims = {name: similarity(rows) for name, rows in grouped.items()}
    order = sorted(grouped, key=lambda n: (keys[n] is None, -(keys[n] or 0.0), -sims[n], n))
    return [(n, float(keys[n]) if keys[n] is not None else math.nan) for n in order]


def default_notes(ranking: Ranking) -> list[str]:
    """Plain sentences for the output: which sources the default key could not place (ordered by similarity)."""
    grouped = _grouped(ranking)
    unknown = sorted(n for n, v in primary_keys(grouped).items() if v is None)
    if not unknown:
        return []
    return [f"{', '.join(unknown)}: no {default_method()} key known; listed after the others, by similarity"]


def decision_record(result: Mapping[str, Any], primary_doc: Mapping[str, Any]) -> dict[str, Any]:
    """What ``default.json`` records: the winner, why, each candidate's means on both matrices and its paired
    difference with DataSize, and the source prior fitted on every target of the primary matrix (used when
    the prior is, or is part of, the winner)."""
    from zoo_tupate.ranking.evaluate import measured_scores

    measured = measured_scores(primary_doc)
    sums: dict[str, list[float]] = {}
    for row in measured.values():
        values = np.array(list(row.values()), dtype=np.float64)
        std = float(values.std())
        for source, value in row.items():
            sums.setdefault(source, []).append((value - float(values.mean())) / std if std > 0 else 0.0)
    summary = {}
    for part in ("primary", "secondary"):
        block = result[part]
        summary[part] = {"file": block["file"], "targets": len(block["targets"]),
                         "means": {k: {m: round(v, 3) for m, v in ms.items()} for k, ms in block["means"].items()},
                         "paired_minus_datasize": block["paired_minus_datasize"],
                         "beats_datasize": block["beats_datasize"]}
    return {"winner": result["decision"]["winner"], "why": result["decision"]["why"],
            "second_key": "similarity (the source's LoRA ΔW score in suggest's ranking, else its best row)",
            "prereg": result["prereg"], "embedding": result["embedding"], "measured": summary,
            "prior": {s: round(float(np.mean(v)), 4) for s, v in sorted(sums.items())}}
