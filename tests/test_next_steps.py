"""Errors and notes that say what to do next: a target that is the zoo's only entry of its space, an empty
folder, a read-only home, a probe stuck at the majority class."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_checkpoint

from zoo_tupate.cli import main
from zoo_tupate.tuning.stuck import majority_rate, stuck_note


def cli(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], env={"HF_HUB_OFFLINE": "1"})


def test_a_target_alone_in_its_space_is_not_told_its_base_model_is_missing(tmp_path: Path, home: Path) -> None:
    adapter = make_checkpoint(tmp_path / "bert-sentiment-lora")
    assert cli(home, "index", "add", str(adapter)).exit_code == 0
    done = cli(home, "suggest", "--target", str(adapter), "--no-starter")
    assert done.exit_code != 0
    assert "only for other base models" not in done.stderr  # it holds that base model: the target itself
    assert "the target itself" in done.stderr and "add other sources" in done.stderr


def test_an_empty_folder_target_says_what_a_dataset_folder_needs(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    done = cli(tmp_path / "home", "suggest", "--target", str(tmp_path / "mine"))
    assert done.exit_code != 0 and "no adapter weights found" in done.stderr
    assert "train.* and validation.*" in done.stderr and "--base-model" in done.stderr


def test_a_read_only_home_gives_a_next_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ro-home"
    home.mkdir()
    real = os.mkdir

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(home)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    done = cli(home, "suggest", "--target", "glue/rte")
    assert done.exit_code != 0 and "Read-only file system" in done.stderr
    assert "--home DIR" in done.stderr and "ZOO_TUPATE_HOME" in done.stderr and "Traceback" not in done.stderr


def test_a_probe_stuck_at_the_majority_class_is_said_with_what_helps() -> None:
    labels = [1] * 281 + [0] * 127  # MRPC's validation split: 68.7% positive
    rate = majority_rate(labels)
    assert rate == pytest.approx(0.6887, abs=1e-4)
    record = {"early_metric": rate, "majority_rate": rate, "validation_rows": len(labels)}
    note = stuck_note("lora", record)
    assert note and "majority class" in note and "--max-train" in note and "--label-column" in note
    assert stuck_note("lora", {**record, "early_metric": rate + 0.05}) is None  # it learned something
    assert stuck_note("lora", {**record, "majority_rate": None}) is None  # regression: no majority class
