"""Several processes adding to one index at once, while another process reads it in a loop.

Nothing is lost, nothing is duplicated, and the reader never fails: every ``entries()`` + ``vectors()``
it does sees a consistent index (unique names per space, readable finite vectors, never fewer entries).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rel_helpers import REPO_ROOT
from test_crash import WORKER, make_pool, verify

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("ZOO_TUPATE_REL_SEED", "0"))


def run_concurrent(tmp_path: Path, writers: int, adds_each: int) -> dict:
    pool = make_pool(tmp_path / "pool", writers * adds_each, SEED + 3)
    home = tmp_path / "home"
    home.mkdir()
    batches = [pool.paths[i::writers] for i in range(writers)]
    reader = subprocess.Popen([sys.executable, str(WORKER), "read", str(home), "600"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert reader.stdout.readline().strip() == "ready"
    procs = [subprocess.Popen([sys.executable, str(WORKER), "add", str(home), *map(str, batch)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
             for batch in batches]
    outs = [p.communicate(timeout=900) for p in procs]
    (home / "stop").touch()
    summary = json.loads(reader.communicate(timeout=120)[0].strip().splitlines()[-1])
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    committed = {line.split(" ", 1)[1] for out, _ in outs for line in out.splitlines() if line.startswith("committed")}
    names = {p.name for p in pool.paths}
    assert committed == names
    problems = verify(home, names, names, pool, "after concurrent adds")
    from zoo_tupate import Index

    summary.update(entries=len(Index(home).entries()), expected=len(names), problems=problems)
    print(f"\n[concurrency] {writers}×{adds_each} adds, reader: {summary}")
    return summary


def check(summary: dict) -> None:
    assert not summary["problems"], summary["problems"]
    assert summary["entries"] == summary["expected"]  # nothing duplicated, nothing lost
    assert summary["errors"] == 0, summary["first_error"]
    assert summary["nonempty_reads"] >= 20 and summary["suggests"] >= 2  # the reader really read during the writes


def test_two_writers_and_a_reader(tmp_path: Path) -> None:
    check(run_concurrent(tmp_path, 2, 15))


@pytest.mark.slow
def test_two_writers_100_adds_each_and_a_reader(tmp_path: Path) -> None:
    check(run_concurrent(tmp_path, 2, 100))


@pytest.mark.slow
def test_three_writers_and_a_reader(tmp_path: Path) -> None:
    check(run_concurrent(tmp_path, 3, 40))

