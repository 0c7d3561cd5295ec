"""How fast probes tune on this machine: measured rows/s and per-probe overhead per (base model, method,
device), kept in ``throughput.json`` beside the probe cache, so ``suggest`` can announce a time estimate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import TuningError, ZooError
from zoo_tupate.core.storage import atomic_write_json, read_json
from zoo_tupate.tuning.data import TaskData
from zoo_tupate.tuning.methods import MethodOptions
from zoo_tupate.tuning.recipes import search_rates

THROUGHPUT_FILE = "throughput.json"


def rate_key(base_id: str, method: str, device: str) -> str:
    """The key a measured rate is kept under."""
    return f"{base_id}|{method}|{_device_name(device)}"


def _device_name(device: str) -> str:
    from zoo_tupate.tuning.device import resolve_device

    try:
        return resolve_device(device).type
    except TuningError:
        return device


def read_rates(root: Path) -> dict[str, dict[str, float]]:
    """Measured ``{key: {"rows_per_s": r, "overhead_s": o}}`` (older files hold bare rows/s)."""
    data = read_json(root / THROUGHPUT_FILE)
    data = data if isinstance(data, dict) else {}
    out: dict[str, dict[str, float]] = {}
    for key, value in data.items():
        if isinstance(value, (int, float)) and value > 0:
            out[key] = {"rows_per_s": float(value)}
        elif isinstance(value, dict) and isinstance(value.get("rows_per_s"), (int, float)) and value["rows_per_s"] > 0:
            out[key] = {k: float(v) for k, v in value.items() if isinstance(v, (int, float))}
    return out


def write_rate(root: Path, key: str, rate: float, overhead_s: float | None = None) -> None:
    if not rate or rate <= 0:
        return
    root.mkdir(parents=True, exist_ok=True)
    rates = read_rates(root)
    rates[key] = {"rows_per_s": round(float(rate), 2)}
    if overhead_s is not None:
        rates[key]["overhead_s"] = round(float(overhead_s), 2)
    atomic_write_json(root / THROUGHPUT_FILE, rates)


def measure_rate(task: TaskData, base_model: str, base_id: str, method: str, options: MethodOptions,
                 recipe: dict[str, Any], lr: float | None, device: str, steps: int = 2) -> tuple[float, float] | None:
    """(rows per second of a few training steps, the first not counted; seconds of everything else a probe
    does: model load, tokenisation, and evaluation estimated at three times the training rate)."""
    import torch

    from zoo_tupate.tuning.device import resolve_device
    from zoo_tupate.tuning.encoding import collate, encode, load_tokenizer
    from zoo_tupate.tuning.methods import build
    from zoo_tupate.tuning.scoring import loss_fn

    started = time.perf_counter()
    try:
        tokenizer = load_tokenizer(base_model)
        tunable = build(method, base_model, task.num_labels, task.problem, base_id, int(recipe["init_seed"]), options)
    except ZooError:
        return None
    dev = resolve_device(device)
    model = tunable.model.to(dev).train()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    enc = encode(tokenizer, task.train, task.problem, recipe["max_length"])
    encode(tokenizer, task.validation, task.problem, recipe["max_length"])
    tokenize_s = time.perf_counter() - started
    params = [p for _, p in tunable.trainable()]
    optimizer = torch.optim.AdamW(params, lr=lr or search_rates(method)[0])
    pad_id = tokenizer.pad_token_id or 0
    batch_size = recipe["batch_size"]
    rows, elapsed = 0, 0.0
    for step in range(steps + 1):
        index = [(step * batch_size + i) % len(enc) for i in range(min(batch_size, len(enc)))]
        batch = {k: v.to(dev) for k, v in collate(enc, index, pad_id).items()}
        started = time.perf_counter()
        loss = loss_fn(model(**batch).logits, enc.labels[index].to(dev), task.problem)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            elapsed += time.perf_counter() - started
            rows += len(index)
    if elapsed <= 0:
        return None
    rate = rows / elapsed
    eval_s = len(task.validation) * int(recipe["epochs"]) / (3 * rate)
    return round(rate, 2), round(load_s + tokenize_s + eval_s, 2)
