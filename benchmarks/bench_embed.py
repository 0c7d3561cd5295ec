"""embed: adapters/s and MB/s over N real-format BERT-base LoRA checkpoints, beside the read+hash floor.

Floor: ``safetensors.numpy.load_file`` of every tensor plus the sha256 of the file (what indexing must do
at least). Measured in the same run over the same (page-cached) files; the ratio is floor time / our time.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, median, table, write_bert_lora  # noqa: E402


def floor_pass(folders: list[Path]) -> tuple[float, float]:
    from safetensors.numpy import load_file

    start, cpu = time.perf_counter(), time.process_time()
    for folder in folders:
        file = folder / "adapter_model.safetensors"
        load_file(str(file))
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.hexdigest()
    return time.perf_counter() - start, time.process_time() - cpu


def embed_pass(folders: list[Path]) -> tuple[float, float]:
    from zoo_tupate import embed

    start, cpu = time.perf_counter(), time.process_time()
    for folder in folders:
        embed(folder)
    return time.perf_counter() - start, time.process_time() - cpu


def cached_embed_pass(folders: list[Path], home: Path) -> tuple[float, float]:
    """Index.cached_embed on a cold cache: hash, embed, write the cache entry (what ``index add`` does)."""
    from zoo_tupate import Index

    shutil.rmtree(home, ignore_errors=True)
    index = Index(home)
    start, cpu = time.perf_counter(), time.process_time()
    for folder in folders:
        index.cached_embed(folder, "raw", "layer-mean")
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="checkpoints per variant")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of embed()")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-embed-"))
    rows = []
    try:
        for heads in (False, True):
            folders = [write_bert_lora(tmp / f"{'h' if heads else 'p'}{i}", seed=i, with_heads=heads)
                       for i in range(args.n)]
            size_mb = sum((f / "adapter_model.safetensors").stat().st_size for f in folders) / 1e6
            floor_pass(folders), embed_pass(folders[:5])  # warm page cache and imports
            floors, embeds, cached = [], [], []
            for _ in range(args.repeats):
                floors.append(floor_pass(folders))
                embeds.append(embed_pass(folders))
                cached.append(cached_embed_pass(folders, tmp / "home"))
            label = "with heads" if heads else "no heads"
            f, fc = median([x[0] for x in floors]), median([x[1] for x in floors])
            for what, runs in (("floor: safetensors read + sha256", floors), ("embed()", embeds),
                               ("Index.cached_embed (cold cache)", cached)):
                t, c = median([x[0] for x in runs]), median([x[1] for x in runs])
                rows.append([label, what, f"{t / args.n * 1e3:.2f}", f"{args.n / t:.0f}", f"{size_mb / t:.0f}",
                             f"{f / t:.2f}", f"{c / args.n * 1e3:.2f}", f"{fc / c:.2f}"])
            if args.profile and heads:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
                embed_pass(folders)
                cached_embed_pass(folders, tmp / "home")
                profiler.stop()
                print(profiler.output_text(unicode=False, color=False, show_all=False))
        emit(table(f"embed: {args.n} BERT-base LoRA checkpoints (r=8, query+value), median of {args.repeats}",
                   ["files", "path", "ms/adapter", "adapters/s", "MB/s", "throughput ratio to floor",
                    "CPU ms/adapter", "CPU ratio to floor"], rows), args.results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
