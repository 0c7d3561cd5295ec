"""Early probes for ``suggest --target DATASET``: tune the target briefly in each space the zoo holds.

A probe is only comparable with index entries tuned the same way: same base model, method and method
configuration (LoRA rank and targets, prefix length; all captured by the space's layout hash) and the
same initialisation seed. :func:`plan_probes` reads those from the index entries' metadata and says what
will be tuned and roughly how long it takes; :func:`ensure_probes` tunes what is not cached yet, embeds
the early checkpoints and returns the embeddings that land in a space of the index.

Probes are cached under ``<home>/cache/probes/<key>/`` (``early/`` adapter + ``probe.json``), where the
key hashes the data's content and every setting, so a second call only re-embeds (instant).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.errors import TuningError, ZooError
from zoo_tupate.tuning.data import TaskData, load_task
from zoo_tupate.tuning.methods import LR_GRIDS, METHOD_NAMES, MethodOptions, options_from_settings

PROBE_FILE = "probe.json"
THROUGHPUT_FILE = "throughput.json"


@dataclass
class ProbePlan:
    """One probe to tune: a method configuration and the index spaces its early checkpoint serves."""

    method: str
    options: dict[str, Any]
    init_seed: int
    lr: float
    spaces: list[str]
    views: list[tuple[str, str]]  # (repr, pooling) pairs to embed
    rows: int
    epochs: int
    key: str
    folder: Path
    cached: bool
    rows_per_s: float | None = None
    est_seconds: float | None = None
    entries: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready plan (what ``suggest`` can print before tuning)."""
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data


@dataclass
class _Group:
    method: str
    settings: dict[str, Any]
    spaces: set[str] = field(default_factory=set)
    views: set[tuple[str, str]] = field(default_factory=set)
    init_seeds: Counter = field(default_factory=Counter)
    lrs: Counter = field(default_factory=Counter)
    entries: int = 0


def probe_root(home: str | Path) -> Path:
    """``<home>/cache/probes``."""
    return Path(home).expanduser() / "cache" / "probes"


def plan_probes(
    dataset: str,
    index: Any,
    base_model: str,
    methods: list[str] | tuple[str, ...] | None = None,
    max_train: int | None = None,
    early_epochs: int = 2,
    base_model_id: str | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    max_eval: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    max_length: int = 128,
    device: str = "auto",
    measure: bool = True,
    task: TaskData | None = None,
) -> list[ProbePlan]:
    """What :func:`ensure_probes` will tune for ``dataset``: one plan per method configuration in the index.

    Returns an empty list when the index holds no entry of ``base_model`` for ``methods``. The time
    estimate is rows × epochs / rows-per-second, the rate measured by earlier probes of the same base
    model and method on this machine, else measured now on a few batches (``measure``), else ``None``.
    """
    from zoo_tupate.space import normalize_base_model

    if early_epochs < 1:
        raise TuningError(f"early_epochs must be at least 1, got {early_epochs}")
    wanted = list(methods or METHOD_NAMES)
    unknown = [m for m in wanted if m not in METHOD_NAMES]
    if unknown:
        raise TuningError(f"probes cannot tune method {unknown[0]!r} (choose from {', '.join(METHOD_NAMES)})")
    base_id = normalize_base_model(base_model, base_model_id)
    groups = _groups(index.entries(), base_id, wanted)
    if not groups:
        return []
    if task is None:
        task = load_task(dataset, text_columns, label_column, max_train, max_eval, seed)
    root = probe_root(index.home)
    rates = _read_rates(root)
    plans = []
    for group in groups:
        options = options_from_settings(group.method, group.settings)
        init_seed = group.init_seeds.most_common(1)[0][0] if group.init_seeds else 0
        lr = group.lrs.most_common(1)[0][0] if group.lrs else LR_GRIDS[group.method][0]
        settings = {
            "fingerprint": task.fingerprint(), "base_model_id": base_id, "method": group.method,
            "options": asdict(options), "init_seed": init_seed, "lr": lr, "seed": seed,
            "epochs": early_epochs, "batch_size": batch_size, "max_length": max_length,
        }
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]
        folder = root / key
        rate_key = f"{base_id}|{group.method}|{_device_name(device)}"
        plans.append(ProbePlan(
            method=group.method, options=asdict(options), init_seed=init_seed, lr=lr,
            spaces=sorted(group.spaces), views=sorted(group.views), rows=len(task.train), epochs=early_epochs,
            key=key, folder=folder, cached=(folder / "early" / "adapter_config.json").is_file(),
            rows_per_s=rates.get(rate_key), entries=group.entries,
        ))
    for plan in plans:
        if plan.rows_per_s is None and measure and not plan.cached:
            plan.rows_per_s = _measure_rate(task, base_model, base_id, plan, batch_size, max_length, device)
            if plan.rows_per_s:
                _write_rate(root, f"{base_id}|{plan.method}|{_device_name(device)}", plan.rows_per_s)
        if plan.cached:
            plan.est_seconds = 0.0
        elif plan.rows_per_s:
            plan.est_seconds = round(plan.rows * plan.epochs / plan.rows_per_s, 1)
    return plans


