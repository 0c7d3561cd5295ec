"""A plain (non-editable) install ships the task catalog and the embedding-card template.

The wheel is built from a copy of the project sources, so the shared working tree gets no build/ or
*.egg-info folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SKIP = (".git", ".venv", "venv", "build", "dist", "tests", "benchmarks", "docs", "__pycache__", "*.egg-info",
         ".pytest_cache", ".ruff_cache", ".olah", ".whl", ".gl", "*.pyc")

CHECK = textwrap.dedent(
    """
    import json, sys
    from importlib import resources
    import zoo_tupate.catalog as catalog
    cards = catalog.load_catalog()
    template = resources.files("zoo_tupate.cards") / "templates" / "embedding_card.md"
    print(json.dumps({"module": catalog.__file__, "cards": sorted(cards), "template": template.is_file(),
                      "readme": (resources.files("zoo_tupate.cards") / "README.md").is_file()}))
    """
)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kwargs)


def test_wheel_install_ships_the_catalog(tmp_path):
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not running from a source checkout")
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*_SKIP))
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(wheels), str(src)])
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("zoo_tupate-*.whl")

    target = tmp_path / "site"
    installed = _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)])
    assert installed.returncode == 0, installed.stdout + installed.stderr

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    # -I would drop PYTHONPATH; -s skips user site. Run from tmp_path so the checkout is not importable.
    checked = _run([sys.executable, "-s", "-c", CHECK], env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert Path(result["module"]).resolve().is_relative_to(target.resolve())
    assert len(result["cards"]) == 22
    assert {"glue/rte", "nli/scitail", "qa/cq"} <= set(result["cards"])
    assert result["template"] and result["readme"]
