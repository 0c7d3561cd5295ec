"""Job functions for the Ray executor tests (importable by Ray workers through PYTHONPATH)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def die_once(marker: str) -> str:
    """Kill this worker the first time (as an OOM killer or a lost node would); succeed when retried."""
    path = Path(marker)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    if len(path.read_text(encoding="utf-8").splitlines()) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return "ok"


def boom(marker: str) -> None:
    """Fail with the job's own exception (never retried)."""
    with Path(marker).open("a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    raise ValueError("boom")
