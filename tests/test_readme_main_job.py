"""The README's first screen shows what the main job really prints: ``python scripts/readme_main_job.py --write``
rewrites it."""

from __future__ import annotations

from scripts_helper import ROOT, load_script


def test_the_readme_shows_the_main_jobs_real_output() -> None:
    module = load_script("readme_main_job")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.readme_with_block(text, module.block()) == text, \
        "README.md's main-job output is out of date: python scripts/readme_main_job.py --write"
