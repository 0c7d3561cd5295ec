"""index + suggest at scale: build time, peak RSS, add-one latency, open cost, suggest latency (cold/warm,
default/exact), top-5 agreement, and the memory-bandwidth floor measured in the same run.

Synthetic entries (BERT-base LoRA dim 24,576 by default) are bulk-inserted with ``Index.add_many`` (the path
``index import`` uses). Every measurement that needs its own peak RSS or a cold start runs in a new process
(this script calling itself with a sub-command).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BERT_LORA_DIM, emit, median, percentile, synthetic_batch, synthetic_target, table  # noqa: E402

SPACE = "bert-base-uncased/lora/raw/layer-mean/synthetic"
BATCH = 4096


def _emb(vector: np.ndarray, sha: str, source: str):
    from zoo_tupate.embedding.vectors import Embedding

    return Embedding(vector=np.asarray(vector, dtype=np.float32), method="lora", repr="raw", pooling="layer-mean", space=SPACE,
                     base_model="bert-base-uncased", layers=list(range(12)), sha256=sha, source=source,
                     metadata={"format": "peft-lora", "num_params": 294912,
                               "config": {"peft_type": "LORA", "r": 8, "lora_alpha": 16,
                                          "target_modules": ["query", "value"]}})


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------ sub-commands (run in a fresh process)
def cmd_build(home: Path, n: int, dim: int) -> dict:
    from zoo_tupate import Index

    index = Index(home)
    gen = add = 0.0
    for b, start in enumerate(range(0, n, BATCH)):
        size = min(BATCH, n - start)
        t0 = time.perf_counter()
        rows = synthetic_batch(b, size, dim)
        t1 = time.perf_counter()
        index.add_many([(f"org/task-{start + i:06d}", _emb(rows[i], f"{start + i:064x}", f"synthetic/{start + i}"),
                         None, None) for i in range(size)])
        add += time.perf_counter() - t1
        gen += t1 - t0
        del rows
    return {"build_s": add, "generate_s": gen, "rss_mb": _rss_mb()}


def cmd_add(home: Path, dim: int, label: str) -> dict:
    t0 = time.perf_counter()
    from zoo_tupate import Index

    t1 = time.perf_counter()
    index = Index(home)
    vector = synthetic_target(5000 + hash(label) % 1000, dim)
    t2 = time.perf_counter()
    index.add_embedding(f"added/{label}", _emb(vector, f"ff{label:0>62}", f"added/{label}"))
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "add_s": t3 - t2, "rss_mb": _rss_mb()}


def cmd_open(home: Path) -> dict:
    t0 = time.perf_counter()
    from zoo_tupate import Index

    t1 = time.perf_counter()
    index = Index(home)
    count = index.count()
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "open_s": t2 - t1, "entries": count, "rss_mb": _rss_mb()}


def cmd_query(home: Path, dim: int, mode: str, queries: int, warm: bool) -> dict:
    """``warm``: one process, the first query discarded; else one query (this process is the cold start)."""
    t0 = time.perf_counter()
    from zoo_tupate import Index, suggest

    index = Index(home)
    times, tops, floors = [], [], []
    floor = _Floor(index) if warm and mode == "exact" else None
    for q in range(queries if warm else 1):
        target = _emb(synthetic_target(q, dim), f"ee{q:062x}", f"target/{q}")
        start = time.perf_counter()
        ranking = suggest(index, [target], top_k=5, exact=(mode == "exact"))
        times.append(time.perf_counter() - start)
        tops.append([r.name for r in ranking])
        if floor is not None:  # interleaved with the queries: same machine state
            floors.append(floor.run(target.vector))
    total = time.perf_counter() - t0
    if warm:
        times, floors = times[1:], floors[1:]
    out = {"times": times, "tops": tops, "process_s": total, "rss_mb": _rss_mb()}
    if floor is not None:
        out.update({"floor_times": floors, "floor_bytes": floor.nbytes})
    return out


class _Floor:
    """Memory-bandwidth floor: a float32 matrix × vector over every shard's memory-mapped vectors."""

    def __init__(self, index):
        # the index's own memory maps: the floor reads the same mapped pages (and adds none to the RSS)
        files = sorted((index.root / "shards").rglob("*.safetensors"))
        self.maps = [index.shards.cache.get(f) for f in files]
        self.nbytes = sum(m.nbytes for m in self.maps)

    def run(self, vector: np.ndarray) -> float:
        vector = np.asarray(vector, dtype=np.float32)
        start = time.perf_counter()
        for m in self.maps:
            m @ vector
        return time.perf_counter() - start


