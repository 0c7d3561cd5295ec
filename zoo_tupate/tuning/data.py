"""Tuning data: load a Hub or local dataset, detect its text and label columns, check it can be learnt.

A dataset is a Hub id (``org/name`` or ``org/name:config``, loaded with ``datasets``) or a local folder
holding ``train.{jsonl,json,csv,tsv,parquet}`` and ``validation.*`` (or ``dev.*``). Rows become plain
``(text_a, text_b | None)`` pairs with an int label (classification) or a float (regression).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import DatasetError

#: Column pairs tried in order; the first whose columns all exist wins.
TEXT_COLUMN_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("question", "passage"),
    ("sentence_A", "sentence_B"),
    ("text_a", "text_b"),
    ("sentence",),
    ("text",),
    ("sentence1",),
    ("content",),
)
LABEL_COLUMN_CANDIDATES: tuple[str, ...] = ("label", "labels", "score", "gold_label", "target")
LOCAL_SUFFIXES: tuple[str, ...] = ("jsonl", "json", "csv", "tsv", "parquet")
VALIDATION_NAMES: tuple[str, ...] = ("validation", "dev", "validation_matched", "valid", "val")

Row = dict[str, Any]


@dataclass
class Split:
    """One split as model inputs: first texts, optional second texts, labels (int or float)."""

    text_a: list[str]
    text_b: list[str] | None
    labels: list[Any]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class TaskData:
    """A dataset ready for tuning, with what was detected about it."""

    name: str
    train: Split
    validation: Split
    text_columns: list[str]
    label_column: str
    problem: str  # "classification" | "regression"
    num_labels: int
    label_names: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """The dataset's name for cards and adapter configs: a Hub id, or a local folder's own name."""
        if _looks_local(self.name):
            return Path(self.name).expanduser().resolve().name
        return self.name

    def fingerprint(self) -> str:
        """sha256 over the rows and settings: equal data gives an equal fingerprint (probe caches)."""
        digest = hashlib.sha256()
        for split in (self.train, self.validation):
            payload = json.dumps([split.text_a, split.text_b, split.labels], ensure_ascii=False)
            digest.update(payload.encode("utf-8"))
        digest.update(json.dumps([self.text_columns, self.label_column, self.problem]).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (for logs and cards)."""
        return {
            "dataset": self.name,
            "text_columns": self.text_columns,
            "label_column": self.label_column,
            "problem": self.problem,
            "num_labels": self.num_labels,
            "label_names": self.label_names,
            "train_rows": len(self.train),
            "validation_rows": len(self.validation),
            "dropped_rows": self.dropped,
        }


def load_task(
    dataset: str,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
    seed: int = 0,
) -> TaskData:
    """Load ``dataset`` (Hub id or local folder), detect columns, subsample, and check it can be learnt.

    ``max_train``/``max_eval`` keep a seeded random subset (the same for the same ``seed``). Raises
    :class:`DatasetError` naming the dataset and the problem (missing split or column, one class, ...).
    """
    train_rows, val_rows, names = _load_rows(dataset)
    if not train_rows:
        raise DatasetError(f"{dataset}: the train split is empty")
    if not val_rows:
        raise DatasetError(f"{dataset}: the validation split is empty")
    columns = list(train_rows[0].keys())
    texts = _pick_text_columns(dataset, train_rows, columns, text_columns)
    label = _pick_label_column(dataset, columns, label_column)
    for column in [*texts, label]:
        if column not in val_rows[0]:
            raise DatasetError(f"{dataset}: the validation split has no column {column!r}")
    train_rows, dropped_train = _keep_labelled(train_rows, label)
    val_rows, dropped_val = _keep_labelled(val_rows, label)
    if not train_rows:
        raise DatasetError(f"{dataset}: the train split has no labelled rows (column {label!r})")
    if not val_rows:
        raise DatasetError(f"{dataset}: the validation split has no labelled rows (column {label!r})")
    train_rows = _subsample(train_rows, max_train, seed)
    val_rows = _subsample(val_rows, max_eval, seed)
    problem, mapping, label_names = _label_kind(dataset, label, train_rows, val_rows, names)
    train = _to_split(train_rows, texts, label, mapping)
    validation = _to_split(val_rows, texts, label, mapping)
    if problem == "classification" and len(set(train.labels)) < 2:
        raise DatasetError(
            f"{dataset}: the train split has a single class ({label_names[train.labels[0]]!r} in column {label!r});"
            " nothing to learn"
        )
    if problem == "regression" and len(set(train.labels)) < 2:
        raise DatasetError(f"{dataset}: every train label in column {label!r} is the same value")
    return TaskData(
        name=dataset,
        train=train,
        validation=validation,
        text_columns=texts,
        label_column=label,
        problem=problem,
        num_labels=len(label_names) if problem == "classification" else 1,
        label_names=label_names,
        dropped={"train": dropped_train, "validation": dropped_val},
    )


