"""``zoo build`` as a user sees it: progress per job, the starter zoo's overlap, offline plans, --max-train,
and a built entry that takes the starter entry's place in suggest's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tuning_helpers import random_base, toy_dataset

from zoo_tupate.cli import main
from zoo_tupate.store.index import Index
from zoo_tupate.store.starter import STARTER_HUB_ID, starter_cards


def cli(home: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["--home", str(home), *args], env=env or {})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    toy_dataset(tmp_path / "data" / "rte", n_train=24, n_val=8, pair=True)
    return tmp_path / "data"


def test_the_local_executor_says_what_each_job_is_doing(data_dir: Path, tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "zoo", "build", "rte", "--base-model", str(random_base()), "--base-model-id",
               "bert-base-uncased", "--data-dir", str(data_dir), "--methods", "lora", "--max-train", "16")
    assert done.exit_code == 0, done.stderr
    said = done.stderr
    assert "estimate: about" in said  # before the work starts, not only under --dry-run
    for step in ("[1/1] tuning glue/rte/lora: up to 16 rows x 2 epochs", "epoch 1/2", "epoch 2/2",
                 "tuned glue/rte/lora", "indexing glue/rte/lora as glue/rte-lora@bert-base-uncased"):
        assert step in said, step
    assert said.index("tuning glue/rte/lora") < said.index("epoch 1/2") < said.index("indexing")


def test_max_train_caps_the_recipe_and_the_estimate(data_dir: Path, tmp_path: Path) -> None:
    args = ["zoo", "build", "rte", "--base-model", str(random_base()), "--base-model-id", "bert-base-uncased",
            "--data-dir", str(data_dir), "--methods", "lora", "--dry-run", "--json"]
    full = json.loads(cli(tmp_path / "home", *args).stdout)
    capped = json.loads(cli(tmp_path / "home", *args, "--max-train", "100").stdout)
    assert full["items"][0]["recipe"]["max_train"] == 1000 and capped["items"][0]["recipe"]["max_train"] == 100
    assert capped["items"][0]["rows"] == 100 and capped["estimate_s"] < full["estimate_s"]


def test_the_plan_says_the_starter_zoo_holds_the_task_and_offline_it_cannot_download(tmp_path: Path) -> None:
    done = cli(tmp_path / "home", "zoo", "build", "glue/wnli", "--base-model", STARTER_HUB_ID, "--dry-run",
               env={"HF_HUB_OFFLINE": "1", "COLUMNS": "80"})
    assert done.exit_code == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "the starter zoo already holds glue/wnli (lora, prefix)" in said
    assert "offline (HF_HUB_OFFLINE): the build cannot download nyu-mll/glue" in said and "--data-dir DIR" in said
    plan = json.loads(cli(tmp_path / "home", "zoo", "build", "glue/wnli", "--base-model", STARTER_HUB_ID,
                          "--dry-run", "--json", env={"HF_HUB_OFFLINE": "1"}).stdout)
    assert len(plan["notes"]) == 2
    online = cli(tmp_path / "home", "zoo", "build", "glue/wnli", "--base-model", STARTER_HUB_ID, "--dry-run",
                 env={"HF_HUB_OFFLINE": "0"})
    assert "cannot download" not in online.stderr


def test_a_built_entry_takes_the_starter_entrys_place_whatever_its_name(tmp_path: Path) -> None:
    home = tmp_path / "home"
    wnli = next(c for c in starter_cards() if c.name == "glue-wnli")
    Index(home).add(wnli, name="glue/wnli-lora@all-minilm-l6-v2", source="zoo-build:glue/wnli-lora@all-minilm-l6-v2",
                    metadata={"zoo_build": {"task": "glue/wnli", "method": "lora"}})
    done = cli(home, "suggest", "--target", "glue/rte", "--json", env={"HF_HUB_OFFLINE": "1"})
    assert done.exit_code == 0, done.stderr
    names = [s["name"] for s in json.loads(done.stdout)["sources"]]
    assert "glue/wnli-lora@all-minilm-l6-v2" in names and "glue/wnli" not in names  # listed once, as the user's
    assert len(names) == len(set(names)) == 10
    by_space = json.loads(cli(home, "suggest", "--target", "glue/rte", "--json", "--by-space").stdout)
    assert not any(r["name"] == "glue/wnli" for r in by_space)
    assert all(sorted(r["rank"] for r in by_space if r["space"] == space) == list(range(1, 11))
               for space in {r["space"] for r in by_space})
