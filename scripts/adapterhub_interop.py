"""AdapterHub interop check: zoo-tupate's Pfeiffer bottleneck against the real ``adapters`` library.

The ``adapters`` library pins transformers 4.57, so it lives in its own venv (the "side" venv); zoo-tupate
runs in the project's. Steps (each runs in the environment that has what it needs):

``lib-make OUT``  (side venv) a tiny BERT from a seeded ``BertConfig`` (saved with ``save_pretrained``, with a
    WordPiece vocab, so both transformers versions load the same weights) and, per task, a ``pf`` adapter
    with seeded nonzero weights and a classification head, saved with ``save_adapter`` (AdapterHub's own
    layout) under ``OUT/lib/<task>``, with the library's logits for a fixed input (``logits.json``).
``zt-check OUT``  (project venv) for every library adapter: zoo-tupate's reader keeps exactly the saved
    adapter tensors (its ``raw`` embedding is their layer-mean in canonical order) and zoo-tupate's torch
    module, loading it, gives the library's logits; then zoo-tupate tunes a bottleneck adapter
    (``tune --method bottleneck``) under ``OUT/zt/<task>`` and writes its own logits.
``lib-check OUT`` (side venv) loads each zoo-tupate adapter with ``load_adapter`` and compares the logits.
``all OUT --side-python PY``  (project venv) runs the three in order, for a tiny BERT (in ``OUT``) and a tiny
    RoBERTa (in ``OUT/roberta``). Exit status 0 only when all agree.

Run from the repository root: ``python scripts/adapterhub_interop.py all /tmp/interop --side-python
.adapters-venv/bin/python``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

TASKS = ("sst2", "mrpc", "stsb")  # stsb: a regression head (1 output)
LABELS = {"stsb": 1, "mnli": 3}
ATOL = 1e-5
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ("the a movie film was is plot actor story and it this that man woman dog cat sat on mat ran good great fun "
         "loved bad awful dull hated").split()


def fixed_input(vocab_size: int) -> dict:
    """The fixed batch every side scores: 3 rows of 9 tokens, the last row padded."""
    import torch

    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(len(SPECIAL), vocab_size, (3, 9), generator=gen)
    ids[:, 0] = SPECIAL.index("[CLS]")
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    ids[2, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def make_model(folder: Path, hidden: int = 64, layers: int = 2, seed: int = 0, name: str | None = None,
               arch: str = "bert") -> Path:
    """A tiny BERT or RoBERTa (seeded config) and a WordPiece tokenizer, saved to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer, RobertaConfig, RobertaModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys([*SPECIAL, *"abcdefghijklmnopqrstuvwxyz.,!?'", *WORDS]))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(str(folder))
    torch.manual_seed(seed)
    config_class, model_class = (RobertaConfig, RobertaModel) if arch == "roberta" else (BertConfig, BertModel)
    config = config_class(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                          intermediate_size=2 * hidden, max_position_embeddings=64)
    model = model_class(config)
    if name:
        model.config.name_or_path = name
    model.save_pretrained(str(folder))
    return folder


def lib_make(out: Path, tasks: tuple[str, ...] = TASKS, model_name: str | None = None, arch: str = "bert") -> None:
    """(side venv) The model and one library-saved ``pf`` adapter per task, with the library's logits."""
    import torch
    from adapters import AutoAdapterModel

    model_dir = make_model(out / "model", arch=arch)
    for i, task in enumerate(tasks):
        model = AutoAdapterModel.from_pretrained(str(model_dir))
        if model_name:
            model.config.name_or_path = model_name  # what save_adapter records as model_name
        model.add_adapter(task, config="pfeiffer")
        model.add_classification_head(task, num_labels=LABELS.get(task, 2))
        torch.manual_seed(100 + i)
        with torch.no_grad():  # seeded nonzero weights: an adapter that changes the logits
            for name, param in model.named_parameters():
                if f".adapters.{task}." in name or name.startswith(f"heads.{task}."):
                    param.normal_(0.0, 0.3)
        model.set_active_adapters(task)
        model.eval()
        folder = out / "lib" / task
        folder.mkdir(parents=True, exist_ok=True)
        model.save_adapter(str(folder), task, with_head=True)
        batch = fixed_input(model.config.vocab_size)
        with torch.no_grad():
            logits = model(**batch).logits
        model.set_active_adapters(None)
        with torch.no_grad():
            bare = model(**batch, head=task).logits
        if torch.allclose(bare, logits):
            raise SystemExit(f"lib-make: {task}: the adapter does not change the logits (not active?)")
        (folder / "logits.json").write_text(json.dumps(logits.tolist()) + "\n", encoding="utf-8")
        print(f"lib-make: {task}: saved {sorted(p.name for p in folder.iterdir())}")


def _compare(name: str, got: list, want: list) -> bool:
    import numpy as np

    got_a, want_a = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    diff = float(np.max(np.abs(got_a - want_a))) if got_a.shape == want_a.shape else float("inf")
    ok = diff <= ATOL
    print(f"{name}: max |logit difference| {diff:.2e} ({'ok' if ok else 'MISMATCH'}, tolerance {ATOL:g})")
    return ok


