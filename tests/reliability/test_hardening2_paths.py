"""Issue 23 items 17-18: working paths of ``tune``, ``zoo build`` and ``suggest --verify``.

- an entry made by ``tune`` → ``index add`` or by ``zoo build`` records where its adapter really is, and
  ``suggest --verify``'s planner finds that adapter (it used to say "the indexed checkpoint no longer exists");
- ``zoo build`` writes its jobs' work folders under ``--home`` (never the system's temp folder), and the next
  build removes those a killed build left;
- a build on a local Ray instance shuts Ray down when the driver gets SIGTERM (its processes used to outlive
  the driver for ~75 s after a kill).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tuning_helpers import random_base, toy_dataset

from zoo_tupate.answer.verify import source_adapter
from zoo_tupate.ranking.result import Suggestion
from zoo_tupate.store.index import Index

pytestmark = pytest.mark.reliability

BASE_ID = "bert-base-uncased"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _row(name: str) -> Suggestion:
    return Suggestion(rank=1, name=name, score=0.5, method="lora", space="", repr="delta", source="user",
                      methods=["lora"], metadata={})


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose temp and cache folders are the test's own (to see what a command writes there)."""
    tmp = tmp_path / "system-tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO_ROOT / "tests"), "HF_HUB_OFFLINE": "1"}


def test_verify_finds_the_adapter_of_tune_and_zoo_build_entries(tmp_path: Path) -> None:
    data = toy_dataset(tmp_path / "data" / "rte", n_train=32, n_val=8, pair=True)
    home = tmp_path / "home"
    env = _isolated_env(tmp_path)
    base = random_base()

    def run(*args: str) -> str:  # real processes: a build in this process would leave its loaded models behind
        proc = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", str(home), *args], env=env,
                              capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    # tune -> index add
    run("tune", "--dataset", str(data), "--base-model", str(base), "--base-model-id", BASE_ID, "--method", "lora",
        "--epochs", "1", "--early-epochs", "1", "--output", str(tmp_path / "tuned"), "--json")
    early = tmp_path / "tuned" / "lora" / "early"
    run("index", "add", str(early), "--name", "mine/rte")
    index = Index(home)
    assert {e.source for e in index.get("mine/rte")} == {str(early)}
    folder, _sha, reason = source_adapter(index, _row("mine/rte"), BASE_ID)
    assert folder == early and not reason, reason
    # zoo build
    out = run("zoo", "build", "rte", "--base-model", str(base), "--base-model-id", BASE_ID, "--data-dir",
              str(tmp_path / "data"), "--methods", "lora", "--json")
    entry = json.loads(out)["items"][0]["entry"]
    built = Index(home).get(entry)
    work = home / "builds" / BASE_ID
    assert {e.source for e in built} == {str(work / "runs" / "glue-rte" / "lora" / "early")}
    folder, _sha, reason = source_adapter(Index(home), _row(entry), BASE_ID)
    assert folder == work / "runs" / "glue-rte" / "lora" / "early" and not reason, reason
    # the jobs' work folders were under --home, and so was torch's compiler cache
    assert not list((tmp_path / "system-tmp").iterdir())


def test_a_killed_build_leaves_its_work_folders_under_home_and_the_next_build_removes_them(tmp_path: Path) -> None:
    for task in ("rte", "mrpc"):
        toy_dataset(tmp_path / "data" / task, n_train=200, n_val=8, pair=True)
    home = tmp_path / "home"
    args = ["--home", str(home), "zoo", "build", "rte", "mrpc", "--base-model", str(random_base()),
            "--base-model-id", BASE_ID, "--data-dir", str(tmp_path / "data"), "--methods", "lora"]
    env = _isolated_env(tmp_path)
    scratch = home / "builds" / BASE_ID / "tmp"
    proc = subprocess.Popen([sys.executable, "-m", "zoo_tupate", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if scratch.is_dir() and any(scratch.iterdir()):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    left = list(scratch.iterdir())
    assert left and all(p.name.startswith("job-") for p in left), left  # under --home, named by its process
    assert not list((tmp_path / "system-tmp").iterdir())
    done = subprocess.run([sys.executable, "-m", "zoo_tupate", *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=600, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [p for p in left if p.exists()]  # the killed build's folders are gone
    assert not list(scratch.iterdir())  # and the new build's own were removed when its jobs ended
    assert not list((tmp_path / "system-tmp").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_a_killed_driver_leaves_no_ray_process_behind(tmp_path: Path, sig: int) -> None:
    """Issue 23: after SIGKILL of a build's driver, Ray's agents outlived it by ~75 s (measured here: 62-87 s).
    Now a watchdog stops them; SIGTERM and SIGHUP shut Ray down in the driver."""
    pytest.importorskip("ray")
    script = tmp_path / "driver.py"
    ready = tmp_path / "ready"
    script.write_text(f"""
import sys, time
sys.path.insert(0, {str(REPO_ROOT)!r})
from zoo_tupate.zoobuild.executors.base import Job, Resources
from zoo_tupate.zoobuild.executors.ray import RayExecutor

class Waiting(RayExecutor):
    def _run(self, ray, jobs, on_outcome, log):
        ray.get(ray.remote(lambda: 1).remote())  # a worker is up too
        open({str(ready)!r}, "w").write("up")
        time.sleep(600)

Waiting(num_cpus=1).run([Job(time.sleep, (600,), label="sleep", resources=Resources(cpus=1.0))])
""")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ready.exists(), "Ray did not start"
        time.sleep(1)
        ray_pids = _descendants(proc.pid)
        assert len(ray_pids) >= 3, ray_pids  # raylet, GCS, agents, the worker (the watchdog is not one)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = time.monotonic()
    alive = ray_pids
    while alive and time.monotonic() < killed + 15:
        alive = [p for p in ray_pids if _alive(p)]
        time.sleep(0.2)
    print(f"\n[h23] {signal.Signals(sig).name} of a Ray build driver: {len(ray_pids)} Ray processes gone after "
          f"{time.monotonic() - killed:.1f} s")
    assert not alive, f"Ray processes still running after {signal.Signals(sig).name} of the driver: {alive}"


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(text[text.rfind(")") + 2:].split()[1])
    out, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in out:
                out.append(child)
                frontier.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
