"""Dataset loading for ``tune``: column detection, label kinds, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tuning_helpers import SHARED_CR, toy_dataset, write_jsonl

from zoo_tupate.core.errors import DatasetError, ZooError
from zoo_tupate.tuning.data import load_task


def test_local_pair_dataset_detects_columns(tmp_path: Path) -> None:
    folder = toy_dataset(tmp_path / "toy", 20, 10, pair=True)
    task = load_task(str(folder))
    assert task.text_columns == ["sentence1", "sentence2"]
    assert task.label_column == "label"
    assert task.problem == "classification" and task.num_labels == 2
    assert len(task.train) == 20 and len(task.validation) == 10
    assert task.train.text_b is not None and task.train.text_b[0]


def test_null_second_sentence_means_single_text(tmp_path: Path) -> None:
    rows = [{"sentence1": f"s {i}", "sentence2": None, "label": i % 2} for i in range(6)]
    write_jsonl(tmp_path / "d" / "train.jsonl", rows)
    write_jsonl(tmp_path / "d" / "dev.jsonl", rows[:2])  # dev.* is accepted for validation
    task = load_task(str(tmp_path / "d"))
    assert task.text_columns == ["sentence1"]
    assert task.train.text_b is None


@pytest.mark.parametrize(
    ("columns", "expected"),
    [(("premise", "hypothesis"), ["premise", "hypothesis"]), (("question1", "question2"), ["question1", "question2"]),
     (("question", "sentence"), ["question", "sentence"]), (("text",), ["text"])],
)
def test_known_column_pairs(tmp_path: Path, columns: tuple[str, ...], expected: list[str]) -> None:
    rows = [{**{c: f"{c} {i}" for c in columns}, "label": i % 3} for i in range(9)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows)
    task = load_task(str(tmp_path))
    assert task.text_columns == expected
    assert task.num_labels == 3


def test_csv_string_labels_and_overrides(tmp_path: Path) -> None:
    lines = ["body,verdict,other"] + [f"text {i},{'yes' if i % 2 else 'no'},x" for i in range(8)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "validation.csv").write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    task = load_task(str(tmp_path), text_columns=["body"], label_column="verdict")
    assert task.label_names == ["no", "yes"]
    assert set(task.train.labels) == {0, 1}


def test_regression_floats(tmp_path: Path) -> None:
    rows = [{"sentence1": f"a {i}", "sentence2": f"b {i}", "label": i * 0.5} for i in range(8)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows)
    task = load_task(str(tmp_path))
    assert task.problem == "regression" and task.num_labels == 1
    assert task.train.labels[3] == pytest.approx(1.5)


def test_unlabelled_rows_dropped_and_subsample_is_seeded(tmp_path: Path) -> None:
    rows = [{"text": f"t {i}", "label": -1 if i < 4 else i % 2} for i in range(40)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[4:10])
    a = load_task(str(tmp_path), max_train=10, seed=3)
    b = load_task(str(tmp_path), max_train=10, seed=3)
    c = load_task(str(tmp_path), max_train=10, seed=4)
    assert a.dropped["train"] == 4 and len(a.train) == 10
    assert a.train.text_a == b.train.text_a and a.fingerprint() == b.fingerprint()
    assert a.train.text_a != c.train.text_a


@pytest.mark.skipif(not SHARED_CR.is_dir(), reason="shared CR data absent")
def test_shared_stsb_is_regression_and_sst2_single_text() -> None:
    stsb = load_task(str(SHARED_CR / "stsb"), max_train=50, max_eval=20)
    assert stsb.problem == "regression" and stsb.text_columns == ["sentence1", "sentence2"]
    sst2 = load_task(str(SHARED_CR / "sst2"), max_train=50, max_eval=20)
    assert sst2.text_columns == ["sentence1"] and sst2.num_labels == 2


# ------------------------------------------------------------------------------------------ bad input


def test_unknown_local_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no-such-folder"):
        load_task(str(tmp_path / "no-such-folder"))


def test_unknown_hub_dataset_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="zoo-tupate-test/no-such-dataset"):
        load_task("zoo-tupate-test/no-such-dataset")


def test_missing_validation_split(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0}])
    with pytest.raises(DatasetError, match="validation"):
        load_task(str(tmp_path))


def test_missing_label_column(tmp_path: Path) -> None:
    rows = [{"sentence": f"s {i}", "tag": i % 2} for i in range(4)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows)
    with pytest.raises(DatasetError, match="no label column"):
        load_task(str(tmp_path))
    with pytest.raises(DatasetError, match="'gold'"):
        load_task(str(tmp_path), label_column="gold")


def test_missing_text_column(tmp_path: Path) -> None:
    rows = [{"words": f"s {i}", "label": i % 2} for i in range(4)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows)
    with pytest.raises(DatasetError, match="text"):
        load_task(str(tmp_path))
    with pytest.raises(DatasetError, match="'body'"):
        load_task(str(tmp_path), text_columns=["body"])


def test_single_class(tmp_path: Path) -> None:
    rows = [{"text": f"s {i}", "label": 1} for i in range(6)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows)
    with pytest.raises(DatasetError, match="single class"):
        load_task(str(tmp_path))


def test_empty_split(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [])
    write_jsonl(tmp_path / "validation.jsonl", [{"text": "a", "label": 0}])
    with pytest.raises(DatasetError, match="train split is empty"):
        load_task(str(tmp_path))


def test_unreadable_file_is_a_zoo_error(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{not json\n", encoding="utf-8")
    (tmp_path / "validation.jsonl").write_text(json.dumps({"text": "a", "label": 0}) + "\n", encoding="utf-8")
    with pytest.raises(ZooError, match="train.jsonl"):
        load_task(str(tmp_path))
