"""The README's first screen shows what the main job really prints: ``python scripts/readme_main_job.py --write``
rewrites it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_shows_the_main_jobs_real_output() -> None:
    spec = importlib.util.spec_from_file_location("readme_main_job", ROOT / "scripts" / "readme_main_job.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.readme_with_block(text, module.block()) == text, \
        "README.md's main-job output is out of date: python scripts/readme_main_job.py --write"
