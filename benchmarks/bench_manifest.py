"""manifest: what one add cost with the old design (the whole JSON manifest, one object per entry, read,
parsed and rewritten atomically per add) against the journaled manifest (``zoo_tupate.store.journal``).

Synthetic entries like BERT-base LoRA ones (same metadata as ``bench_index.py``); no vectors are written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, median, table  # noqa: E402

META = {"base_model": "bert-base-uncased", "layers": list(range(12)), "format": "peft-lora", "num_params": 294912,
        "config": {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["query", "value"]}}
SPACE = "bert-base-uncased/lora/raw/layer-mean/synthetic"


def _entry(i: int) -> dict:
    return {"name": f"org/task-{i:06d}", "space": SPACE, "method": "lora", "repr": "raw", "pooling": "layer-mean",
            "dim": 24576, "source": f"synthetic/{i}", "sha256": f"{i:064x}",
            "shard": f"shards/space-0123456789/{i // 4096:016x}-abcdef12.safetensors", "row": i % 4096,
            "metadata": dict(META), "added": 1.7e9 + i}


def legacy_add(path: Path, new: dict) -> None:
    """The old per-add work: load every entry, add one, rewrite the whole manifest atomically."""
    from zoo_tupate.core.storage import atomic_write_json
    from zoo_tupate.store.manifest import Entry

    data = json.loads(path.read_text(encoding="utf-8"))
    entries = [Entry.from_json(e) for e in data["entries"]]
    entries.append(Entry.from_json(new))
    entries.sort(key=lambda e: (e.name, e.space))
    atomic_write_json(path, {"version": 1, "entries": [e.to_json() for e in entries]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    from zoo_tupate.store.journal import ManifestStore
    from zoo_tupate.store.manifest import State, encode_entries

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-manifest-"))
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            entries = [_entry(i) for i in range(n)]
            legacy = tmp / f"legacy-{n}.json"
            legacy.write_text(json.dumps({"version": 1, "entries": entries}, separators=(",", ":")))
            legacy_times = []
            for r in range(args.repeats):
                start = time.perf_counter()
                legacy_add(legacy, _entry(n + r))
                legacy_times.append(time.perf_counter() - start)
            root = tmp / f"journal-{n}"
            root.mkdir()
            state = State()
            state.apply({"put": encode_entries(entries)})
            ManifestStore(root).checkpoint(state, 1)
            new_times, open_times = [], []
            for r in range(args.repeats):
                start = time.perf_counter()
                store = ManifestStore(root)  # a new process's view: load the checkpoint and journal
                store.state()
                open_times.append(time.perf_counter() - start)
                store.commit({"put": encode_entries([_entry(n + r)])})
                new_times.append(time.perf_counter() - start)
            rows.append([f"{n:,}", f"{legacy.stat().st_size / 1e6:.1f}", f"{median(legacy_times) * 1e3:.0f}",
                         f"{(root / 'manifest.json').stat().st_size / 1e6:.1f}", f"{median(open_times) * 1e3:.0f}",
                         f"{median(new_times) * 1e3:.0f}", f"{median(legacy_times) / median(new_times):.0f}×"])
        emit(table("manifest: cost of committing one add (new process: load, then commit), median of "
                   f"{args.repeats}",
                   ["N", "old manifest MB", "old: load + rewrite ms", "new checkpoint MB", "new: load ms",
                    "new: load + journal append ms", "speed-up"], rows), args.results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