def ensure_probes(
    dataset: str,
    index: Any,
    base_model: str,
    methods: list[str] | tuple[str, ...] | None = None,
    max_train: int | None = None,
    early_epochs: int = 2,
    base_model_id: str | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    max_eval: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    max_length: int = 128,
    device: str = "auto",
    progress: bool = False,
    notes: list[str] | None = None,
) -> list:
    """Tune (or reuse) an early probe per method configuration in the index; return their embeddings.

    Each returned :class:`~zoo_tupate.Embedding` lies in a space of the index (others are dropped, with a
    line appended to ``notes``), one per space: a space several configurations serve (LoRA ``delta``
    ignores rank and alpha) gets the probe of the one with most index entries. Raises
    :class:`DatasetError`/:class:`TuningError` for unusable data or models.
    """
    from zoo_tupate import embed
    from zoo_tupate.space import normalize_base_model
    from zoo_tupate.tuning.train import TuneConfig, tune

    notes = notes if notes is not None else []
    task = load_task(dataset, text_columns, label_column, max_train, max_eval, seed)
    plans = plan_probes(dataset, index, base_model, methods, max_train, early_epochs, base_model_id,
                        text_columns, label_column, max_eval, seed, batch_size, max_length, device,
                        measure=False, task=task)
    base_id = normalize_base_model(base_model, base_model_id)
    best: dict[str, tuple[int, Any]] = {}
    for plan in plans:
        if not plan.cached:
            _tune_probe(plan, task, base_model, base_id, early_epochs, seed, batch_size, max_length, device,
                        progress, TuneConfig, tune)
        for repr_, pooling in plan.views:
            try:
                emb = embed(plan.folder / "early", repr=repr_, pooling=pooling, base_model_id=base_id)
            except ZooError as exc:
                notes.append(f"probe {plan.method} ({repr_}/{pooling}): cannot embed ({exc})")
                continue
            if emb.space not in plan.spaces:
                notes.append(f"probe {plan.method} ({repr_}/{pooling}) landed in {emb.space}, which no index "
                             f"entry shares ({', '.join(plan.spaces)}): left out")
                continue
            emb.metadata.update({"probe": True, "dataset": task.display_name, "probe_key": plan.key,
                                 "epochs": plan.epochs, "init_seed": plan.init_seed, "lr": plan.lr})
            if emb.space not in best or plan.entries > best[emb.space][0]:
                best[emb.space] = (plan.entries, emb)
    return [emb for _, emb in best.values()]


