"""docs/cli.md is the CLI's own help, current: rewrite it with ``python scripts/cli_docs.py --write``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "scripts" / "cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == module.render(), "docs/cli.md is out of date: run python scripts/cli_docs.py --write"
    for command in ("suggest", "zoo build", "index add", "tune", "eval", "pull"):
        assert f"## `zoo-tupate {command}`" in written
    assert "--text-columns" in written and "--by-space" in written and "--max-train" in written
