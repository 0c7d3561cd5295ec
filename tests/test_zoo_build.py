"""``zoo build`` on a tiny random BERT and tiny local datasets: plan, dry run, build, push, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tuning_helpers import random_base, toy_dataset

from zoo_tupate.cli import main
from zoo_tupate.store.index import Index

#: A base-model identity the catalog lists Hub adapters for (AdapterHub bottleneck adapters).
BASE_ID = "bert-base-uncased"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for task in ("rte", "mrpc"):
        toy_dataset(tmp_path / "data" / task, n_train=32, n_val=8, pair=True)
    return tmp_path / "data"


def _args(data_dir: Path, *extra: str, methods: str = "lora") -> list[str]:
    return ["zoo", "build", "rte", "mrpc", "--base-model", str(random_base()), "--base-model-id", BASE_ID,
            "--data-dir", str(data_dir), "--methods", methods, *extra]


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_dry_run_prints_the_plan_and_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(home), *_args(data_dir, "--push", "me", "--dry-run", "--json",
                                                                    methods="bottleneck,lora,prefix")])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["estimate_s"] > 0 and "probe(s)" in plan["estimate_basis"]
    items = {i["key"]: i for i in plan["items"]}
    assert set(items) == {f"glue/{t}/{m}" for t in ("rte", "mrpc") for m in ("bottleneck", "lora", "prefix")}
    pulled = items["glue/rte/bottleneck"]  # the catalog knows an AdapterHub adapter: pulled, never tuned
    assert pulled["action"] == "pull" and pulled["repo"] == "AdapterHub/bert-base-uncased-pf-rte"
    tuned = items["glue/rte/lora"]
    assert tuned["action"] == "tune" and tuned["steps"] == ["tune", "index", "push"]
    assert tuned["dataset"] == str(data_dir / "rte") and tuned["entry"] == "glue/rte-lora@bert-base-uncased"
    assert tuned["push_repo"] == "me/bert-base-uncased-glue-rte-lora"
    assert tuned["recipe"]["epochs"] == 2 and tuned["recipe"]["max_train"] == 1000 and tuned["recipe"]["init_seed"] == 0
    assert not home.exists()  # nothing written: no index, no build folder
    table = CliRunner().invoke(main, ["--home", str(home), *_args(data_dir, "--dry-run")])
    assert table.exit_code == 0 and "estimate: about" in table.stderr and "Nothing was changed" in table.stderr
    assert not home.exists()


def test_unknown_pattern_and_address_without_ray_are_one_line_errors(data_dir: Path, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    bad = CliRunner().invoke(main, [*home, "zoo", "build", "nosuchtask", "--base-model", "x", "--dry-run"])
    assert bad.exit_code != 0 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    bad = CliRunner().invoke(main, [*home, *_args(data_dir, "--address", "auto", "--dry-run")])
    assert bad.exit_code != 0 and "--address needs --executor ray" in bad.stderr


def test_build_pulls_tunes_indexes_and_pushes_then_a_rerun_does_nothing(hub_server, tiny_zoo, data_dir: Path) -> None:
    from fixtures_hub import publish_adapter

    publish_adapter(hub_server, "AdapterHub/bert-base-uncased-pf-rte", tiny_zoo["sst2"])  # the catalog's repo
    hub_server.commit_files("me/bert-base-uncased-glue-mrpc-lora", {"README.md": "theirs", "adapter_config.json": "{}"})
    foreign = hub_server.head("me/bert-base-uncased-glue-mrpc-lora")
    args = _args(data_dir, "--push", "me", "--json", methods="bottleneck,lora")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # the foreign repo's push failed; everything else was done
    out = json.loads(result.stdout)
    items = {(i["task"], i["method"]): i for i in out["items"]}
    assert items[("glue/rte", "bottleneck")]["outcome"] == "pulled"
    assert items[("glue/rte", "lora")]["outcome"] == "tuned+indexed+pushed"
    mrpc = items[("glue/mrpc", "lora")]
    assert mrpc["outcome"] == "failed" and mrpc["steps"]["index"] == "done" and "not created by zoo-tupate" in mrpc["reason"]
    assert items[("glue/mrpc", "bottleneck")]["outcome"] == "failed"  # listed in the catalog, absent on the Hub
    assert "error: " in result.stderr and "items failed" in result.stderr
    assert hub_server.head("me/bert-base-uncased-glue-mrpc-lora") == foreign  # never overwritten
    pushed = hub_server.repo_files("me/bert-base-uncased-glue-rte-lora")
    assert {"adapter_model.safetensors", "task_embedding.safetensors", "zoo_tupate.json"} <= set(pushed)
    index = Index(hub_server.zoo_home)
    assert {"AdapterHub/bert-base-uncased-pf-rte", "glue/rte-lora@bert-base-uncased",
            "glue/mrpc-lora@bert-base-uncased"} <= index.names()
    recipe = index.get("glue/rte-lora@bert-base-uncased")[0].metadata["zoo_build"]["recipe"]
    assert recipe["epochs"] == 2 and recipe["lr_source"] == "search"
    head = hub_server.head("me/bert-base-uncased-glue-rte-lora")

    again = CliRunner().invoke(main, args)
    items = {(i["task"], i["method"]): i for i in json.loads(again.stdout)["items"]}
    assert items[("glue/rte", "lora")]["outcome"] == "skipped" and items[("glue/rte", "bottleneck")]["outcome"] == "skipped"
    assert items[("glue/mrpc", "lora")]["steps"] == {"tune": "skipped", "index": "skipped", "push": "failed"}
    assert hub_server.head("me/bert-base-uncased-glue-rte-lora") == head  # nothing pushed twice


def test_a_killed_build_resumes_and_redoes_only_what_is_missing(data_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ["--home", str(home), *_args(data_dir, methods="lora,prefix")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "zoo_tupate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = home / "builds" / BASE_ID / "state"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any("index" in json.loads(p.read_text()) for p in state.glob("*.json")):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed mid-build, not finished
    before = {p.name: json.loads(p.read_text()) for p in state.glob("*.json")}
    finished = {name for name, s in before.items() if "index" in s}
    assert 1 <= len(finished) < 4
    runs = home / "builds" / BASE_ID / "runs"
    kept = _files(runs)

    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    by_slug = {f"{i['task'].replace('/', '-')}-{i['method']}.json": i for i in out["items"]}
    for name in finished:
        assert by_slug[name]["outcome"] == "skipped"
    assert out["counts"]["tuned"] + len([n for n in before if "tune" in before[n]]) == 4
    assert out["counts"]["failed"] == 0 and len(Index(home).names()) == 4
    now = _files(runs)
    for rel, mtime in kept.items():  # what the killed run finished is untouched
        if rel.split("/")[1] in {"lora", "prefix"} and not rel.split("/")[1].startswith("."):
            assert now.get(rel) == mtime, rel


def test_executor_ray_without_ray_installed_is_a_one_line_error(data_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), *_args(data_dir, "--executor", "ray")])
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == ['error: --executor ray: Ray is not installed (pip install "zoo-tupate[ray]")']


def test_a_built_name_never_replaces_another_entry_but_replaces_its_own(data_dir: Path, tmp_path: Path,
                                                                         tiny_zoo) -> None:
    home = tmp_path / "home"
    Index(home).add(tiny_zoo["sst2"], name="glue/rte-lora@bert-base-uncased")  # the user's own entry
    args = ["--home", str(home), *_args(data_dir, "--json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    items = {i["task"]: i for i in json.loads(result.stdout)["items"]}
    assert items["glue/rte"]["steps"] == {"tune": "done", "index": "failed"}
    assert "zoo build did not make it" in items["glue/rte"]["reason"]
    assert items["glue/mrpc"]["outcome"] == "tuned+indexed"
    assert Index(home).get("glue/rte-lora@bert-base-uncased")[0].source != "zoo-build:glue/rte-lora@bert-base-uncased"
    before = {e.space: e.sha256 for e in Index(home).get("glue/mrpc-lora@bert-base-uncased")}

    import shutil

    shutil.rmtree(home / "builds" / BASE_ID / "runs" / "glue-mrpc")  # the adapter is gone: tuned again,
    toy_dataset(data_dir / "mrpc", n_train=40, n_val=8, pair=True)  # on other rows
    again = json.loads(CliRunner().invoke(main, args).stdout)
    mrpc = next(i for i in again["items"] if i["task"] == "glue/mrpc")
    assert mrpc["outcome"] == "tuned+indexed"
    after = {e.space: e.sha256 for e in Index(home).get("glue/mrpc-lora@bert-base-uncased")}
    assert set(after) == set(before) and after != before  # the build's own entry was replaced
