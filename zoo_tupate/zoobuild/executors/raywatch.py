"""A watchdog for the local Ray instance a run starts: when the driver dies without shutting Ray down (SIGKILL,
an out-of-memory kill), the processes Ray left behind are stopped at once instead of a minute later.

Ray stops its raylet and GCS with the driver, but its agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``)
were measured to outlive a killed driver by about 60-75 s. The watchdog is a small separate process (Linux:
it reads ``/proc``) that notes the driver's descendants every half second; when the pipe from the driver
closes without a ``stop`` line (the driver is gone), it sends SIGTERM, then SIGKILL, to those still running
(each checked by its start time, so a reused pid is never hit). Signals the driver can catch (SIGTERM,
SIGHUP, SIGINT) shut Ray down in the driver itself (see :mod:`zoo_tupate.executors.ray`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

#: Seconds between two looks at the driver's descendants.
POLL_S = 0.5


def start() -> IO[bytes] | None:
    """Start the watchdog for this process; returns the pipe to :func:`stop` it with (None off Linux)."""
    if not Path("/proc/self/stat").exists():
        return None
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(os.getpid())],  # stdlib only
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc.stdin


def stop(pipe: IO[bytes] | None) -> None:
    """Tell the watchdog that Ray was shut down normally (it exits without stopping anything)."""
    if pipe is None:
        return
    try:
        pipe.write(b"stop\n")
        pipe.close()
    except OSError:
        pass


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of ``pid``, or None when it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return (int(fields[1]), fields[19]) if fields[0] != "Z" else None


def _descendants(root: int) -> dict[int, str]:
    parents: dict[int, int] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                parents[int(entry.name)], starts[int(entry.name)] = found
    out: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in out and child != os.getpid():
                out[child] = starts[child]
                frontier.append(child)
    return out


def watch(driver: int) -> None:
    """Note the driver's descendants until stdin closes; if no ``stop`` came, stop those still running."""
    import select

    known: dict[int, str] = {}
    stopped = False
    while True:
        known.update(_descendants(driver))
        ready, _, _ = select.select([sys.stdin.buffer], [], [], POLL_S)
        if ready:
            line = sys.stdin.buffer.readline()
            if line.strip() == b"stop":
                stopped = True
            if not line or stopped:
                break
    if stopped:
        return
    alive = {pid: start for pid, start in known.items() if (_stat(pid) or (0, ""))[1] == start}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        until = time.monotonic() + 3
        while time.monotonic() < until and any((_stat(p) or (0, ""))[1] == s for p, s in alive.items()):
            time.sleep(0.1)
        alive = {pid: start for pid, start in alive.items() if (_stat(pid) or (0, ""))[1] == start}
        if not alive:
            return


if __name__ == "__main__":
    watch(int(sys.argv[1]))
