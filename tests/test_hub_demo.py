"""``scripts/offline_demo.sh`` runs the README's Hub commands against a local server, start to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "offline_demo.sh"


@pytest.mark.slow
def test_offline_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_TUPATE"))}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "demo")], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "top source: AdapterHub/bert-base-uncased-pf-" in out
    assert out.count("unchanged") >= 8  # the second pull fetched nothing
    assert not list((tmp_path / "demo" / "zoo").rglob("pytorch_model_head.bin"))  # heads stay on the server
