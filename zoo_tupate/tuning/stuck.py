"""A probe that learned nothing: its validation accuracy is the majority class's share, so its embedding may
say little about the task. Said as a note, with what would help."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def majority_rate(labels: Sequence[Any]) -> float | None:
    """The share of the most common label (classification), ``None`` for no labels."""
    if not labels:
        return None
    return Counter(labels).most_common(1)[0][1] / len(labels)


def stuck_note(method: str, record: Mapping[str, Any]) -> str | None:
    """A note when the probe's early accuracy is within one validation row of the majority-class share."""
    majority, score, rows = record.get("majority_rate"), record.get("early_metric"), record.get("validation_rows")
    if not isinstance(majority, float | int):  # recorded for classification probes only (accuracy)
        return None
    if not isinstance(score, float | int) or not isinstance(rows, int) or rows <= 0:
        return None
    if abs(score - majority) > 1.0 / rows + 1e-9:
        return None
    return (f"probe {method}: its validation accuracy {score:.4f} is the majority class's share ({majority:.4f}): "
            "it predicts one class and learned little, so its embedding may not describe the task and the "
            "ranking may be noise. What helps: more training rows (--max-train, if it capped them), labels "
            "that are balanced or clean, or checking --text-columns/--label-column point at the right columns")
