"""Issue 12's hostile files beyond the generated cases: the random sweep, the 200k-tensor header, pickle
bombs against the clock, the last-resort handler, control characters, ``embed --output`` into the index,
OS errors that name their file and no orphan shard after a failed add.

The one-per-class cases themselves are in ``hostile_cases.py`` and run through all four commands with the
rest of ``malformed_cases`` (``test_malformed.py``).
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import hostile_cases as hc
import malformed_cases as mc
import numpy as np
import pytest
import sweep_cases
from rel_helpers import cli_inprocess, cli_subprocess, four_commands, index_snapshot
from test_malformed import SEED, check_case

pytestmark = pytest.mark.reliability

SWEEP_CASES = int(os.environ.get("ZOO_TUPATE_SWEEP_CASES", "600"))


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    """A home whose index holds one good LoRA entry (raw and delta)."""
    home = tmp_path / "home"
    good = mc.write_ckpt(tmp_path / "seed", mc.st_bytes(mc.lora_tensors(np.random.default_rng(99))))
    assert cli_inprocess(["--home", str(home), "index", "add", str(good), "--name", "seed"]).code == 0
    return home


def _sweep(root: Path, home: Path, count: int, seed: int) -> None:
    cases = sweep_cases.generate(root, count, seed)
    problems, refused = [], 0
    for case in cases:
        problems += check_case(case, home)
        refused += cli_inprocess(["--home", str(home), "embed", str(case.path), "--json"]).code != 0
    print(f"\n[sweep] seed {seed}: {len(cases)} cases × 4 commands, {refused} refused by embed, "
          f"{len(cases) - refused} embedded, {len(problems)} violations")
    assert len(cases) >= 500 or count < 500
    assert refused > len(cases) // 2  # the damage is real: most cases must be refused
    assert not problems, f"{len(problems)} violations:\n" + "\n".join(problems[:40])


def test_random_sweep(tmp_path: Path, zoo: Path) -> None:
    """≥ 500 random header corruptions, truncations and key names: no traceback, one line, index unchanged."""
    _sweep(tmp_path / "sweep", zoo, SWEEP_CASES, SEED)


@pytest.mark.slow
def test_random_sweep_long(tmp_path: Path, zoo: Path) -> None:
    for seed in range(1, 6):
        _sweep(tmp_path / f"sweep{seed}", zoo, 1000, seed)


def test_200k_zero_size_tensors(tmp_path: Path, zoo: Path) -> None:
    folder = mc.write_ckpt(tmp_path / "zeros", mc.raw_st(hc.zero_size_header(mc.PREFIX, 200_000)))
    before = index_snapshot(zoo)
    out = cli_inprocess(["--home", str(zoo), "index", "add", str(folder)])
    assert not out.problems(must_fail=True, names=str(folder)) and "rank 0" in out.stderr, out.stderr
    assert index_snapshot(zoo) == before


@pytest.mark.parametrize("build", [hc.list_bomb, hc.zip_bomb, hc.legacy_bomb])
def test_pickle_bombs_fail_fast(tmp_path: Path, zoo: Path, build) -> None:
    """50 MB pickle bombs (bare, in a torch zip, after a legacy torch header) are refused in seconds."""
    folder = mc.write_ckpt(tmp_path / "bomb", build(50 * 2**20), mc.CONFIG, "adapter_model.bin")
    started = time.perf_counter()
    out = cli_inprocess(["--home", str(zoo), "info", str(folder)])
    elapsed = time.perf_counter() - started
    assert not out.problems(must_fail=True, names=str(folder)), out.stderr
    assert elapsed < 10, f"{elapsed:.1f} s"  # ≈ 0.01 s (bare, zip) and ≈ 2 s (legacy: a 4 MiB scan)


def test_last_resort_handler(tmp_path: Path, zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception: one line naming the input; the traceback only with --debug or the env var."""
    import zoo_tupate.cli.info as info

    def boom(*_args, **_kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(info, "open_checkpoint", boom)
    target = tmp_path / "some-checkpoint"
    out = cli_inprocess(["--home", str(zoo), "info", str(target)])
    assert not out.problems(must_fail=True, names=str(target), unexpected_ok=True), out.stderr
    assert "KeyError" in out.stderr and "--debug" in out.stderr
    for args, env in ((["--debug"], {}), ([], {"ZOO_TUPATE_DEBUG": "1"})):
        monkeypatch.setenv("ZOO_TUPATE_DEBUG", env.get("ZOO_TUPATE_DEBUG", "0"))
        out = cli_inprocess([*args, "--home", str(zoo), "info", str(target)])
        assert out.code == 1 and "Traceback" in out.stderr and "boom" in out.stderr, out.stderr
        assert out.stderr.splitlines()[-1].startswith(f"error: {target}: unexpected KeyError")


def test_control_characters_are_escaped_and_normalised(tmp_path: Path, zoo: Path) -> None:
    forged = "bert\nerror: \x1b[31mforged\r\u202e[/x]"
    folder = mc.write_ckpt(tmp_path / "ctrl", mc.st_bytes(mc.lora_tensors(np.random.default_rng(5))),
                           {**mc.CONFIG, "base_model_name_or_path": forged})
    for command, args in four_commands(zoo, folder).items():
        out = cli_inprocess(args)
        assert not out.crashed, (command, out.crashed)
        text = out.stdout + out.stderr
        assert not any(c in text for c in "\x1b\r\u202e"), (command, text)
        assert sum(line.startswith("error:") for line in text.splitlines()) <= 1, (command, text)
    for args in (["info", str(folder)], ["embed", str(folder)], ["index", "ls"]):
        out = cli_inprocess(["--home", str(zoo), *args])
        assert out.code == 0 and "\x1b" not in out.stderr and "\nerror:" not in out.stderr, out.stderr
    from zoo_tupate import Index

    spaces = [e.space for e in Index(zoo).entries()]
    assert any("bert\\nerror: \\x1b[31mforged" in s for s in spaces), spaces
    assert not any(c in s for s in spaces for c in "\n\x1b\r\u202e")


def test_embed_output_inside_the_index_is_refused(tmp_path: Path, zoo: Path) -> None:
    folder = mc.write_ckpt(tmp_path / "ok", mc.st_bytes(mc.lora_tensors(np.random.default_rng(6))))
    before = index_snapshot(zoo)
    link = tmp_path / "link.npy"
    link.symlink_to(zoo / "index" / "manifest.json")
    for output in (zoo / "index" / "manifest.json", zoo / "index" / "shards" / "x.npy", link):
        out = cli_inprocess(["--home", str(zoo), "embed", str(folder), "--output", str(output)])
        assert not out.problems(must_fail=True, names=str(output)) and "inside the index" in out.stderr
    assert index_snapshot(zoo) == before
    out = cli_inprocess(["--home", str(zoo), "embed", str(folder), "--output", str(tmp_path / "v.npy")])
    assert out.code == 0 and np.load(tmp_path / "v.npy").ndim == 1


def _shard_files(home: Path) -> set[Path]:
    return set((home / "index" / "shards").rglob("*"))


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path: Path, zoo: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from fsync (no file name in the exception): the error line names the file being written."""
    folder = mc.write_ckpt(tmp_path / "new", mc.st_bytes(mc.lora_tensors(np.random.default_rng(7))))

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    before, shards = index_snapshot(zoo), _shard_files(zoo)
    monkeypatch.setattr(os, "fsync", full)
    out = cli_inprocess(["--home", str(zoo), "index", "add", str(folder)])
    monkeypatch.undo()
    assert not out.problems(must_fail=True, names=str(zoo / "index")), out.stderr
    assert "No space left on device" in out.stderr
    assert index_snapshot(zoo) == before and _shard_files(zoo) == shards


def test_failed_commit_leaves_no_orphan_shard(tmp_path: Path, zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index whose journal cannot be written (unwritable index/): the shard written first is removed."""
    from zoo_tupate.store.journal import ManifestStore

    folder = mc.write_ckpt(tmp_path / "new", mc.st_bytes(mc.lora_tensors(np.random.default_rng(8))))
    journal = zoo / "index" / "journal.1.jsonl"

    def refuse(self, record) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(journal))

    before, shards = index_snapshot(zoo), _shard_files(zoo)
    monkeypatch.setattr(ManifestStore, "commit", refuse)
    out = cli_inprocess(["--home", str(zoo), "index", "add", str(folder)])
    monkeypatch.undo()
    # the line names the file and the reason (the CLI may add what to do about an unwritable home)
    assert out.stderr.strip().startswith(f"error: {journal}: Permission denied"), out.stderr
    assert not out.problems(must_fail=True, names=str(journal)), out.stderr
    assert index_snapshot(zoo) == before and _shard_files(zoo) == shards
    assert cli_inprocess(["--home", str(zoo), "index", "add", str(folder)]).code == 0  # and it works afterwards


def test_hostile_cases_as_real_processes(tmp_path: Path, zoo: Path) -> None:
    """A few of the classes through ``python -m zoo_tupate`` (real stderr and exit codes)."""
    cases = [c for c in mc.generate(tmp_path / "cases", seed=SEED) if c.kind == "hostile"]
    picked = [c for c in cases if c.name.split("-", 1)[1] in
              ("dtype-list", "deep-config", "rank-0", "layer-index-5000-digits", "alpha-10^400", "folder-symlink-loop")]
    assert len(picked) == 6
    for case in picked:
        for command in ("embed", "index add"):
            args = four_commands(zoo, case.path)[command]
            before = index_snapshot(zoo)
            out = cli_subprocess(args)
            assert not out.problems(must_fail=True, names=str(case.path)), (case.name, command, out.stderr)
            assert index_snapshot(zoo) == before
    assert json.loads(cli_subprocess(["--home", str(zoo), "index", "ls", "--json"]).stdout)
