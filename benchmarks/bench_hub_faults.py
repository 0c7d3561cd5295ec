"""How ``pull`` and ``suggest --target org/name`` end against faulty Hub servers (all on 127.0.0.1).

Each case runs the real CLI (``python -m zoo_tupate``) in a fresh process against tests/hub_server.py (or a
port that never answers / refuses) and prints one Markdown row: wall time (process start-up included),
exit status and the error line. Used for the figures in docs/reliability.md:

    python benchmarks/bench_hub_faults.py            # about 3 minutes
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_hub import make_tiny_zoo, publish_adapter  # noqa: E402
from hub_server import HubServer  # noqa: E402

WEIGHTS = r"/resolve/[^/]+/adapter_model\.safetensors$"


def cli(home: Path, endpoint: str, *args: str, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run the CLI; (seconds, exit status, last stderr line)."""
    full = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(home / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_TOKEN": "hf_" + "x" * 34, **(env or {})}
    full.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", str(home), *args], capture_output=True,
                          text=True, env=full, cwd=ROOT, timeout=900)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return time.monotonic() - start, proc.returncode, lines[-1] if lines else ""


def row(case: str, command: str, result: tuple[float, int, str]) -> None:
    seconds, code, line = result
    print(f"| {case} | `{command}` | {seconds:.1f} s | {code} | {line.replace('|', '/')[:220]} |", flush=True)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="zoo-hub-faults-"))
    zoo = make_tiny_zoo(tmp / "adapters", {"sst2": 1, "imdb": 2})
    server = HubServer(tmp / "hub").start()
    for task in ("sst2", "imdb"):
        publish_adapter(server, f"org/{task}", zoo[task])
    print("| case | command | wall | exit | last stderr line |\n|---|---|---|---|---|")

    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    dead.close()
    row("port refuses", "pull org/sst2", cli(tmp / "h1", dead_url, "pull", "org/sst2", "--json"))

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    for args in (["pull", "org/sst2", "--json"], ["suggest", "--target", "org/sst2", "--target-kind", "hub"]):
        row("accepts, never answers", " ".join(args) + " --timeout 5",
            cli(tmp / "h2", silent_url, *args, "--timeout", "5"))
    silent.close()

    server.slow(WEIGHTS, 15)
    row("15 s before each weights answer (defaults: 300 s deadline, 10 s read timeout)", "pull org/sst2",
        cli(tmp / "h3", server.endpoint, "pull", "org/sst2", "--json"))
    row("same", "suggest --target org/imdb --target-kind hub",
        cli(tmp / "h3", server.endpoint, "suggest", "--target", "org/imdb", "--target-kind", "hub", "--json"))
    server.clear_faults()

    server.stall(WEIGHTS, 100)
    row("stalls after 100 bytes", "pull org/sst2 --timeout 20",
        cli(tmp / "h4", server.endpoint, "pull", "org/sst2", "--json", "--timeout", "20"))
    server.clear_faults()

    server.truncate(WEIGHTS, 0)
    row("cuts every weights answer before its body", "pull org/sst2",
        cli(tmp / "h5", server.endpoint, "pull", "org/sst2", "--json"))
    server.clear_faults()

    server.fail(WEIGHTS, 503)
    row("HTTP 503 to every weights request", "pull org/sst2 --timeout 10",
        cli(tmp / "h8", server.endpoint, "pull", "org/sst2", "--json", "--timeout", "10"))
    server.clear_faults()

    server.corrupt(WEIGHTS)
    row("flips the weights' bytes", "pull org/sst2", cli(tmp / "h6", server.endpoint, "pull", "org/sst2", "--json"))
    server.clear_faults()

    row("no such repo", "pull org/ghost", cli(tmp / "h7", server.endpoint, "pull", "org/ghost", "--json"))
    server.stop()


if __name__ == "__main__":
    main()