def _tune_probe(plan: ProbePlan, task: TaskData, base_model: str, base_id: str, epochs: int, seed: int,
                batch_size: int, max_length: int, device: str, progress: bool, config_cls: Any, tune: Any) -> None:
    plan.folder.parent.mkdir(parents=True, exist_ok=True)
    options = MethodOptions(**{**plan.options, "lora_targets": _tuple(plan.options.get("lora_targets"))})
    with tempfile.TemporaryDirectory(prefix="probe-", dir=plan.folder.parent) as tmp:
        config = config_cls(
            dataset=task.name, base_model=base_model, method=plan.method, base_model_id=base_id,
            epochs=epochs, early_epochs=epochs, lr=plan.lr, batch_size=batch_size, max_length=max_length,
            device=device, output=Path(tmp), seed=seed, init_seed=plan.init_seed, options=options,
            cards=False, save_best=False,
        )
        started = time.perf_counter()
        result = tune(config, progress=progress, task=task)[0]
        staged = Path(tmp) / "stage"
        staged.mkdir()
        shutil.move(str(result.early_dir), str(staged / "early"))
        shutil.copy2(result.log_path, staged / "train_log.json")
        record = {**plan.to_json(), "cached": True, "dataset": task.display_name, "wall_s":
                  round(time.perf_counter() - started, 3), "rows_per_s": round(result.chosen.rows_per_s, 2),
                  "early_metric": result.chosen.history[-1]["metric"], "metric": result.chosen.metric}
        (staged / PROBE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if plan.folder.exists():
            shutil.rmtree(plan.folder)
        staged.rename(plan.folder)  # atomic within one file system: a half-written probe is never cached
    plan.cached = True
    plan.rows_per_s = result.chosen.rows_per_s
    _write_rate(plan.folder.parent, f"{base_id}|{plan.method}|{_device_name(device)}", result.chosen.rows_per_s)


def _tuple(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if value else None


def _groups(entries: list[Any], base_id: str, methods: list[str]) -> list[_Group]:
    """Index entries of ``base_id`` grouped by method configuration."""
    from zoo_tupate.space import parse_space

    groups: dict[str, _Group] = {}
    for entry in entries:
        parts = parse_space(entry.space)
        if parts["base_model"] != base_id or entry.method not in methods:
            continue
        config = (entry.metadata or {}).get("config") or {}
        zoo = config.get("zoo_tupate") if isinstance(config.get("zoo_tupate"), dict) else {}
        settings = dict(zoo.get("method_config") or _settings_from_peft(entry.method, config))
        key = json.dumps([entry.method, settings], sort_keys=True, default=str)
        group = groups.setdefault(key, _Group(entry.method, settings))
        group.spaces.add(entry.space)
        group.views.add((entry.repr, entry.pooling))
        group.init_seeds[int(zoo.get("init_seed", config.get("init_seed", 0)) or 0)] += 1
        if isinstance(zoo.get("lr"), (int, float)):
            group.lrs[float(zoo["lr"])] += 1
        group.entries += 1
    return sorted(groups.values(), key=lambda g: (METHOD_NAMES.index(g.method), json.dumps(g.settings)))


def _settings_from_peft(method: str, config: dict[str, Any]) -> dict[str, Any]:
    """Method settings from a PEFT adapter config summary (entries not tuned by zoo-tupate)."""
    if method == "lora":
        out: dict[str, Any] = {}
        if isinstance(config.get("r"), int):
            out["r"] = config["r"]
        if isinstance(config.get("lora_alpha"), (int, float)):
            out["lora_alpha"] = config["lora_alpha"]
        targets = config.get("target_modules")
        if isinstance(targets, list) and targets:
            out["target_modules"] = sorted(str(t) for t in targets)
        return out
    if method == "prefix" and isinstance(config.get("num_virtual_tokens"), int):
        return {"num_virtual_tokens": config["num_virtual_tokens"], "prefix_projection": False}
    return {}


def _device_name(device: str) -> str:
    from zoo_tupate.tuning.train import resolve_device

    try:
        return resolve_device(device).type
    except TuningError:
        return device


def _read_rates(root: Path) -> dict[str, float]:
    try:
        data = json.loads((root / THROUGHPUT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and v > 0} if isinstance(
        data, dict) else {}


def _write_rate(root: Path, key: str, rate: float) -> None:
    if not rate or rate <= 0:
        return
    root.mkdir(parents=True, exist_ok=True)
    rates = _read_rates(root)
    rates[key] = round(float(rate), 2)
    tmp = root / f".{THROUGHPUT_FILE}.tmp"
    tmp.write_text(json.dumps(rates, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(root / THROUGHPUT_FILE)


def _measure_rate(task: TaskData, base_model: str, base_id: str, plan: ProbePlan, batch_size: int,
                  max_length: int, device: str, steps: int = 2) -> float | None:
    """Rows per second of a few training steps (the first, warm-up step not counted)."""
    import torch

    from zoo_tupate.tuning.methods import build
    from zoo_tupate.tuning.train import collate, encode, load_tokenizer, loss_fn, resolve_device

    try:
        tokenizer = load_tokenizer(base_model)
        options = MethodOptions(**{**plan.options, "lora_targets": _tuple(plan.options.get("lora_targets"))})
        tunable = build(plan.method, base_model, task.num_labels, task.problem, base_id, plan.init_seed, options)
    except ZooError:
        return None
    dev = resolve_device(device)
    model = tunable.model.to(dev).train()
    params = [p for _, p in tunable.trainable()]
    optimizer = torch.optim.AdamW(params, lr=plan.lr)
    enc = encode(tokenizer, task.train, task.problem, max_length)
    pad_id = tokenizer.pad_token_id or 0
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
    return round(rows / elapsed, 2) if elapsed > 0 else None
