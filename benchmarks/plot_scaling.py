"""How each index/suggest cost grows with N: a log-log plot from bench_index.py's JSON results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("json_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-scaling.png"))
    args = parser.parse_args()
    results = sorted((json.loads(p.read_text()) for p in args.json_dir.glob("index-*.json")), key=lambda r: r["n"])
    if len(results) < 2:
        print("fewer than two sizes measured: no scaling plot", file=sys.stderr)
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install 'zoo-tupate[plot]'): no scaling plot", file=sys.stderr)
        return
    n = [r["n"] for r in results]
    series = {
        "build (s)": [r["build"]["build_s"] for r in results],
        "open index (s)": [r["open_s"] for r in results],
        "add one entry (s, median)": [sorted(r["add_s"])[len(r["add_s"]) // 2] for r in results],
        "suggest default, warm p50 (s)": [r["default"]["warm_p50"] for r in results],
        "suggest --exact, warm p50 (s)": [r["exact"]["warm_p50"] for r in results],
        "suggest default, cold process p50 (s)": [r["default"]["cold_p50"] for r in results],
        "bandwidth floor: matvec over all vectors (s)": [r["floor"]["floor_s"] for r in results],
    }
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for label, values in series.items():
        ax.loglog(n, values, marker="o", label=label)
    ax.set_xlabel(f"entries N (dim {results[0]['dim']})")
    ax.set_ylabel("seconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("zoo-tupate index and suggest: cost against N")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
