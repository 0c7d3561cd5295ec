"""The Ray executor on a local Ray instance (2 CPUs): retries after a worker dies, zoo build with a worker
killed mid-job, and ``bench transfer`` giving the same result file as the local executor. Skipped without Ray."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tuning_helpers import random_base, tiny_bert, toy_dataset, toy_rows, write_jsonl

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "zoo-tupate[ray]")')

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs for this module (the executor uses it as it is), stopped after."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS), "HF_HUB_OFFLINE": "1"}})
    try:
        yield ray
    finally:
        ray.shutdown()


def test_a_job_whose_worker_dies_is_retried_and_a_failing_job_is_not(local_ray, tmp_path: Path) -> None:
    from ray_jobs import boom, die_once

    from zoo_tupate.zoobuild.executors import Job
    from zoo_tupate.zoobuild.executors.ray import RayExecutor

    died, failed = tmp_path / "died", tmp_path / "failed"
    outcomes = RayExecutor().run([Job(die_once, (str(died),), label="dies once"),
                                  Job(boom, (str(failed),), label="raises")], log=lambda _m: None)
    by_label = {o.job.label: o for o in outcomes}
    assert by_label["dies once"].ok and by_label["dies once"].value == "ok"
    pids = died.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]  # killed in one worker, finished in another
    assert by_label["raises"].error == "ValueError: boom"
    assert len(failed.read_text().split()) == 1  # the job's own exception is not retried


def _kill_first_tune_worker(found: list[int], stop: threading.Event) -> None:
    """Kill (SIGKILL) the first Ray worker seen running a zoo build tuning job."""
    import psutil

    while not stop.is_set() and not found:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if cmdline.startswith("ray::tune glue/rte/lora"):
                os.kill(proc.info["pid"], signal.SIGKILL)
                found.append(proc.info["pid"])
                return
        time.sleep(0.02)


def test_zoo_build_on_ray_survives_a_worker_killed_mid_job_and_pushes(local_ray, hub_server, tmp_path: Path) -> None:
    from zoo_tupate.cli import main
    from zoo_tupate.store.index import Index

    for task in ("rte", "mrpc"):
        toy_dataset(tmp_path / "data" / task, n_train=32, n_val=8, pair=True)
    home = tmp_path / "home"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_tune_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        result = CliRunner().invoke(main, ["--home", str(home), "zoo", "build", "rte", "mrpc", "--base-model",
                                           str(random_base()), "--base-model-id", "tiny-bert", "--data-dir",
                                           str(tmp_path / "data"), "--methods", "lora", "--executor", "ray", "--push", "me", "--json"])
    finally:
        stop.set()
        killer.join()
    assert result.exit_code == 0, result.output
    assert killed, "no tuning worker was seen running (nothing was killed)"
    out = json.loads(result.stdout)  # Ray's own notes (a worker died, retrying) went to stderr
    assert [i["outcome"] for i in out["items"]] == ["tuned+indexed+pushed", "tuned+indexed+pushed"]
    assert "task_embedding.safetensors" in hub_server.repo_files("me/tiny-bert-glue-rte-lora")
    assert Index(home).names() == {"glue/rte-lora@tiny-bert", "glue/mrpc-lora@tiny-bert"}


def _design(root: Path) -> Path:
    write_jsonl(root / "senti" / "train.jsonl", toy_rows(24, seed=1))
    write_jsonl(root / "senti" / "validation.jsonl", toy_rows(8, seed=2))
    write_jsonl(root / "pairs" / "train.jsonl", toy_rows(24, seed=3, pair=True))
    write_jsonl(root / "pairs" / "validation.jsonl", toy_rows(8, seed=4, pair=True))
    return root


def test_bench_transfer_on_ray_writes_the_same_result_file_as_local(local_ray, tmp_path: Path) -> None:
    from zoo_tupate.cli import main

    tasks, model = _design(tmp_path / "tasks"), tiny_bert(tmp_path / "model")
    docs = {}
    for executor in ("local", "ray"):
        out = tmp_path / f"{executor}.json"
        args = ["bench", "transfer", "--tasks-dir", str(tasks), "--tasks", "senti,pairs", "--base-model", str(model),
                "--base-model-id", "tiny-bert", "--train-rows", "16", "--source-rows", "16", "--source-epochs", "1",
                "--target-epochs", "1", "--val-rows", "8", "--max-length", "32", "--batch-size", "8",
                "--probe-methods", "lora", "--offshelf-methods", "lora", "--probe-epochs", "2",
                "--probe-early-epochs", "1", "--probe-val-rows", "8", "--threads", "1",
                "--cache", str(tmp_path / f"cache-{executor}"), "--out", str(out), "--executor", executor]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        doc = json.loads(out.read_text(encoding="utf-8"))
        for timing in ("timings", "report_wall_s"):  # wall and training seconds differ run to run
            doc.pop(timing)
        doc["config"].pop("cache")  # each run has its own cache folder
        docs[executor] = doc
    assert docs["ray"]["predictions"] and docs["ray"]["measured"]["senti"]["sources"]
    assert docs["ray"] == docs["local"]
