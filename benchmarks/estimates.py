"""Announced vs actual time: ``suggest`` on dataset targets and ``zoo build`` with both executors, a fresh
``--home`` per run (so every estimate is a first-run one, from a few batches measured on the spot).

    python benchmarks/estimates.py OUT.jsonl [CASE-SUBSTRING ...]

Appends one JSON line per case: announced seconds (the sum of the probe lines' ``~N s`` or the build's
``estimate: about …``), the whole command's wall time, the load average. Needs ``../shared/data/cr``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CR = REPO.parent / "shared" / "data" / "cr"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def review_csv(folder: Path, rows: int = 300, seed: int = 0) -> Path:
    """A small sentiment CSV with unusual column names (review, sentiment): what a user brings."""
    rng = random.Random(seed)
    good, bad = ["great", "superb", "fine", "lovely"], ["awful", "boring", "poor", "dull"]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", rows), ("validation", rows // 4)):
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["review", "sentiment"])
            for _ in range(n):
                label = rng.random() < 0.5
                words = rng.choices(good if label else bad, k=4) + rng.choices(good + bad, k=2) + ["movie"]
                writer.writerow([" ".join(words), "positive" if label else "negative"])
    return folder


def cases(csv_dir: Path) -> list[tuple[str, list[str]]]:
    build = ["zoo", "build", "--base-model", MINILM, "--data-dir", str(CR)]
    ray = ["--executor", "ray", "--num-cpus", "1"]
    return [
        ("suggest wnli", ["suggest", "--target", str(CR / "wnli"), "--base-model", MINILM]),
        ("suggest stsb (max-train 500)", ["suggest", "--target", str(CR / "stsb"), "--base-model", MINILM,
                                          "--max-train", "500"]),
        ("suggest csv review,sentiment", ["suggest", "--target", str(csv_dir), "--base-model", MINILM,
                                          "--text-columns", "review", "--label-column", "sentiment"]),
        ("suggest mrpc", ["suggest", "--target", str(CR / "mrpc"), "--base-model", MINILM]),
        ("zoo build wnli local", [*build, "glue/wnli"]),
        ("zoo build wnli ray", [*build, "glue/wnli", *ray]),
        ("zoo build rte max-train 300 local", [*build, "glue/rte", "--max-train", "300"]),
        ("zoo build rte max-train 300 ray", [*build, "glue/rte", "--max-train", "300", *ray]),
    ]


def announced_seconds(line: str) -> float:
    """Seconds a progress line announces (0 when it announces none)."""
    if line.startswith("probe ") and (m := re.search(r"~(\d+) s", line)):
        return float(m.group(1))
    if m := re.search(r"estimate: about (\d+(?:\.\d+)?) (s|min|h)", line):
        return float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]
    return 0.0


def main() -> None:
    out, only = Path(sys.argv[1]), sys.argv[2:]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        for name, args in cases(review_csv(Path(scratch) / "reviews")):
            if only and not any(o in name for o in only):
                continue
            home = tempfile.mkdtemp(prefix="estimate-home.", dir=scratch)
            started = time.time()
            proc = subprocess.Popen([sys.executable, "-m", "zoo_tupate", "--home", home, *args], cwd=REPO,
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            announced = sum(announced_seconds(line) for line in proc.stderr)
            proc.wait()
            row = {"case": name, "rc": proc.returncode, "announced_s": announced,
                   "taken_s": round(time.time() - started, 1), "load1": os.getloadavg()[0],
                   "at": time.strftime("%H:%M:%S", time.gmtime())}
            with open(out, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