# --------------------------------------------------------------------------------------------- loading


def _looks_local(dataset: str) -> bool:
    return dataset.startswith((".", "/", "~")) or Path(dataset).expanduser().exists()


def _load_rows(dataset: str) -> tuple[list[Row], list[Row], list[str] | None]:
    """(train rows, validation rows, class names when the source declares them)."""
    if _looks_local(dataset):
        folder = Path(dataset).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"{dataset}: no such dataset folder")
        return _read_split(folder, ("train",), dataset), _read_split(folder, VALIDATION_NAMES, dataset), None
    return _load_hub(dataset)


def _find_split_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for suffix in LOCAL_SUFFIXES:
            candidate = folder / f"{name}.{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _read_split(folder: Path, names: tuple[str, ...], dataset: str) -> list[Row]:
    path = _find_split_file(folder, names)
    if path is None:
        wanted = " or ".join(f"{n}.*" for n in names[:2])
        raise DatasetError(f"{dataset}: no {wanted} file in {folder} (expected {', '.join(LOCAL_SUFFIXES)})")
    try:
        return read_rows(path)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None


def read_rows(path: Path) -> list[Row]:
    """Rows of a jsonl / json / csv / tsv / parquet file as dicts."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "jsonl":
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == "json":
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:  # JSON lines under a .json name
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if isinstance(data, dict) and "data" in data:
            data = data["data"]
        if not isinstance(data, list):
            raise ValueError("expected a list of rows")
        return data
    if suffix in {"csv", "tsv"}:
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if suffix == "tsv" else ","))
    if suffix == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise ValueError(f"unsupported file type .{suffix}")


def _load_hub(dataset: str) -> tuple[list[Row], list[Row], list[str] | None]:
    name, _, config = dataset.partition(":")
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DatasetError(f"{dataset}: the `datasets` package is needed for Hub datasets ({exc})") from None
    try:
        loaded = datasets.load_dataset(name, config or None)
    except Exception as exc:  # noqa: BLE001 - datasets raises many unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{dataset}: cannot load this dataset ({first})") from None
    if "train" not in loaded:
        raise DatasetError(f"{dataset}: no train split (splits: {', '.join(loaded)})")
    val_name = next((n for n in VALIDATION_NAMES if n in loaded), None)
    if val_name is None:
        raise DatasetError(f"{dataset}: no validation or dev split (splits: {', '.join(loaded)})")
    names = None
    for key in LABEL_COLUMN_CANDIDATES:
        feature = loaded["train"].features.get(key)
        if feature is not None and hasattr(feature, "names"):
            names = list(feature.names)
            break
    return loaded["train"].to_list(), loaded[val_name].to_list(), names


# --------------------------------------------------------------------------------------------- columns


def _pick_text_columns(dataset: str, rows: list[Row], columns: list[str], wanted: list[str] | None) -> list[str]:
    if wanted:
        if not 1 <= len(wanted) <= 2:
            raise DatasetError(f"{dataset}: give one or two text columns, not {len(wanted)}")
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise DatasetError(f"{dataset}: no text column {missing[0]!r} (columns: {', '.join(columns)})")
        return list(wanted)
    for candidate in TEXT_COLUMN_CANDIDATES:
        if all(c in columns for c in candidate):
            picked = list(candidate)
            # a second column that is empty everywhere (single-sentence tasks stored as pairs)
            if len(picked) == 2 and all(row.get(picked[1]) in (None, "") for row in rows):
                picked = picked[:1]
            return picked
    texts = [c for c in columns if c not in LABEL_COLUMN_CANDIDATES and any(isinstance(r.get(c), str) for r in rows)]
    example = f" (e.g. --text-columns {texts[0]})" if texts else ""
    raise DatasetError(
        f"{dataset}: cannot tell which columns hold the text (columns: {', '.join(columns)});"
        f" pass --text-columns{example}"
    )


def _pick_label_column(dataset: str, columns: list[str], wanted: str | None) -> str:
    if wanted:
        if wanted not in columns:
            raise DatasetError(f"{dataset}: no label column {wanted!r} (columns: {', '.join(columns)})")
        return wanted
    for candidate in LABEL_COLUMN_CANDIDATES:
        if candidate in columns:
            return candidate
    raise DatasetError(
        f"{dataset}: no label column found (looked for {', '.join(LABEL_COLUMN_CANDIDATES)};"
        f" columns: {', '.join(columns)}); pass --label-column"
    )


def _keep_labelled(rows: list[Row], label: str) -> tuple[list[Row], int]:
    """Drop rows without a gold label (None, '', or the -1 of unlabelled GLUE test rows)."""
    kept = [r for r in rows if not _unlabelled(r.get(label))]
    return kept, len(rows) - len(kept)


def _unlabelled(value: Any) -> bool:
    if value is None or (isinstance(value, str) and value.strip() in {"", "-", "-1"}):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value == -1


def _subsample(rows: list[Row], limit: int | None, seed: int) -> list[Row]:
    if limit is None or limit >= len(rows):
        return rows
    if limit <= 0:
        raise DatasetError(f"row limit must be positive, got {limit}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [rows[i] for i in sorted(order[:limit])]


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _label_kind(
    dataset: str, label: str, train: list[Row], val: list[Row], names: list[str] | None
) -> tuple[str, dict[Any, int] | None, list[str]]:
    """Classification (with a value → index map and class names) or regression (floats)."""
    values = [r[label] for r in train] + [r[label] for r in val]
    numbers = [_as_number(v) for v in values]
    if all(n is not None for n in numbers):
        integral = all(float(n).is_integer() for n in numbers)  # type: ignore[arg-type]
        floats_given = any(isinstance(v, float) or (isinstance(v, str) and "." in v) for v in values)
        if not integral or floats_given:
            return "regression", None, []
        ints = sorted({int(n) for n in numbers})  # type: ignore[arg-type]
        if names and ints and ints[0] >= 0 and ints[-1] < len(names):
            return "classification", {i: i for i in range(len(names))}, list(names)
        if ints[0] == 0 and ints[-1] == len(ints) - 1:
            return "classification", {i: i for i in ints}, [str(i) for i in ints]
        return "classification", {i: k for k, i in enumerate(ints)}, [str(i) for i in ints]
    if any(isinstance(v, (dict, list)) for v in values):
        raise DatasetError(f"{dataset}: label column {label!r} holds {type(values[0]).__name__} values")
    labels = sorted({str(v) for v in values})
    return "classification", {v: k for k, v in enumerate(labels)}, labels


def _to_split(rows: list[Row], texts: list[str], label: str, mapping: dict[Any, int] | None) -> Split:
    def text(value: Any) -> str:
        return "" if value is None else str(value)

    text_a = [text(r.get(texts[0])) for r in rows]
    text_b = [text(r.get(texts[1])) for r in rows] if len(texts) == 2 else None
    if mapping is None:
        labels: list[Any] = [float(_as_number(r[label])) for r in rows]  # type: ignore[arg-type]
    elif all(isinstance(k, int) for k in mapping):
        labels = [mapping[int(_as_number(r[label]))] for r in rows]  # type: ignore[arg-type]
    else:
        labels = [mapping[str(r[label])] for r in rows]
    return Split(text_a=text_a, text_b=text_b, labels=labels)
