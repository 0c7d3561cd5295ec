"""Run independent probes of the 11 CR tasks under a probe recipe, for the reliability benchmark.

Each probe is one ``tune`` of one task (LoRA on all-MiniLM-L6-v2) at one seed: the data seed (row sample,
order, dropout) and the init seed (head, LoRA A) are both set to it, so two seeds are independent probes.
What a probe leaves, under ``--work`` (default ``.reliability-runs/``, not committed):

    <work>/<recipe>/<task>-s<seed>/lora/early/   the checkpoint (any repr can be recomputed from it)
    <work>/<recipe>/records.jsonl                 one line per finished probe: validation score, the task's
                                                  majority/chance level on the same rows, train loss per
                                                  epoch, wall and train time, threads

Lines are appended as probes finish, so a run cut short still leaves every finished probe. A probe whose
line exists is skipped. ``benchmarks/reliability.py`` turns the records into figures.

    OMP_NUM_THREADS=1 python benchmarks/reliability_probes.py --seeds 1 --recipe default
    OMP_NUM_THREADS=1 python benchmarks/reliability_probes.py --seeds 2 --recipe default
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from zoo_tupate.store.starter import STARTER_MODEL, STARTER_TASKS  # noqa: E402
from zoo_tupate.tuning.config import TuneConfig  # noqa: E402
from zoo_tupate.tuning.data import load_task  # noqa: E402
from zoo_tupate.tuning.methods import MethodOptions  # noqa: E402
from zoo_tupate.tuning.recipes import default_recipe  # noqa: E402
from zoo_tupate.tuning.train import tune  # noqa: E402


@dataclass(frozen=True)
class ProbeRecipe:
    """A probe recipe of the benchmark: the product's default, or a training lever applied to it."""

    name: str
    max_train: int = 1000
    epochs: int = 2
    lr: float | None = None  # None: the calibrated rate (the product's default)
    warmup: float = 0.0  # share of the steps with a linear warmup (then linear decay); 0: constant rate
    batch_size: int = 32

    def describe(self) -> dict:
        return {"name": self.name, "max_train": self.max_train, "epochs": self.epochs, "lr": self.lr,
                "warmup": self.warmup, "batch_size": self.batch_size}


#: The recipes this benchmark knows (``default`` is what ``suggest --target DATASET`` and the starter zoo use).
RECIPES: dict[str, ProbeRecipe] = {r.name: r for r in (
    ProbeRecipe("default"),
    ProbeRecipe("warm-lr5e-3", warmup=0.1, lr=5e-3),
    ProbeRecipe("e4-warm", epochs=4, warmup=0.1),
    ProbeRecipe("e6-warm", epochs=6, warmup=0.1),
)}


def majority_level(labels: list, problem: str) -> float:
    """Accuracy of always answering the most frequent validation label (regression: correlation 0)."""
    if problem == "regression" or not labels:
        return 0.0
    return Counter(labels).most_common(1)[0][1] / len(labels)


def run_probe(task_name: str, seed: int, recipe: ProbeRecipe, data_dir: Path, out: Path) -> dict:
    """Tune one probe; return its record (checkpoint under ``out``)."""
    base = default_recipe(STARTER_MODEL, "lora")
    lr = recipe.lr if recipe.lr is not None else base.lr
    config = TuneConfig(
        dataset=str(data_dir / task_name), base_model=STARTER_MODEL, method="lora", epochs=recipe.epochs,
        early_epochs=recipe.epochs, max_train=recipe.max_train, max_eval=base.max_eval, lr=lr,
        batch_size=recipe.batch_size, max_length=base.max_length, device="cpu", output=out, seed=seed,
        init_seed=seed, save_best=False, cards=False, options=MethodOptions(), warmup=recipe.warmup,
    )
    task = load_task(config.dataset, None, None, config.max_train, config.max_eval, config.seed)
    started = time.perf_counter()
    result = tune(config, task=task)[0]
    wall = time.perf_counter() - started
    run = result.chosen
    return {
        "task": task_name, "seed": seed, "init_seed": seed, "recipe": recipe.describe(), "lr": lr,
        "metric": run.metric, "score": run.metric_at(None),
        "majority": majority_level(task.validation.labels, task.problem), "problem": task.problem,
        "train_rows": len(task.train), "eval_rows": len(task.validation),
        "train_loss": [round(r["train_loss"], 5) for r in run.history],
        "val_by_epoch": [round(r["metric"], 5) for r in run.history],
        "wall_s": round(wall, 2), "train_s": run.train_s, "threads": torch.get_num_threads(),
        "checkpoint": str(result.early_dir), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def starter_record(task_name: str, data_dir: Path) -> dict:
    """Seed 0 of the default recipe without tuning: the packaged starter card of ``task_name`` (tuned with
    this recipe at data seed 0, init seed 0; its LoRA adapter ships beside it). Train loss and wall time
    are not recorded in the card."""
    from zoo_tupate.cards.cardfile import read_document
    from zoo_tupate.store.starter import starter_adapter

    catalog = STARTER_TASKS[task_name]
    adapter = starter_adapter(catalog)
    if adapter is None:
        sys.exit(f"error: no starter adapter for {catalog}")
    extra = read_document(adapter.parent)["extra"]
    base = default_recipe(STARTER_MODEL, "lora")
    task = load_task(str(data_dir / task_name), None, None, base.max_train, base.max_eval, base.seed)
    return {
        "task": task_name, "seed": 0, "init_seed": 0, "recipe": RECIPES["default"].describe(), "lr": base.lr,
        "metric": extra["validation"]["lora"]["metric"], "score": extra["validation"]["lora"]["early"],
        "majority": majority_level(task.validation.labels, task.problem), "problem": task.problem,
        "train_rows": len(task.train), "eval_rows": len(task.validation), "train_loss": None,
        "val_by_epoch": None, "wall_s": None, "train_s": None, "threads": None, "checkpoint": str(adapter),
        "from": "starter card (float16 adapter)",
    }


def done(records: Path) -> set[tuple[str, int]]:
    if not records.is_file():
        return set()
    rows = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    return {(r["task"], r["seed"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="default", choices=sorted(RECIPES))
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--tasks", default=",".join(STARTER_TASKS))
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "cr")
    parser.add_argument("--work", type=Path, default=REPO / ".reliability-runs")
    parser.add_argument("--from-starter", action="store_true",
                        help="record seed 0 of the default recipe from the packaged starter cards (no tuning)")
    args = parser.parse_args()
    if args.from_starter:
        folder = args.work / "default"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "records.jsonl").open("a") as fh:
            for task in STARTER_TASKS:
                if (task, 0) not in done(folder / "records.jsonl"):
                    fh.write(json.dumps(starter_record(task, args.data_dir)) + "\n")
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    recipe = RECIPES[args.recipe]
    folder = args.work / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    records = folder / "records.jsonl"
    for seed in [int(s) for s in args.seeds.split(",")]:
        for task in [t for t in args.tasks.split(",") if t]:
            if (task, seed) in done(records):
                continue
            record = run_probe(task, seed, recipe, args.data_dir, folder / f"{task}-s{seed}")
            with records.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(f"{recipe.name} {task} s{seed}: {record['metric']} {record['score']:.3f} (majority "
                  f"{record['majority']:.3f}), loss {record['train_loss']}, {record['wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
