"""The signals of the combined ranker, per (target, source) pair, and their within-target z-scores.

Signals (see docs/prediction-quality-v2-prereg.md): ``lora`` (LoRA ΔW cosine), ``prefix`` (deep-prefix raw
cosine), ``size`` (log10 of the source's training-set size), ``quality`` (the source probe's validation
score minus its majority-class rate) and ``family`` (1 when source and target share a task family). A
signal is ``None`` where it is not known. A signal known for some candidates of a ranking but not for all is
dropped for that whole ranking (:func:`usable`), never silently read as the candidates' average, and the
ranking reports which signals it dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

SIGNALS: tuple[str, ...] = ("lora", "prefix", "size", "quality", "family")
#: Result-file predictions that carry the similarity signals (same-init probes, early checkpoint).
MATRIX_PREDICTIONS: dict[str, str] = {"lora": "tupate/lora/delta/layer-mean/early/cos",
                                      "prefix": "tupate/prefix/raw/layer-mean/early/cos"}
#: Task families (the GLUE paper's grouping, plus SNLI and SciTail as inference). Fixed, not fitted.
FAMILIES: dict[str, str] = {
    **dict.fromkeys(("mnli", "snli", "qnli", "rte", "wnli", "scitail"), "inference"),
    **dict.fromkeys(("mrpc", "qqp", "stsb"), "similarity"),
    **dict.fromkeys(("cola", "sst2"), "single-sentence"),
}

Signals = dict[str, float | None]


def task_key(name: str) -> str:
    """The short task name of a catalog or entry name (``glue/mnli`` -> ``mnli``; ``SST-2`` -> ``sst2``)."""
    return name.rsplit("/", 1)[-1].lower().replace("-", "").replace("_", "")


def family_of(name: str) -> str | None:
    """The task family of a known task name, else ``None``."""
    return FAMILIES.get(task_key(name))


def same_family(target: str, source: str) -> float | None:
    """1.0 when both tasks are known and share a family, 0.0 when known and differ, else ``None``."""
    a, b = family_of(target), family_of(source)
    if a is None or b is None:
        return None
    return 1.0 if a == b else 0.0


def majority_rate(document: Mapping[str, Any], task: str) -> float | None:
    """A task's majority-class rate as the result file records it (0 for regression), else ``None``.

    Targets record it in ``measured``; a task probed only as a source has it when its ``probe_quality``
    rows record ``majority``, or when the task is regression (chance level 0)."""
    measured = document["measured"].get(task, {})
    if measured.get("problem") == "regression":
        return 0.0
    if measured.get("majority_rate") is not None:
        return float(measured["majority_rate"])
    quality = document.get("probe_quality") or {}
    for group in ("init0/lora", "init0/prefix"):
        row = quality.get(group, {}).get(task, {})
        if row.get("majority") is not None:
            return float(row["majority"])
    return None


def probe_tasks(document: Mapping[str, Any]) -> set[str]:
    """Every task a result file knows: its targets and every source of them."""
    tasks = set(document["measured"])
    for entry in document["measured"].values():
        tasks.update(entry.get("sources", {}))
    return tasks


def probe_margin(document: Mapping[str, Any], task: str) -> float | None:
    """Mean over the same-init LoRA and prefix probes of (early validation score − majority rate); ``None``
    when the probes or the task's majority rate are not recorded."""
    quality = document.get("probe_quality") or {}
    majority = majority_rate(document, task)
    values = [quality[g][task]["early"] for g in ("init0/lora", "init0/prefix")
              if task in quality.get(g, {}) and quality[g][task].get("early") is not None]
    return float(np.mean(values)) - majority if values and majority is not None else None


def matrix_signals(document: Mapping[str, Any]) -> dict[str, dict[str, Signals]]:
    """``{target: {source: signals}}`` for every measured pair of a ``bench transfer`` result file."""
    predictions = document["predictions"]
    sizes = predictions.get("datasize", {})
    margins = {task: probe_margin(document, task) for task in probe_tasks(document)}
    out: dict[str, dict[str, Signals]] = {}
    for target, entry in document["measured"].items():
        row: dict[str, Signals] = {}
        for source in entry.get("sources", {}):
            size = sizes.get(target, {}).get(source)
            row[source] = {
                "lora": predictions.get(MATRIX_PREDICTIONS["lora"], {}).get(target, {}).get(source),
                "prefix": predictions.get(MATRIX_PREDICTIONS["prefix"], {}).get(target, {}).get(source),
                "size": math.log10(size) if size and size > 0 else None,
                "quality": margins.get(source),
                "family": same_family(target, source),
            }
        out[target] = row
    return out


def usable(rows: Mapping[str, Signals], names: tuple[str, ...] = SIGNALS) -> tuple[dict[str, Signals], list[str]]:
    """``rows`` with every signal that some candidate lacks set to ``None`` for all of them, and the names of
    the signals so dropped (a signal no candidate has is simply absent, not "dropped")."""
    dropped = [n for n in names if 0 < sum(v.get(n) is not None for v in rows.values()) < len(rows)]
    if not dropped:
        return {s: dict(v) for s, v in rows.items()}, []
    return {s: {k: (None if k in dropped else x) for k, x in v.items()} for s, v in rows.items()}, dropped


def missing_report(document: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``{target: {signal: [sources without it]}}`` for every signal a target's ranking drops."""
    out: dict[str, dict[str, list[str]]] = {}
    for target, rows in matrix_signals(document).items():
        rows = {s: v for s, v in rows.items() if s != target}
        _, dropped = usable(rows)
        if dropped:
            out[target] = {n: sorted(s for s, v in rows.items() if v.get(n) is None) for n in dropped}
    return out


def zscores(rows: Mapping[str, Signals], names: tuple[str, ...] = SIGNALS) -> dict[str, dict[str, float]]:
    """Each signal z-scored over the candidates that have it (population std); missing or constant -> 0."""
    out: dict[str, dict[str, float]] = {s: {} for s in rows}
    for name in names:
        present = {s: float(v[name]) for s, v in rows.items() if v.get(name) is not None}
        values = np.array(list(present.values()), dtype=np.float64)
        std = float(values.std()) if len(values) > 1 else 0.0
        mean = float(values.mean()) if len(values) else 0.0
        for source in rows:
            out[source][name] = (present[source] - mean) / std if source in present and std > 0 else 0.0
    return out