def _sub(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ orchestration
def measure(n: int, dim: int, workdir: Path, queries: int, cold: int, adds: int) -> dict:
    home = workdir / f"zoo-{n}"
    shutil.rmtree(home, ignore_errors=True)
    build = _sub("build", str(home), str(n), str(dim))
    disk = sum(p.stat().st_size for p in (home / "index").rglob("*") if p.is_file())
    opened = [_sub("open", str(home)) for _ in range(3)]
    res: dict = {"n": n, "dim": dim, "build": build, "disk_gb": disk / 1e9,
                 "open_s": median([o["open_s"] for o in opened]), "import_s": median([o["import_s"] for o in opened]),
                 "open_rss": median([o["rss_mb"] for o in opened])}
    for mode in ("default", "exact"):
        warm = _sub("query", str(home), str(dim), mode, str(queries + 1), "warm")
        colds = [_sub("query", str(home), str(dim), mode, "1", "cold") for _ in range(cold)]
        cold_times = [c["process_s"] for c in colds]
        cold_query = [c["times"][0] for c in colds]
        res[mode] = {"warm_p50": percentile(warm["times"], 50), "warm_p95": percentile(warm["times"], 95),
                     "cold_p50": percentile(cold_times, 50), "cold_p95": percentile(cold_times, 95),
                     "cold_query_p50": percentile(cold_query, 50),
                     "rss_mb": warm["rss_mb"], "tops": warm["tops"][1:]}
        if mode == "exact":
            floor_s = median(warm["floor_times"])
            res["floor"] = {"bytes": warm["floor_bytes"], "floor_s": floor_s, "gbps": warm["floor_bytes"] / floor_s / 1e9}
    agree = [len(set(a) & set(b)) / 5 for a, b in zip(res["default"]["tops"], res["exact"]["tops"], strict=True)]
    res["agreement"] = float(np.mean(agree))
    res["exact_gbps"] = res["floor"]["bytes"] / res["exact"]["warm_p50"] / 1e9
    add_runs = [_sub("add", str(home), str(dim), f"a{i}") for i in range(adds)]
    res["add_s"] = [a["add_s"] for a in add_runs]
    res["add_process_s"] = [a["add_s"] + a["import_s"] for a in add_runs]
    journal = sorted((home / "index").glob("journal.*.jsonl"))
    res["journal_bytes"] = sum(j.stat().st_size for j in journal)
    res["manifest_bytes"] = (home / "index" / "manifest.json").stat().st_size
    return res


def report(results: list[dict], out: Path | None) -> None:
    rows = []
    for r in results:
        b = r["build"]
        rows.append([f"{r['n']:,}", r["dim"], f"{b['build_s']:.1f}", f"{r['n'] / b['build_s']:,.0f}",
                     f"{b['rss_mb']:,.0f}", f"{r['disk_gb']:.2f}", f"{r['manifest_bytes'] / 1e6:.1f}",
                     f"{r['open_s'] * 1e3:.0f}", f"{r['open_rss']:,.0f}",
                     f"{median(r['add_s']) * 1e3:.0f}", f"{max(r['add_s']) * 1e3:.0f}",
                     f"{median(r['add_process_s']) * 1e3:.0f}"])
    emit(table("index: build (bulk add_many, 4,096 rows a shard), open, add one entry (new process)",
               ["N", "dim", "build s", "entries/s", "build peak RSS MB", "disk GB", "manifest MB",
                "open ms", "open RSS MB", "add-one ms p50", "add-one ms max", "add-one incl. imports ms"],
               rows), out)
    rows = []
    for r in results:
        for mode in ("default", "exact"):
            m = r[mode]
            rows.append([f"{r['n']:,}", mode, f"{m['warm_p50'] * 1e3:.1f}", f"{m['warm_p95'] * 1e3:.1f}",
                         f"{m['cold_query_p50'] * 1e3:.0f}", f"{m['cold_p50'] * 1e3:.0f}",
                         f"{m['cold_p95'] * 1e3:.0f}", f"{m['rss_mb']:,.0f}",
                         f"{r['agreement']:.3f}" if mode == "default" else "(reference)"])
    emit(table("suggest: one target, top-5 (warm: same process; cold: new process incl. imports)",
               ["N", "mode", "warm p50 ms", "warm p95 ms", "cold: suggest() ms p50", "cold: process ms p50",
                "cold: process ms p95", "peak RSS MB", "top-5 agreement with exact"], rows), out)
    rows = []
    for r in results:
        f = r["floor"]
        rows.append([f"{r['n']:,}", f"{f['bytes'] / 1e9:.2f}", f"{f['floor_s'] * 1e3:.1f}", f"{f['gbps']:.1f}",
                     f"{r['exact']['warm_p50'] * 1e3:.1f}", f"{r['exact_gbps']:.1f}",
                     f"{r['exact_gbps'] / f['gbps']:.2f}"])
    emit(table("suggest --exact against the memory-bandwidth floor (numpy float32 matvec over the same "
               "memory-mapped shards, interleaved with the exact queries in one process; medians)",
               ["N", "vectors GB", "floor ms", "floor GB/s", "exact warm p50 ms", "exact GB/s", "ratio"], rows), out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("build", "add", "open", "query"):
        cmd, rest = sys.argv[1], sys.argv[2:]
        home = Path(rest[0])
        if cmd == "build":
            result = cmd_build(home, int(rest[1]), int(rest[2]))
        elif cmd == "add":
            result = cmd_add(home, int(rest[1]), rest[2])
        elif cmd == "open":
            result = cmd_open(home)
        else:
            result = cmd_query(home, int(rest[1]), rest[2], int(rest[3]), rest[4] == "warm")
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated N")
    parser.add_argument("--dim", type=int, default=BERT_LORA_DIM)
    parser.add_argument("--queries", type=int, default=20, help="warm queries per mode")
    parser.add_argument("--cold", type=int, default=5, help="cold (new process) queries per mode")
    parser.add_argument("--adds", type=int, default=5, help="add-one runs (new process each)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the zoos are built (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the built zoos")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--json-dir", type=Path, default=None, help="write raw results here (index-<N>.json)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zt-bench-index-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            need = n * args.dim * 4 * 1.1
            free = shutil.disk_usage(workdir).free
            if need > free * 0.8:
                print(f"skipping N={n}: needs {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free", file=sys.stderr)
                continue
            started = time.perf_counter()
            results.append(measure(n, args.dim, workdir, args.queries, args.cold, args.adds))
            print(f"N={n}: measured in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            if not args.keep:
                shutil.rmtree(workdir / f"zoo-{n}", ignore_errors=True)
        report(results, args.results)
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            for r in results:
                for mode in ("default", "exact"):
                    r[mode].pop("tops", None)
                (args.json_dir / f"index-{r['n']}.json").write_text(json.dumps(r, indent=1))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
