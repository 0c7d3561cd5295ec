"""Network faults during ``pull`` (the local Hub-API server of tests/hub_server.py): 500s, slow answers,
connections cut mid-body, the server dying mid-download, bytes that do not match their hash, and the
``pull`` process itself killed with SIGKILL.

After every faulty pull: the index loads, holds only repos whose pull succeeded, and every vector equals
the embedding of the adapter as published (nothing half-downloaded is indexed). A re-run without faults
completes. Trials are drawn from a seeded generator (``ZOO_TUPATE_REL_SEED``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_hub import publish_adapter
from rel_helpers import REPO_ROOT

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("ZOO_TUPATE_REL_SEED", "0"))
TASKS = ("sst2", "imdb", "mnli", "qnli")
REPOS = [f"org/{t}" for t in TASKS]
WEIGHTS = r"/resolve/[^/]+/adapter_model\.safetensors$"
CONFIG = r"/resolve/[^/]+/adapter_config\.json$"


@pytest.fixture
def published(hub_server, tiny_zoo):
    for task in TASKS:
        publish_adapter(hub_server, f"org/{task}", tiny_zoo[task])
    from zoo_tupate import embed

    expected = {f"org/{t}": embed(tiny_zoo[t]).vector for t in TASKS}
    return hub_server, expected


def check_index(home: Path, expected: dict[str, np.ndarray], allowed: set[str]) -> list[str]:
    """Problems with the index at ``home``: unreadable, unexpected names, or a vector that is not the adapter's."""
    from zoo_tupate import Index

    try:
        index = Index(home)
        entries = index.entries()
        problems = []
        names = {e.name for e in entries}
        if not names <= allowed:
            problems.append(f"indexed {sorted(names - allowed)} although their pull failed")
        raw = [e for e in entries if e.repr == "raw"]
        for entry, row in zip(raw, index.vectors(raw), strict=True):
            if not np.allclose(row, expected[entry.name], rtol=1e-6, atol=0):
                problems.append(f"{entry.name}: indexed vector differs from the published adapter's")
        return problems
    except Exception as exc:  # noqa: BLE001
        return [f"index unreadable: {type(exc).__name__}: {exc}"]


#: Fault kinds. A persistent 5xx costs ~23 s of huggingface_hub's retry backoff: the fast run skips those and
#: the long run draws them rarely (weight 0.05 against 1 for the others).
ALL_KINDS = ["500", "503-twice", "slow", "truncate", "die", "corrupt", "config-500", "info-500"]
FAST_KINDS = ["503-twice", "slow", "truncate", "corrupt"]  # "die" (≈ 25 s of retries) has its own test below
PERSISTENT_5XX = {"500", "config-500", "info-500"}


def random_fault(server, rng: np.random.Generator, kinds: list[str]) -> str:
    """Install one random fault on the server; returns its description."""
    weights = np.array([0.05 if k in PERSISTENT_5XX else 1.0 for k in kinds])
    kind = str(rng.choice(kinds, p=weights / weights.sum()))
    target = str(rng.choice(REPOS))
    pattern = "^/" + target + WEIGHTS
    if kind == "500":
        server.fail(pattern, 500)
    elif kind == "503-twice":
        server.fail(pattern, 503, times=2)
    elif kind == "slow":
        server.slow(pattern, float(rng.uniform(0.2, 1.0)))
    elif kind == "truncate":
        server.truncate(pattern, int(rng.integers(0, 5000)))
    elif kind == "die":
        server.die_after(pattern, int(rng.integers(0, 5000)))
    elif kind == "corrupt":
        server.corrupt(pattern)
    elif kind == "config-500":
        server.fail("^/" + target + CONFIG, 500)
    else:
        server.fail(f"^/api/models/{target}$", 500)
    return f"{kind} on {target}"


def fault_campaign(published, tmp_path: Path, trials: int, kinds: list[str]) -> tuple[list[str], dict[str, int]]:
    from zoo_tupate import Index
    from zoo_tupate.hub import pull

    server, expected = published
    rng = np.random.default_rng(SEED)
    problems: list[str] = []
    outcomes = {"indexed": 0, "failed": 0, "unchanged": 0}
    for t in range(trials):
        home = tmp_path / f"zoo-{t}"
        fault = random_fault(server, rng, kinds)
        results = pull(REPOS, Index(home), jobs=int(rng.integers(1, 4)), progress=False, reprs=("raw",))
        for r in results:
            outcomes[r.outcome] += 1
            if r.outcome == "failed" and ("\n" in r.reason or not r.reason):
                problems.append(f"trial {t} ({fault}): {r.repo} failure reason is not one line: {r.reason!r}")
        ok = {r.repo for r in results if r.outcome in ("indexed", "unchanged")}
        problems += [f"trial {t} ({fault}): {p}" for p in check_index(home, expected, ok)]
        server.clear_faults()
        if not server.running:
            server.start()
        rerun = pull(REPOS, Index(home), jobs=2, progress=False, reprs=("raw",))
        if [r.outcome for r in rerun if r.outcome == "failed"]:
            problems.append(f"trial {t} ({fault}): the re-run failed: {[r.reason for r in rerun]}")
        problems += [f"trial {t} re-run: {p}" for p in check_index(home, expected, set(REPOS))]
        if {e.name for e in Index(home).entries()} != set(REPOS):
            problems.append(f"trial {t} ({fault}): the re-run did not index every repo")
    print(f"\n[network] {trials} fault trials, first-pull outcomes {outcomes}, {len(problems)} problems")
    return problems, outcomes


