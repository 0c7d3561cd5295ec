"""Shared helpers of the reliability suite: running the CLI, snapshotting an index, checking one-line errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Longest error line accepted (the CLI caps what a line quotes; issue 23 item 15).
MAX_ERROR_LINE = 2_500


@dataclass
class Outcome:
    """What one CLI invocation did."""

    code: int
    stdout: str
    stderr: str
    crashed: str = ""  # a non-ZooError exception that escaped (CliRunner) or a traceback (subprocess)

    def problems(self, must_fail: bool, names: str | None = None, unexpected_ok: bool = False) -> list[str]:
        """What is wrong with this outcome under the error contract (empty: fine). An error the last-resort
        handler caught (``unexpected ...``) is a problem unless ``unexpected_ok`` (a test that injects one)."""
        out = []
        if self.crashed:
            out.append(f"crashed: {self.crashed}")
        if "Traceback" in self.stderr or "Traceback" in self.stdout:
            out.append("traceback printed")
        if self.code != 0:
            lines = self.stderr.splitlines()
            if len(lines) != 1 or not lines[0].startswith("error: "):
                out.append(f"stderr is not exactly one error line: {self.stderr[-600:]!r}")
            elif ": unexpected " in lines[0] and not unexpected_ok:
                out.append(f"the last-resort handler caught it: {lines[0][:600]!r}")
            elif len(lines[0]) > MAX_ERROR_LINE:
                out.append(f"error line of {len(lines[0]):,} characters: {lines[0][:300]!r}...")
            elif names and names not in lines[0]:
                out.append(f"error line does not name {names}: {lines[0]!r}")
        elif must_fail:
            out.append("exit code 0")
        return out


def cli_inprocess(args: list[str]) -> Outcome:
    """Run the CLI in this process (click's CliRunner; stderr separate)."""
    from click.testing import CliRunner

    from zoo_tupate.cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=True)
    crashed = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crashed = f"{type(result.exception).__name__}: {result.exception}"
    return Outcome(result.exit_code, result.stdout, result.stderr, crashed)


def cli_subprocess(args: list[str], timeout: float = 120, env: dict | None = None) -> Outcome:
    """Run ``python -m zoo_tupate ARGS`` in a fresh process."""
    full_env = {**os.environ, "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", ""), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "zoo_tupate", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=REPO_ROOT)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def index_snapshot(home: Path) -> dict[str, str]:
    """sha256 of every file under ``home/index`` (the manifest, shards, tombstones)."""
    root = home / "index"
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def four_commands(home: Path, path: Path) -> dict[str, list[str]]:
    """The four commands every malformed input goes through."""
    h = ["--home", str(home)]
    return {
        "info": [*h, "info", str(path), "--json"],
        "embed": [*h, "embed", str(path), "--json"],
        "index add": [*h, "index", "add", str(path), "--repr", "both"],
        "suggest": [*h, "suggest", "--target", str(path), "--target-kind", "checkpoint", "--repr", "raw",
                    "--repr", "delta", "--json"],
    }
