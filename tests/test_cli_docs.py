"""docs/cli.md is the CLI's own help, current: rewrite it with ``python scripts/cli_docs.py --write``."""

from __future__ import annotations

from scripts_helper import ROOT, load_script


def test_the_cli_reference_is_current() -> None:
    module = load_script("cli_docs")
    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == module.render(), "docs/cli.md is out of date: run python scripts/cli_docs.py --write"
    for command in ("suggest", "zoo build", "index add", "tune", "eval", "pull"):
        assert f"## `zoo-tupate {command}`" in written
    assert "--text-columns" in written and "--by-space" in written and "--max-train" in written
