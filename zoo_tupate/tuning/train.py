"""The tuning loop: train one method on one dataset, keep the early and best checkpoints, log everything.

Output layout for ``output=DIR``::

    DIR/<method>/early/        the adapter after ``early_epochs`` epochs (+ its embedding card)
    DIR/<method>/best/         the adapter of the best validation epoch (+ its embedding card)
    DIR/<method>/train_log.json  per-epoch loss and validation metrics, wall time, rows/s, config, seeds
    DIR/<method>/grid/lr-<x>/  with ``lr_grid``: each learning rate's own early/best (the winner is copied up)

The learning rate is constant (AdamW, no decay, gradients clipped at 1.0): the checkpoint after two
epochs is then the same whether a run lasts 2 or 20 epochs, so early probes of a target match the early
checkpoints of sources tuned for longer.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from zoo_tupate.core.errors import TuningError
from zoo_tupate.embedding.space import normalize_base_model
from zoo_tupate.tuning.config import RunResult, TuneConfig, TuneResult
from zoo_tupate.tuning.data import TaskData, load_task
from zoo_tupate.tuning.device import autocast_for, resolve_device
from zoo_tupate.tuning.encoding import Encoded, batches, collate, encode, load_tokenizer
from zoo_tupate.tuning.methods import LR_GRIDS, Tunable, build
from zoo_tupate.tuning.recipes import calibrated_rate, search_rates
from zoo_tupate.tuning.records import write_embedding_card, write_log
from zoo_tupate.tuning.scoring import evaluate, loss_fn, primary_metric

LOG_NAME = "train_log.json"


# ------------------------------------------------------------------------------------------ training


class _Progress:
    """A rich progress bar with ETA on stderr (or nothing)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def add(self, description: str, total: int) -> Any:
        return self.bar.add_task(description, total=total) if self.bar else None

    def update(self, task: Any, advance: int = 0, description: str | None = None) -> None:
        if self.bar is not None and task is not None:
            kwargs = {"description": description} if description else {}
            self.bar.update(task, advance=advance, **kwargs)

    def log(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message, highlight=False)


def train_run(
    task: TaskData,
    train_enc: Encoded,
    val_enc: Encoded,
    pad_id: int,
    config: TuneConfig,
    method: str,
    lr: float,
    folder: Path,
    progress: _Progress,
) -> RunResult:
    """Train ``method`` at ``lr``; save ``folder/early`` and ``folder/best``; return the history."""
    device = resolve_device(config.device)
    autocast, amp_dtype = autocast_for(device)
    base_id = normalize_base_model(config.base_model, config.base_model_id)
    tunable = build(method, config.base_model, task.num_labels, task.problem, base_id, config.init_seed,
                    config.options, name=task.name)
    tunable.extra.update({"seed": config.seed, "lr": lr, "dataset": task.display_name, **config.recipe()})
    if config.init_adapter is not None:
        from zoo_tupate.tuning.warmstart import init_from_adapter

        tunable.extra["init_adapter"] = init_from_adapter(tunable, Path(config.init_adapter))
    model = tunable.model.to(device)
    params = [p for _, p in tunable.trainable()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # dropout
    metric = primary_metric(task.problem)
    steps = math.ceil(len(train_enc) / config.batch_size)
    bar = progress.add(f"{method} lr={lr:g}", config.epochs * steps)
    scheduler = _schedule(optimizer, config.warmup, config.epochs * steps)
    history: list[dict[str, Any]] = []
    best_metric, best_epoch, step = -math.inf, 0, 0
    early_dir = folder / "early"
    best_dir = folder / "best" if config.save_best else None
    started, train_s = time.perf_counter(), 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(train_enc), generator=generator)
        total_loss = 0.0
        for index in batches(order, config.batch_size, train_enc if config.bucket else None, generator):
            batch = {k: v.to(device) for k, v in collate(train_enc, index, pad_id).items()}
            labels = train_enc.labels[index].to(device)
            with autocast():
                loss = loss_fn(model(**batch).logits, labels, task.problem)
            if not torch.isfinite(loss):
                raise TuningError(f"{task.name}: {method} loss became {float(loss)} at epoch {epoch} (lr {lr:g})")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += float(loss.detach()) * len(index)
            step += 1
            progress.update(bar, advance=1,
                            description=f"{method} lr={lr:g} epoch {epoch}/{config.epochs} loss {float(loss.detach()):.3f}")
        epoch_train_s = time.perf_counter() - t0
        train_s += epoch_train_s
        t1 = time.perf_counter()
        scores = evaluate(model, val_enc, task.problem, device, config.batch_size * 2, pad_id, autocast)
        row = {
            "epoch": epoch, "step": step, "train_loss": total_loss / len(train_enc),
            "validation": scores, "metric": scores[metric], "train_s": round(epoch_train_s, 3),
            "eval_s": round(time.perf_counter() - t1, 3),
            "rows_per_s": round(len(train_enc) / epoch_train_s, 2) if epoch_train_s > 0 else None,
            "early": epoch == config.early_epochs, "best": False,
        }
        if epoch == config.early_epochs:
            _save(tunable, early_dir, epoch, step, scores, len(train_enc))
        if scores[metric] > best_metric:
            best_metric, best_epoch = scores[metric], epoch
            row["best"] = True
            if best_dir is not None:
                _save(tunable, best_dir, epoch, step, scores, len(train_enc))
        history.append(row)
        progress.log(
            f"{method} lr={lr:g} epoch {epoch}/{config.epochs}: train loss {row['train_loss']:.4f}, "
            f"validation {metric} {scores[metric]:.4f}" + (" (best)" if row["best"] else "")
        )
    wall = time.perf_counter() - started
    for row in history:
        row["best"] = row["epoch"] == best_epoch
    rows_per_s = len(train_enc) * config.epochs / train_s if train_s > 0 else 0.0
    return RunResult(method, lr, history, best_epoch, float(best_metric), metric, early_dir, best_dir,
                     round(wall, 3), round(train_s, 3), rows_per_s, tunable.settings)


