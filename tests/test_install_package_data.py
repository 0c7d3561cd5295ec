"""A plain (non-editable) install works on its own: the wheel ships the catalog, the card template and the
starter zoo (cards and their LoRA adapters), and the README's main-job command runs from the repository root
against the installed package.

The wheel is built from a copy of the project sources (so the shared working tree gets no build/ or
*.egg-info folders) and installed into a fresh venv; the venv sees this interpreter's third-party packages
(torch, transformers, ...) through a ``.pth`` file, but never this checkout's ``zoo_tupate``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SKIP = (".git", ".venv", "venv", "build", "dist", "tests", "benchmarks", "docs", "__pycache__", "*.egg-info",
         ".pytest_cache", ".ruff_cache", ".olah", ".whl", ".gl", "*.pyc", ".starter-runs", ".bench-cache")

CHECK = textwrap.dedent(
    """
    import json, sys
    from importlib import resources
    import zoo_tupate.cards.catalog as catalog
    from zoo_tupate.store.starter import starter_adapter, starter_cards
    cards = catalog.load_catalog()
    template = resources.files("zoo_tupate.cards") / "templates" / "embedding_card.md"
    print(json.dumps({"module": catalog.__file__, "cards": sorted(cards), "template": template.is_file(),
                      "readme": (resources.files("zoo_tupate.cards") / "README.md").is_file(),
                      "starter": [p.name for p in starter_cards()],
                      "adapters": [p.name for p in starter_cards() if starter_adapter(p.name.replace("-", "/", 1))]}))
    """
)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


def readme_main_job() -> list[str]:
    """The README's main-job command (the ``$`` line of its 'The main job' console block)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The main job.*?```console\n\$ ([^\n]*)\n", text, re.S)
    assert block, "README has no 'The main job' console block"
    return block.group(1).split("#", 1)[0].split()


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel built from this checkout installed (non-editable, no deps)."""
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not running from a source checkout")
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*_SKIP), symlinks=True)
    wheels = tmp / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(wheels), str(src)])
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("zoo_tupate-*.whl")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    site = Path(_run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                     ).stdout.strip())
    # this interpreter's third-party packages, minus any zoo_tupate installed there (a .pth dir is not a
    # site dir: its own .pth files, e.g. an editable install's finder, are not processed)
    outer = Path(sysconfig.get_paths()["purelib"])
    (site / "outer.pth").write_text(f"{outer}\n", encoding="utf-8")
    installed = _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    (venv / "bin" / "zoo-tupate").write_text(
        f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom zoo_tupate.cli import main\nsys.exit(main())\n")
    (venv / "bin" / "zoo-tupate").chmod(0o755)
    return venv


def _env(venv: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZOO_TUPATE_HOME")}
    env.update({"PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
                "ZOO_TUPATE_HOME": str(home), "COLUMNS": "80"})
    return env


def test_wheel_install_ships_the_catalog_and_the_starter_zoo(fresh_venv: Path, tmp_path: Path) -> None:
    checked = _run([str(fresh_venv / "bin" / "python"), "-s", "-c", CHECK], env=_env(fresh_venv, tmp_path),
                   cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert Path(result["module"]).resolve().is_relative_to(fresh_venv.resolve())
    assert len(result["cards"]) == 22
    assert {"glue/rte", "nli/scitail", "qa/cq"} <= set(result["cards"])
    assert result["template"] and result["readme"]
    assert len(result["starter"]) == 11 and "glue-rte" in result["starter"]
    assert result["adapters"] == result["starter"]  # each card ships its LoRA adapter (suggest --verify)


def test_readme_main_job_runs_from_the_repo_root_on_the_installed_package(fresh_venv: Path, tmp_path: Path) -> None:
    command = readme_main_job()
    assert command[0] == "zoo-tupate"
    done = _run([str(fresh_venv / "bin" / "zoo-tupate"), *command[1:]], env=_env(fresh_venv, tmp_path / "home"),
                cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starter" in done.stderr and "glue/" in done.stderr  # ranked starter entries
    assert "Traceback" not in done.stderr
    as_json = _run([str(fresh_venv / "bin" / "zoo-tupate"), *command[1:], "--json"],
                   env=_env(fresh_venv, tmp_path / "home"), cwd=REPO)
    answer = json.loads(as_json.stdout)
    rows = answer["sources"]  # one row per source
    assert len(rows) == len({r["name"] for r in rows}) == 10  # the other ten starter tasks
    assert all(r["source"] == "starter" for r in rows) and answer["advice"].startswith("Train on")
