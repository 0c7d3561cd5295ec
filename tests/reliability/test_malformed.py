"""Malformed inputs through ``info``, ``embed``, ``index add`` and ``suggest --target``.

Every generated case (see ``malformed_cases.py``; seed from ``ZOO_TUPATE_REL_SEED``, default 0) must give a
non-zero exit, exactly one ``error:`` line naming the file, no traceback, and an index whose files are
byte-identical; degenerate adapters are flagged by ``info``/``embed`` and refused by ``index add``.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import malformed_cases as mc
import numpy as np
import pytest
from rel_helpers import cli_inprocess, cli_subprocess, four_commands, index_snapshot

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("ZOO_TUPATE_REL_SEED", "0"))
COMMAND_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[mc.Case]]:
    root = tmp_path_factory.mktemp("malformed")
    return root, mc.generate(root / "cases", seed=SEED)


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mc.write_ckpt(tmp_path_factory.mktemp("good") / "good",
                         mc.st_bytes(mc.lora_tensors(np.random.default_rng(99))))


@pytest.fixture
def zoo(tmp_path: Path, good_ckpt: Path) -> Path:
    """A home whose index already holds one entry in the cases' spaces (so suggest has something to rank)."""
    home = tmp_path / "home"
    out = cli_inprocess(["--home", str(home), "index", "add", str(good_ckpt), "--repr", "both", "--name", "seed"])
    assert out.code == 0, out.stderr
    return home


def _with_timeout(args: list[str]):
    def alarm(*_):
        raise TimeoutError(f"command did not finish in {COMMAND_TIMEOUT_S} s: {args}")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(COMMAND_TIMEOUT_S)
    try:
        return cli_inprocess(args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_case(case: mc.Case, home: Path, run=_with_timeout) -> list[str]:
    """Run the four commands on ``case``; returns the contract violations (empty: all good)."""
    problems = []
    for command, args in four_commands(home, case.path).items():
        before = index_snapshot(home)
        out = run(args)
        refuse = case.expect == "fail" or (case.expect == "degenerate" and command in ("index add", "suggest"))
        names = str(case.path) if case.expect != "clean" else None
        found = out.problems(must_fail=refuse, names=names)
        after = index_snapshot(home)
        if after != before and not (command == "index add" and out.code == 0):
            found.append("index files changed")
        if case.expect == "degenerate" and command in ("info", "embed"):
            if out.code != 0 or json.loads(out.stdout or "{}").get("degenerate") is not True:
                found.append(f"not flagged degenerate (exit {out.code}): {out.stderr[-300:]!r}")
        problems += [f"{case} | {command}: {p}" for p in found]
    return problems


def test_generator_is_reproducible_and_large_enough(tmp_path: Path) -> None:
    a = mc.generate(tmp_path / "a", seed=SEED, marker=tmp_path / "m")
    b = mc.generate(tmp_path / "b", seed=SEED, marker=tmp_path / "m")

    def digest(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and not p.is_symlink()}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert [c.name for c in a] == [c.name for c in b]
    refused = [c for c in a if c.expect in ("fail", "degenerate")]
    assert len(refused) >= 50, len(refused)
    assert len({c.kind for c in a}) >= 9


def test_control_good_checkpoint_passes_every_command(zoo: Path, good_ckpt: Path, tmp_path: Path) -> None:
    """The harness can tell success from failure: an intact checkpoint built the same way passes all four."""
    copy = mc.write_ckpt(tmp_path / "copy", mc.st_bytes(mc.lora_tensors(np.random.default_rng(SEED + 1))))
    for command, args in four_commands(zoo, copy).items():
        out = _with_timeout(args)
        assert out.code == 0 and not out.crashed, (command, out.stderr)


def test_every_malformed_input_is_refused_cleanly(generated, zoo: Path) -> None:
    root, cases = generated
    problems = [p for case in cases for p in check_case(case, zoo)]
    kinds: dict[str, int] = {}
    for case in cases:
        kinds[case.kind] = kinds.get(case.kind, 0) + 1
    expects = {e: sum(c.expect == e for c in cases) for e in ("fail", "degenerate", "clean")}
    print(f"\n[malformed] seed {SEED}: {len(cases)} cases {expects}, {4 * len(cases)} command runs, "
          f"{len(problems)} violations; by kind {kinds}")
    assert not problems, f"{len(problems)} violations:\n" + "\n".join(problems)
    assert not (root / "cases" / mc.MARKER_NAME).exists()


def test_pickle_payload_never_runs(tmp_path: Path, zoo: Path) -> None:
    marker = tmp_path / "ran"
    payload = mc.evil_pickle(marker)
    # control: the payload is live; plain unpickling (in a throwaway process) does run it
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=payload, check=True, timeout=60)
    assert marker.read_text() == "pwned"
    marker.unlink()
    for name, blob in {"legacy": payload, "zip": mc.evil_torch_zip(marker)}.items():
        folder = mc.write_ckpt(tmp_path / name, blob, mc.CONFIG, "adapter_model.bin")
        for command, args in four_commands(zoo, folder).items():
            out = _with_timeout(args)
            assert out.code != 0 and not out.crashed, (name, command, out.stderr)
            assert "weights_only" in out.stderr, out.stderr
            assert not marker.exists(), f"the pickle payload ran during {command}"
    assert pickle.loads(pickle.dumps(1)) == 1  # the test process itself is unharmed


