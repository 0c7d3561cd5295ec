"""embed: adapters/s and MB/s over N real-format BERT-base LoRA checkpoints, beside the read+hash floor.

Floor: ``safetensors.numpy.load_file`` of every tensor plus the sha256 of the file read through a reused
buffer (what indexing must do at least). Measured in the same run over the same (page-cached) files; the
ratio is floor time / our time.
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
    """Read every tensor (``safetensors.numpy.load_file``) and hash the file through one reused 1 MiB buffer.

    The buffer is reused (``readinto``) so that the floor does not depend on the allocator's state: reading
    into a fresh 1 MiB ``bytes`` per chunk page-faults or not depending on what ran before (glibc's adaptive
    mmap threshold), which moved this floor between 1.1 and 1.8 ms per file in the same session.
    """
    from safetensors.numpy import load_file

    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    start, cpu = time.perf_counter(), time.process_time()
    for folder in folders:
        file = folder / "adapter_model.safetensors"
        load_file(str(file))
        digest = hashlib.sha256()
        with open(file, "rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                digest.update(view[:count])
        digest.hexdigest()
    return time.perf_counter() - start, time.process_time() - cpu


def embed_pass(folders: list[Path], repr_: str = "raw") -> tuple[float, float]:
    from zoo_tupate import embed

    start, cpu = time.perf_counter(), time.process_time()
    for folder in folders:
        embed(folder, repr=repr_)
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


_RSS_SCRIPT = """
import hashlib, resource, sys
from pathlib import Path
folder, what, warm = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
from safetensors.numpy import load_file
from zoo_tupate import embed

if warm:  # a first call on a small file of the same shapes: one-time costs (lazy imports, BLAS workspace,
    embed(Path(warm[0]), repr=what)  # the cached sketch matrices) are then paid before the measured call


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024


before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as handle:  # resets VmHWM (peak RSS) to the current RSS
    handle.write("5")
out_bytes = 0
if what == "walk":  # calibration: touch 64 KiB of the mapping, drop it, repeat (the kernel's accounting floor)
    import numpy as np
    from zoo_tupate.formats.weights import mapped_file

    mapped = mapped_file(folder / "adapter_model.safetensors")
    data = np.frombuffer(mapped.map, np.uint8)
    for start in range(0, data.size, 1 << 16):
        int(data[start:start + (1 << 16)].sum())
        mapped.release()
elif what.startswith("floor"):
    if what == "floor-pt":  # numpy has no bfloat16: read the tensors with torch
        from safetensors.torch import load_file
    load_file(str(folder / "adapter_model.safetensors"))
    digest = hashlib.sha256()
    with open(folder / "adapter_model.safetensors", "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
else:
    out_bytes = embed(folder, repr=what).vector.nbytes
print(before, status("VmHWM"), out_bytes, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_big_lora(folder: Path, layers: int, hidden: int, rank: int, bf16: bool = False) -> tuple[Path, int, int]:
    """A LoRA of ``layers`` × (query, value) with ``hidden``-wide factors (F32, or BF16); returns folder, file
    and largest tensor bytes (written tensor by tensor, so the writer never holds the whole file)."""
    import json
    import struct

    import numpy as np

    rng = np.random.default_rng(0)
    width = 2 if bf16 else 4
    names, offset, header = [], 0, {}
    for layer in range(layers):
        for module in ("query", "value"):
            for part, shape in (("lora_A", (rank, hidden)), ("lora_B", (hidden, rank))):
                name = f"base_model.model.bert.encoder.layer.{layer}.attention.self.{module}.{part}.weight"
                size = width * shape[0] * shape[1]
                header[name] = {"dtype": "BF16" if bf16 else "F32", "shape": list(shape),
                                "data_offsets": [offset, offset + size]}
                names.append((name, shape))
                offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "adapter_model.safetensors", "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for _, shape in names:
            values = rng.standard_normal(shape, np.float32) * 0.02
            handle.write(((values.view(np.uint32) >> 16).astype(np.uint16) if bf16 else values).tobytes())
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 16,
                                                            "base_model_name_or_path": "big"}))
    return folder, 8 + len(raw) + offset, width * rank * hidden


def memory_rows(tmp: Path, layers: int, hidden: int, rank: int, bf16: bool = False) -> list[list[str]]:
    """Peak RSS of one call in a fresh process (imports done first; the kernel's peak counter is reset just
    before the call), beside the bound 1.5 × largest tensor + output vector."""
    import subprocess

    folder, file_bytes, largest = write_big_lora(tmp / "big", layers, hidden, rank, bf16)
    warm = write_big_lora(tmp / "warm", 1, hidden, rank, bf16)[0]
    rows = []
    for what, after in (("walk", ""), ("floor", ""), ("raw", ""), ("raw", warm), ("delta", ""), ("delta", warm)):
        command = [sys.executable, "-c", _RSS_SCRIPT, str(folder), "floor-pt" if what == "floor" and bf16 else what]
        proc = subprocess.run(command + ([str(after)] if after else []), capture_output=True, text=True, check=True)
        before, peak, out_bytes, maxrss = (int(v) for v in proc.stdout.split()[-4:])
        above = peak - before
        bound = 1.5 * largest + out_bytes
        mib = 2**20
        label = f"{what} ({'BF16' if bf16 else 'F32'}{', after a warm-up call' if after else ''})"
        if what == "walk":
            label = "calibration: touch 64 KiB of the mapped file, drop it, repeat"
        rows.append([label, f"{file_bytes / mib:.0f}", f"{largest / mib:.1f}", f"{out_bytes / mib:.2f}",
                     f"{maxrss / mib:.0f}", f"{above / mib:.1f}", f"{above / file_bytes:.3f}",
                     "" if what in ("floor", "walk") else f"{bound / mib:.1f}",
                     "" if what in ("floor", "walk") else ("yes" if above <= bound else "no")])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="checkpoints per variant")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of embed()")
    parser.add_argument("--memory", type=int, nargs=3, metavar=("LAYERS", "HIDDEN", "RANK"), default=None,
                        help="measure peak RSS of embed on one big LoRA instead (e.g. 24 4096 192 ≈ 288 MiB)")
    parser.add_argument("--bf16", action="store_true", help="--memory: write the big LoRA in bfloat16")
    args = parser.parse_args()
    if args.memory:
        tmp = Path(tempfile.mkdtemp(prefix="zt-bench-mem-"))
        try:
            rows = memory_rows(tmp, *args.memory, bf16=args.bf16)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        flags = " ".join(map(str, args.memory)) + (" --bf16" if args.bf16 else "")
        emit(table(f"embed peak memory, one call in a fresh process (--memory {flags})",
                   ["path", "file MiB", "largest tensor MiB", "output vector MiB", "process peak RSS MiB",
                    "call's peak above RSS before it MiB", "× file", "bound 1.5 × largest + output MiB",
                    "within bound"], rows), args.results)
        return
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
            floors, embeds, deltas, cached = [], [], [], []
            for _ in range(args.repeats):
                floors.append(floor_pass(folders))
                embeds.append(embed_pass(folders))
                deltas.append(embed_pass(folders, "delta"))
                cached.append(cached_embed_pass(folders, tmp / "home"))
            label = "with heads" if heads else "no heads"
            f, fc = median([x[0] for x in floors]), median([x[1] for x in floors])
            for what, runs in (("floor: safetensors read + sha256", floors), ("embed() (raw)", embeds),
                               ("embed(repr='delta')", deltas), ("Index.cached_embed (cold cache, raw)", cached)):
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
