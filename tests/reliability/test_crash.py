"""kill -9 during ``index add`` and ``index rebuild``: the index always loads, without a rebuild, and holds
exactly what was committed before the kill (plus, at most, the add in flight), with the right vectors.

Each trial starts a worker process (``worker.py``), waits for it to be ready, kills it with SIGKILL after a
random delay (seeded, over the operation's running duration estimate) and checks the index in this process.
Fast version: 20 trials; ``slow``: at least 120, and on until 100 kills landed mid-operation (at most 220).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import malformed_cases as mc
import numpy as np
import pytest
from rel_helpers import REPO_ROOT

pytestmark = pytest.mark.reliability

WORKER = Path(__file__).with_name("worker.py")
SEED = int(os.environ.get("ZOO_TUPATE_REL_SEED", "0"))
BATCH = 4


@dataclass
class Pool:
    """Distinct small LoRA checkpoints and their expected vectors, by (name, repr)."""

    root: Path
    paths: list[Path] = field(default_factory=list)
    vectors: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def take(self, n: int) -> list[Path]:
        out, self.paths = self.paths[:n], self.paths[n:]
        assert len(out) == n, "checkpoint pool exhausted"
        return out


def make_pool(root: Path, n: int, seed: int) -> Pool:
    from zoo_tupate import embed

    pool = Pool(root)
    for i in range(n):
        path = mc.write_ckpt(root / f"ck{seed}-{i:04d}", mc.st_bytes(mc.lora_tensors(np.random.default_rng([seed, i]))))
        pool.paths.append(path)
        for repr_ in ("raw", "delta"):
            pool.vectors[(path.name, repr_)] = embed(path, repr=repr_).vector
    return pool


@dataclass
class Tally:
    add_s: float = 0.2  # running estimates of how long an uninterrupted add batch / rebuild takes
    rebuild_s: float = 0.1
    trials: int = 0
    killed_mid_operation: int = 0
    in_flight_landed: int = 0
    problems: list[str] = field(default_factory=list)


def start_worker(args: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT)
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def kill_after(proc: subprocess.Popen, delay: float, problems: list[str] | None = None) -> tuple[list[str], bool]:
    """SIGKILL ``proc`` after ``delay`` s; returns its stdout lines and whether the kill ended it.

    A process that ended on its own with an error is a finding: it is added to ``problems``.
    """
    time.sleep(delay)
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    # read through the same buffered pipes that start_worker's readline used: communicate() reads the raw
    # file descriptors and would lose lines that readline had already buffered (a worker that commits an
    # entry right after "ready" would otherwise look as if it added something it never reported)
    proc.wait(timeout=60)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if problems is not None and proc.returncode not in (0, -signal.SIGKILL):
        problems.append(f"worker exited {proc.returncode} on its own: {(err or '')[-1500:]}")
    return (out or "").splitlines(), alive and proc.returncode == -signal.SIGKILL


def verify(home: Path, lower: set[str], upper: set[str], pool: Pool, label: str) -> list[str]:
    """The index loads (no rebuild), lower ⊆ names ⊆ upper, no duplicates, vectors equal the embeddings."""
    from zoo_tupate import Index

    try:
        index = Index(home)
        entries = index.entries()
        names = {e.name for e in entries}
        keys = [(e.name, e.space) for e in entries]
        problems = []
        if len(keys) != len(set(keys)):
            problems.append("duplicate entries")
        if not lower <= names:
            problems.append(f"lost committed entries {sorted(lower - names)}")
        if not names <= upper:
            problems.append(f"entries that were never added {sorted(names - upper)}")
        by_space: dict[str, list] = {}
        for entry in entries:
            by_space.setdefault(entry.space, []).append(entry)
        for group in by_space.values():
            for entry, row in zip(group, index.vectors(group), strict=True):
                if not np.array_equal(row, pool.vectors[(entry.name, entry.repr)]):
                    problems.append(f"{entry.repr} vector of {entry.name} differs from its embedding")
    except Exception as exc:  # noqa: BLE001 - any failure to read is a finding
        problems = [f"index unreadable: {type(exc).__name__}: {exc}"]
    return [f"{label}: {p}" for p in problems]


def learn(tally: Tally, lines: list[str], attr: str) -> None:
    """Update the duration estimate from a worker that finished (``done SECONDS``)."""
    done = [float(line.split()[1]) for line in lines if line.startswith("done ")]
    if done:
        setattr(tally, attr, 0.7 * getattr(tally, attr) + 0.3 * done[0])


def add_trial(home: Path, pool: Pool, rng: np.random.Generator, tally: Tally) -> None:
    from zoo_tupate import Index

    before = Index(home).names()
    batch = pool.take(BATCH)
    proc = start_worker(["add", str(home), *map(str, batch)])
    lines, killed = kill_after(proc, float(rng.uniform(0, 1.1 * tally.add_s)), tally.problems)
    learn(tally, lines, "add_s")
    committed = [line.split(" ", 1)[1] for line in lines if line.startswith("committed ")]
    upper = before | set(committed)
    if killed and len(committed) < len(batch):
        upper.add(batch[len(committed)].name)
    tally.trials += 1
    tally.killed_mid_operation += killed and not any(line.startswith("done ") for line in lines)
    tally.problems += verify(home, before | set(committed), upper, pool, f"add trial {tally.trials}")
    if killed and len(committed) < len(batch) and batch[len(committed)].name in Index(home).names():
        tally.in_flight_landed += 1


def rebuild_trial(home: Path, pool: Pool, rng: np.random.Generator, tally: Tally) -> None:
    from zoo_tupate import Index

    index = Index(home)
    for path in pool.take(2):  # fresh small shards so the rebuild has work to do
        index.add(path, reprs=("raw",))  # the pool's vectors are raw embeddings
    before = Index(home).names()
    proc = start_worker(["rebuild", str(home)])
    lines, killed = kill_after(proc, float(rng.uniform(0, 1.1 * tally.rebuild_s)), tally.problems)
    learn(tally, lines, "rebuild_s")
    tally.trials += 1
    tally.killed_mid_operation += killed and not any(line.startswith("done ") for line in lines)
    tally.problems += verify(home, before, before, pool, f"rebuild trial {tally.trials}")


def calibrate(home: Path, pool: Pool) -> tuple[float, float]:
    """Seconds one uninterrupted add batch and one rebuild take after the worker is ready."""
    times = []
    for mode, args in (("add", list(map(str, pool.take(BATCH)))), ("rebuild", [])):
        proc = start_worker([mode, str(home), *args])
        started = time.monotonic()
        proc.communicate(timeout=120)
        assert proc.returncode == 0
        times.append(time.monotonic() - started)
    return times[0], times[1]


def run_trials(tmp_path: Path, trials: int, min_kills: int = 0, max_trials: int | None = None) -> Tally:
    """At least ``trials`` trials (3 adds : 1 rebuild), more until ``min_kills`` landed mid-operation."""
    max_trials = max(trials, max_trials or trials)
    rng = np.random.default_rng(SEED)
    pool = make_pool(tmp_path / "pool", max_trials * (BATCH + 2) + 10, SEED)
    home = tmp_path / "home"
    add_s, rebuild_s = calibrate(home, pool)
    tally = Tally(add_s=add_s, rebuild_s=rebuild_s)
    i = 0
    while i < trials or (tally.killed_mid_operation < min_kills and i < max_trials):
        if i % 4 == 3:
            rebuild_trial(home, pool, rng, tally)
        else:
            add_trial(home, pool, rng, tally)
        i += 1
    print(f"\n[crash] {tally.trials} trials, {tally.killed_mid_operation} killed mid-operation, "
          f"in-flight add landed {tally.in_flight_landed} times, {len(tally.problems)} problems "
          f"(add batch ≈ {tally.add_s:.2f} s, rebuild ≈ {tally.rebuild_s:.2f} s)")
    return tally


def test_kill_9_during_add_and_rebuild_fast(tmp_path: Path) -> None:
    tally = run_trials(tmp_path, 20)
    assert not tally.problems, "\n".join(tally.problems)
    assert tally.killed_mid_operation >= 5  # the kills really landed inside operations


@pytest.mark.slow
def test_kill_9_during_add_and_rebuild_long(tmp_path: Path) -> None:
    tally = run_trials(tmp_path, 120, min_kills=100, max_trials=220)
    assert not tally.problems, "\n".join(tally.problems)
    assert tally.killed_mid_operation >= 100


def cli_kill_trials(tmp_path: Path, trials: int) -> list[str]:
    """``python -m zoo_tupate index add`` (the real CLI) killed at random points."""
    from zoo_tupate import Index

    rng = np.random.default_rng(SEED + 7)
    pool = make_pool(tmp_path / "pool", trials * 6, SEED + 7)
    home = tmp_path / "home"
    problems = []
    for t in range(trials):
        batch = pool.take(6)
        before = Index(home).names()
        proc = subprocess.Popen([sys.executable, "-m", "zoo_tupate", "--home", str(home), "index", "add",
                                 *map(str, batch)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
        kill_after(proc, float(rng.uniform(0.3, 2.5)))
        problems += verify(home, before, before | {p.name for p in batch}, pool, f"cli trial {t + 1}")
    return problems


def test_kill_9_real_cli_index_add(tmp_path: Path) -> None:
    assert not cli_kill_trials(tmp_path, 3)


@pytest.mark.slow
def test_kill_9_real_cli_index_add_long(tmp_path: Path) -> None:
    assert not cli_kill_trials(tmp_path, 15)
