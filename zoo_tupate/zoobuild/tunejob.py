"""The job a build's worker runs: tune one probe with the recipe and hand its files back.

The probe is tuned into a temporary folder on the worker and its files (the early checkpoint with its
embedding card, and ``train_log.json``) come back as bytes, so a Ray worker on another machine needs no
shared disk for its output (only the data and the base model, by path or Hub id). The worker keeps the
base model loaded between jobs (:func:`zoo_tupate.tuning.methods.keep_base_models`).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TuneSpec:
    """Everything a worker needs to tune one build item."""

    task: str
    method: str
    dataset: str
    base_model: str
    base_model_id: str | None
    recipe: tuple[tuple[str, Any], ...]  # Recipe.to_json() items (hashable)
    device: str = "auto"
    text_columns: tuple[str, ...] | None = None
    label_column: str | None = None
    progress: str | None = None  # a prefix such as "[1/3] ": say when the job starts and each epoch's score
    #: Folder for the job's temporary files (``<work>/tmp`` under ``--home``; the system's when it cannot be made).
    scratch: str | None = None


def tune_job(spec: TuneSpec) -> dict[str, Any]:
    """Tune ``spec`` and return ``{"files": {relative path: bytes}, "log": summary}``."""
    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.methods import keep_base_models
    from zoo_tupate.tuning.train import tune

    keep_base_models()
    recipe = dict(spec.recipe)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=scratch_prefix(), dir=_usable(spec.scratch)) as tmp:
        config = TuneConfig(
            dataset=spec.dataset, base_model=spec.base_model, method=spec.method, base_model_id=spec.base_model_id,
            epochs=recipe["epochs"], early_epochs=recipe["epochs"], max_train=recipe["max_train"],
            max_eval=recipe["max_eval"], lr=recipe["lr"], batch_size=recipe["batch_size"],
            max_length=recipe["max_length"], device=spec.device, output=Path(tmp),
            text_columns=list(spec.text_columns) if spec.text_columns else None, label_column=spec.label_column,
            seed=recipe["seed"], init_seed=recipe["init_seed"], save_best=False,
        )
        if spec.progress is not None:
            from zoo_tupate.zoobuild.executors.base import log_line

            rate = f"lr {recipe['lr']:g}" if recipe.get("lr") else "lr searched"
            log_line(f"{spec.progress}tuning {spec.task}/{spec.method}: up to {recipe['max_train']} rows x "
                     f"{recipe['epochs']} epochs, {rate}, on {socket.gethostname()}")
        result = tune(config, progress=spec.progress is not None)[0]
        root = Path(tmp) / spec.method
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                 if p.is_file() and (p.name == "train_log.json" or p.relative_to(root).parts[0] == "early")}
    summary = result.to_json()
    return {"files": files, "log": {"lr": summary["lr"], "metric": summary["metric"],
                                    "early_metric": summary["early_metric"], "wall_s": round(time.perf_counter() - started, 3),
                                    "train_s": result.chosen.train_s, "host": socket.gethostname(), "pid": os.getpid()}}


def scratch_prefix() -> str:
    """``job-<host>-<pid>-``: whose a work folder is, so that the next build removes it once that process is gone."""
    return f"job-{socket.gethostname()}-{os.getpid()}-"


def _usable(scratch: str | None) -> str | None:
    if not scratch:
        return None
    try:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    except OSError:  # a worker on another machine without this path: its own temp folder
        return None
    return scratch


def clean_scratch(scratch: Path) -> list[Path]:
    """Remove the work folders in ``scratch`` left by processes of this host that no longer run (a killed
    build or worker); returns what was removed. Folders of running processes and other hosts stay."""
    import shutil

    removed = []
    host = socket.gethostname()
    for folder in sorted(Path(scratch).glob(f"job-{host}-*")):
        pid = folder.name[len(f"job-{host}-"):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    """Write a job's files as ``folder`` atomically: into a temporary sibling, then renamed into place."""
    import shutil

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for rel, data in files.items():
            path = tmp / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                raise ValueError(f"{rel}: not a relative path inside the job's folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
