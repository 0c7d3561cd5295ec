"""Worker processes of the crash and concurrency tests (run as ``python worker.py MODE HOME ...``).

``add HOME PATH...``: add each checkpoint, printing ``committed NAME`` after each add returns.
``rebuild HOME``: run ``Index.rebuild`` once. Both end with ``done SECONDS`` (time since ``ready``).
``read HOME SECONDS``: loop ``entries()`` + ``vectors()`` (and every 5th time ``suggest``) until SECONDS pass or ``HOME/stop`` exists; print a
JSON summary ``{"loops", "errors", "max_entries", "first_error"}``. Every mode prints ``ready`` first.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    mode, home = sys.argv[1], Path(sys.argv[2])
    from zoo_tupate import Index

    print("ready", flush=True)
    started = time.monotonic()
    if mode == "add":
        index = Index(home)
        for path in sys.argv[3:]:
            index.add(path, reprs=("raw",))  # the pool's vectors are raw embeddings
            print(f"committed {Path(path).name}", flush=True)
        print(f"done {time.monotonic() - started:.4f}", flush=True)
    elif mode == "rebuild":
        Index(home).rebuild()
        print(f"done {time.monotonic() - started:.4f}", flush=True)
    elif mode == "read":
        print(json.dumps(read_loop(home, float(sys.argv[3]))), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


def read_loop(home: Path, seconds: float) -> dict:
    import numpy as np

    from zoo_tupate import Index, suggest

    loops = errors = max_entries = nonempty = suggests = 0
    first_error = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (home / "stop").exists():
        loops += 1
        try:
            index = Index(home)
            entries = index.entries()
            keys = [(e.name, e.space) for e in entries]
            if len(keys) != len(set(keys)):
                raise AssertionError("duplicate (name, space) in one read")
            if len(entries) < max_entries:
                raise AssertionError(f"entries went from {max_entries} to {len(entries)} (only adds run)")
            max_entries = len(entries)
            nonempty += bool(entries)
            for space in {e.space for e in entries}:
                group = [e for e in entries if e.space == space]
                matrix = index.vectors(group)
                if matrix.shape != (len(group), group[0].dim) or not np.isfinite(matrix).all():
                    raise AssertionError(f"bad vectors for {space}: shape {matrix.shape}")
            if len(entries) >= 2 and loops % 5 == 0:  # the ranking path reads the shards its own way
                target = Index(home).embedding_of(entries[-1])
                ranked = suggest(Index(home), [target], top_k=None, exact=loops % 10 == 0)
                if len(ranked) < len([e for e in entries if e.space == target.space]) - 1:
                    raise AssertionError(f"suggest ranked {len(ranked)} of {len(entries)} entries")
                suggests += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
    return {"loops": loops, "nonempty_reads": nonempty, "suggests": suggests, "errors": errors,
            "max_entries": max_entries, "first_error": first_error}


if __name__ == "__main__":
    main()