def test_random_faults_fast(published, tmp_path: Path) -> None:
    problems, outcomes = fault_campaign(published, tmp_path, 6, FAST_KINDS)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_random_faults_long(published, tmp_path: Path) -> None:
    problems, outcomes = fault_campaign(published, tmp_path, 30, ALL_KINDS)
    assert not problems, "\n".join(problems)
    assert outcomes["failed"] >= 10  # the faults really made pulls fail


@pytest.mark.parametrize("fault", [pytest.param("500", marks=pytest.mark.slow), "truncate", "die", "corrupt"])
def test_each_fault_kind_fails_only_its_repo_and_rerun_completes(published, tmp_path: Path, fault: str) -> None:
    from zoo_tupate import Index
    from zoo_tupate.hub import pull

    server, expected = published
    pattern = "^/org/mnli" + WEIGHTS
    {"500": lambda: server.fail(pattern, 500), "truncate": lambda: server.truncate(pattern, 100),
     "die": lambda: server.die_after(pattern, 100), "corrupt": lambda: server.corrupt(pattern)}[fault]()
    home = tmp_path / "zoo"
    results = pull(REPOS, Index(home), jobs=1, progress=False, reprs=("raw",))
    failed = {r.repo for r in results if r.outcome == "failed"}
    assert "org/mnli" in failed
    if fault != "die":  # a dead server also fails the repos after it
        assert failed == {"org/mnli"}, [r.reason for r in results]
    assert not check_index(home, expected, set(REPOS) - failed)
    server.clear_faults()
    if not server.running:
        server.start()
    rerun = pull(REPOS, Index(home), jobs=1, progress=False, reprs=("raw",))
    assert all(r.outcome in ("indexed", "unchanged") for r in rerun), [r.reason for r in rerun]
    assert not check_index(home, expected, set(REPOS))
    assert {e.name for e in Index(home).entries()} == set(REPOS)


def kill_pull_trials(published, tmp_path: Path, trials: int) -> list[str]:
    """``python -m zoo_tupate pull`` killed with SIGKILL at a random moment, then re-run in-process."""
    from zoo_tupate import Index
    from zoo_tupate.hub import pull

    server, expected = published
    rng = np.random.default_rng(SEED + 11)
    server.slow(WEIGHTS, 0.3)  # widen the download window so kills land inside it
    problems: list[str] = []
    killed_mid = 0
    for t in range(trials):
        home = tmp_path / f"zoo-kill-{t}"
        proc = subprocess.Popen([sys.executable, "-m", "zoo_tupate", "--home", str(home), "pull", *REPOS,
                                 "--jobs", "2", "--repr", "raw"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=os.environ.copy(), cwd=REPO_ROOT)
        time.sleep(float(rng.uniform(0.5, 3.0)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid += 1
        proc.wait(timeout=60)
        problems += [f"kill trial {t}: {p}" for p in check_index(home, expected, set(REPOS))]
        rerun = pull(REPOS, Index(home), jobs=2, progress=False, reprs=("raw",))
        if any(r.outcome == "failed" for r in rerun):
            problems.append(f"kill trial {t}: re-run failed: {[r.reason for r in rerun]}")
        problems += [f"kill trial {t} re-run: {p}" for p in check_index(home, expected, set(REPOS))]
        if {e.name for e in Index(home).entries()} != set(REPOS):
            problems.append(f"kill trial {t}: re-run did not index every repo")
    print(f"\n[pull-kill] {trials} trials, {killed_mid} killed before finishing, {len(problems)} problems")
    return problems


def test_kill_9_during_pull_then_rerun(published, tmp_path: Path) -> None:
    assert not kill_pull_trials(published, tmp_path, 2)


@pytest.mark.slow
def test_kill_9_during_pull_then_rerun_long(published, tmp_path: Path) -> None:
    assert not kill_pull_trials(published, tmp_path, 12)
