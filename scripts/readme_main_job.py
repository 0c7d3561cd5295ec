"""The README's main-job output, made by running the command (so the first screen cannot drift from the code).

    python scripts/readme_main_job.py            # check: exit 1 when the README's block is out of date
    python scripts/readme_main_job.py --write    # rewrite the block in README.md

It runs ``zoo-tupate suggest --target glue/rte`` offline on a fresh ``--home`` at 80 columns, the width the
CLI lays its tables out for in a pipe. tests/test_readme_main_job.py runs the check.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
COMMAND = ["suggest", "--target", "glue/rte"]
PROMPT = "$ zoo-tupate suggest --target glue/rte      # the built-in starter zoo, offline, about a second"


def output() -> str:
    """What the main job prints (stderr and stdout, as a terminal shows them), trailing spaces removed."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
        done = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", home, *COMMAND], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise SystemExit(f"the main job failed (exit {done.returncode}):\n{done.stderr}")
    text = done.stderr + done.stdout
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def block() -> str:
    """The README's console block: the prompt line, then the output."""
    return f"```console\n{PROMPT}\n{output()}\n```"


def readme_with_block(text: str, fresh: str) -> str:
    """``text`` with its main-job console block (the one starting with :data:`PROMPT`) replaced by ``fresh``."""
    start = text.index(f"```console\n{PROMPT}\n")
    end = text.index("\n```", start + 10) + len("\n```")
    return text[:start] + fresh + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the block in README.md")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    fresh = readme_with_block(text, block())
    if fresh == text:
        print("README.md: the main job's output is current")
        return 0
    if args.write:
        README.write_text(fresh, encoding="utf-8")
        print("README.md: wrote the main job's output")
        return 0
    print("README.md: the main job's output is out of date (python scripts/readme_main_job.py --write)")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