def zt_check(out: Path) -> bool:
    """(project venv) Library adapters read and run in zoo-tupate; zoo-tupate tunes its own for lib-check."""
    import numpy as np
    import torch

    from zoo_tupate import embed
    from zoo_tupate.readers import read_tuned
    from zoo_tupate.tuning.loading import load_tuned

    ok = True
    model_dir = out / "model"
    for folder in sorted(p for p in (out / "lib").iterdir() if p.is_dir()):
        saved = torch.load(folder / "pytorch_adapter.bin", map_location="cpu", weights_only=True)
        params = read_tuned(folder)
        kept = sum(len(group) for group in params.layers.values())
        emb = embed(folder, repr="raw")
        layers = sorted({int(k.split(".layer.")[1].split(".")[0]) for k in saved})
        names = sorted({k.split(f".adapters.{folder.name}.")[1] for k in saved})
        prefix = next(iter(saved)).split(".encoder.layer.")[0]  # bert / roberta
        want = np.mean([np.concatenate([saved[f"{prefix}.encoder.layer.{i}.output.adapters.{folder.name}.{n}"]
                                        .numpy().ravel() for n in names]) for i in layers], axis=0)
        same = params.method == "bottleneck" and emb.vector.shape == want.shape and np.allclose(emb.vector, want,
                                                                                               atol=1e-7)
        print(f"{folder.name}: reader kept {kept} of {len(saved)} saved tensors, "
              f"raw embedding {'equals' if same else 'DIFFERS FROM'} the saved tensors' layer-mean")
        ok &= same
        tunable = load_tuned(folder, base_model=str(model_dir))
        tunable.model.eval()
        with torch.no_grad():
            logits = tunable.model(**fixed_input(tunable.model.encoder_model.config.vocab_size)).logits
        ok &= _compare(f"{folder.name}: zoo-tupate on the library's adapter",
                       logits.tolist(), json.loads((folder / "logits.json").read_text()))
    ok &= _tune_own(out)
    return ok


def _tune_own(out: Path) -> bool:
    """Tune a zoo-tupate bottleneck adapter per task on a toy dataset; write its logits for lib-check."""
    import random

    import torch

    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.loading import load_tuned
    from zoo_tupate.tuning.train import tune

    torch.set_num_threads(1)
    rng = random.Random(0)
    for task in ("sst2", "stsb"):
        data = out / "data" / task
        data.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 48), ("validation", 16)):
            rows = []
            for j in range(n):
                label = j % 2
                words = rng.sample(WORDS[:20], 4) + [rng.choice(WORDS[20:24] if label else WORDS[24:])]
                rows.append({"sentence": " ".join(words), "label": float(label) if task == "stsb" else label})
            (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        config = TuneConfig(dataset=str(data), base_model=str(out / "model"), method="bottleneck",
                            base_model_id="tiny-bert", epochs=2, early_epochs=1, lr=1e-2, batch_size=8,
                            output=out / "runs" / task, cards=False, save_best=False)
        result = tune(config)[0]
        folder = out / "zt" / task
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        result.early_dir.rename(folder)
        tunable = load_tuned(folder, base_model=str(out / "model"))
        tunable.model.eval()
        with torch.no_grad():
            logits = tunable.model(**fixed_input(tunable.model.encoder_model.config.vocab_size)).logits
        (folder / "logits.json").write_text(json.dumps(logits.tolist()) + "\n", encoding="utf-8")
        print(f"zt-tune: {task}: tuned and saved {sorted(p.name for p in folder.iterdir())}")
    return True


def lib_check(out: Path) -> bool:
    """(side venv) zoo-tupate's adapters load in the real library and give zoo-tupate's logits."""
    import torch
    from adapters import AutoAdapterModel

    ok = True
    for folder in sorted(p for p in (out / "zt").iterdir() if p.is_dir()):
        model = AutoAdapterModel.from_pretrained(str(out / "model"))
        name = model.load_adapter(str(folder), with_head=True)
        model.set_active_adapters(name)
        model.eval()
        missing = [n for n, _ in model.named_parameters() if f".adapters.{name}." in n]
        with torch.no_grad():
            logits = model(**fixed_input(model.config.vocab_size)).logits
        print(f"{folder.name}: the library loaded adapter {name!r} ({len(missing)} adapter tensors)")
        ok &= _compare(f"{folder.name}: the library on zoo-tupate's adapter", logits.tolist(),
                       json.loads((folder / "logits.json").read_text()))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("lib-make", "zt-check", "lib-check", "all"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--side-python", default=None, help="The side venv's python (step 'all').")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--model-name", default=None, help="lib-make: the model_name the adapters record.")
    parser.add_argument("--arch", choices=("bert", "roberta"), default="bert", help="lib-make: the model family.")
    parser.add_argument("--archs", default="bert,roberta", help="all: the families checked (roberta in OUT/roberta).")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.step == "lib-make":
        lib_make(out, tuple(t for t in args.tasks.split(",") if t), args.model_name, args.arch)
        return 0
    if args.step == "zt-check":
        return 0 if zt_check(out) else 1
    if args.step == "lib-check":
        return 0 if lib_check(out) else 1
    if not args.side_python:
        parser.error("step 'all' needs --side-python")
    me = [str(Path(__file__).resolve())]
    ok = True
    for arch in [a for a in args.archs.split(",") if a]:
        where = out if arch == "bert" else out / arch
        print(f"--- {arch}")
        subprocess.run([args.side_python, *me, "lib-make", str(where), "--tasks", args.tasks, "--arch", arch],
                       check=True)
        ok &= zt_check(where)
        ok &= subprocess.run([args.side_python, *me, "lib-check", str(where)]).returncode == 0
    print("interop: " + ("both directions agree" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