def _schedule(optimizer: torch.optim.Optimizer, warmup: float, total: int) -> Any:
    """Linear warmup over ``warmup`` of the ``total`` steps, then linear decay to 0; None when ``warmup`` is 0."""
    if warmup <= 0:
        return None
    ramp = max(1, round(warmup * total))

    def factor(step: int) -> float:
        return (step + 1) / ramp if step < ramp else max(0.0, (total - step) / max(1, total - ramp))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _save(tunable: Tunable, folder: Path, epoch: int, step: int, scores: dict[str, float], rows: int) -> None:
    tunable.extra.update({"epoch": epoch, "step": step, "train_size": rows,
                          "validation": {k: round(v, 6) for k, v in scores.items()}})
    if folder.exists():
        shutil.rmtree(folder)
    model = tunable.model
    was_training = model.training
    tunable.save(folder)
    model.train(was_training)


def tune(config: TuneConfig, progress: bool = False, task: TaskData | None = None) -> list[TuneResult]:
    """Tune every method ``config`` asks for; write adapters, cards and logs under ``config.output``.

    Raises :class:`TuningError` / :class:`DatasetError` (both :class:`ZooError`) for settings or data
    that cannot be used, naming the thing at fault.
    """
    config.check()
    if config.output is None:
        raise TuningError("no output folder given (--output DIR)")
    if task is None:
        task = load_task(config.dataset, config.text_columns, config.label_column, config.max_train,
                         config.max_eval, config.seed)
    resolve_device(config.device)
    tokenizer = load_tokenizer(config.base_model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_enc = encode(tokenizer, task.train, task.problem, config.max_length)
    val_enc = encode(tokenizer, task.validation, task.problem, config.max_length)
    results = []
    with _Progress(progress) as bars:
        for method in config.methods():
            results.append(_tune_method(task, train_enc, val_enc, pad_id, config, method, bars))
    return results


def learning_rates(config: TuneConfig, method: str) -> tuple[list[float], str]:
    """The rates ``method`` is trained at, and a note saying where they come from ("" when given)."""
    if config.lr is not None:
        return [config.lr], ""
    if config.lr_grid:
        return list(LR_GRIDS[method]), f"lr grid {', '.join(f'{x:g}' for x in LR_GRIDS[method])} (the paper's)"
    base_id = normalize_base_model(config.base_model, config.base_model_id)
    rate = calibrated_rate(base_id, method)
    if rate is not None:
        return [rate.lr], f"lr {rate.lr:g}: calibrated for {base_id} ({rate.evidence})"
    rates = search_rates(method)
    return list(rates), (f"lr searched over {', '.join(f'{x:g}' for x in rates)} by validation score "
                         f"(no calibrated rate for {base_id})")


def _tune_method(task: TaskData, train_enc: Encoded, val_enc: Encoded, pad_id: int, config: TuneConfig,
                 method: str, bars: _Progress) -> TuneResult:
    out = Path(config.output) / method
    lrs, origin = learning_rates(config, method)
    runs = []
    for lr in lrs:
        folder = out / "grid" / f"lr-{lr:g}" if len(lrs) > 1 else out
        runs.append(train_run(task, train_enc, val_enc, pad_id, config, method, lr, folder, bars))
    chosen = max(runs, key=lambda r: r.best_metric)  # first wins ties (the grid's order)
    early_dir, best_dir = out / "early", (out / "best" if config.save_best else None)
    if len(runs) > 1:
        for name in ("early", "best"):
            source = out / "grid" / f"lr-{chosen.lr:g}" / name
            if source.exists():
                target = out / name
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(source, target)
    result = TuneResult(method, out, early_dir, best_dir, out / LOG_NAME, chosen, runs)
    if origin:
        result.notes.append(origin)
    if config.cards:
        for folder, kind in ((early_dir, "early"), (best_dir, "best")):
            if folder is not None and folder.exists():
                note = write_embedding_card(folder, task, config, chosen, kind)
                if note:
                    result.notes.append(note)
                else:
                    result.cards.append(str(folder))
    write_log(result, task, config)
    return result