def _subprocess_sample(cases: list[mc.Case], home: Path, n: int) -> list[str]:
    rng = np.random.default_rng(SEED)
    wanted = [c for c in cases if c.expect != "clean"]
    picked = [wanted[i] for i in sorted(rng.choice(len(wanted), size=min(n, len(wanted)), replace=False))]
    return [p for case in picked for p in check_case(case, home, run=lambda a: cli_subprocess(a, timeout=120))]


def test_real_cli_processes_sample(generated, zoo: Path) -> None:
    """The same contract through ``python -m zoo_tupate`` (real stderr, real exit codes): a small sample."""
    assert not _subprocess_sample(generated[1], zoo, 2)


@pytest.mark.slow
def test_real_cli_processes_larger_sample(generated, zoo: Path) -> None:
    assert not _subprocess_sample(generated[1], zoo, 12)


_MEASURED = """
import atexit, os, re, sys
def _peak():
    with open("/proc/self/status") as status, open(os.environ["ZOO_TUPATE_TEST_HWM"], "w") as out:
        out.write(re.search(r"VmHWM:\\s*(\\d+)", status.read()).group(1))
atexit.register(_peak)
from zoo_tupate.cli import main
sys.argv[0] = "zoo-tupate"
main()
"""


def _run_measured(args: list[str], env: dict[str, str]) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in MiB) of the CLI with ARGS. The peak is the child's own VmHWM, read at
    exit: ``ru_maxrss`` of a forked child also counts the parent's memory at fork (pytest's, after big tests)."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as hwm:
        proc = subprocess.run([sys.executable, "-c", _MEASURED, *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env={**os.environ, **env, "ZOO_TUPATE_TEST_HWM": hwm.name},
                              text=True, timeout=300)
        peak_kib = int(hwm.read() or 0)
    return proc.returncode, proc.stderr, peak_kib // 1024


def _check_huge(folder: Path, home: Path, env: dict[str, str], commands: tuple[str, ...]) -> None:
    before = index_snapshot(home)
    for command, args in four_commands(home, folder).items():
        if command not in commands:
            continue
        code, stderr, rss = _run_measured(args, env)
        assert code != 0 and stderr.count("\n") == 1 and "limit" in stderr and str(folder) in stderr, stderr
        assert 0 < rss < 600, f"{command}: peak RSS {rss} MiB"
        assert index_snapshot(home) == before


def test_sparse_file_is_refused_before_its_tensors_are_read(tmp_path: Path, zoo: Path) -> None:
    """A 300 MiB sparse file with a valid header: refused by size, memory stays far below the claim."""
    folder = mc.sparse_case(tmp_path, 300 * 2**20)
    _check_huge(folder, zoo, {"ZOO_TUPATE_MAX_LOAD_BYTES": str(64 * 2**20)}, ("info", "index add"))


@pytest.mark.slow
def test_sparse_5gib_file_with_default_limit(tmp_path: Path, zoo: Path) -> None:
    folder = mc.sparse_case(tmp_path, 5 * 2**30)
    _check_huge(folder, zoo, {}, ("info", "embed", "index add", "suggest"))


def test_force_indexes_an_all_zero_adapter_but_never_non_finite_values(tmp_path: Path, zoo: Path) -> None:
    rng = np.random.default_rng(SEED)
    nan = mc.lora_tensors(rng)
    next(iter(nan.values()))[0, 0] = np.nan
    zero = {k: np.zeros_like(v) for k, v in mc.lora_tensors(rng).items()}
    before = index_snapshot(zoo)
    folder = mc.write_ckpt(tmp_path / "nan", mc.st_bytes(nan))
    out = _with_timeout(["--home", str(zoo), "index", "add", str(folder), "--force"])
    assert not out.problems(must_fail=True, names=str(folder)) and "non-finite" in out.stderr
    assert index_snapshot(zoo) == before
    out = _with_timeout(["--home", str(zoo), "index", "add", str(mc.write_ckpt(tmp_path / "zero", mc.st_bytes(zero))),
                         "--force"])
    assert out.code == 0, out.stderr
    from zoo_tupate import Index

    assert "zero" in Index(zoo).names()
