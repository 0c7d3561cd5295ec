"""Early probes for ``suggest --target DATASET``: tune the target briefly in each space the zoo holds.

A probe is only comparable with index entries tuned the same way: same base model, method and method
configuration (LoRA rank and targets, prefix length; all captured by the space's layout hash) and the
same recipe (learning rate, rows, epochs, max length, batch size, seeds: see :mod:`.recipes`).
:func:`plan_probes` reads those from the index entries' metadata and says what will be tuned and roughly
how long it takes; :func:`ensure_probes` tunes what is not cached yet, embeds
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

from zoo_tupate.core.errors import TuningError, ZooError
from zoo_tupate.core.storage import read_json
from zoo_tupate.tuning.data import TaskData, load_task
from zoo_tupate.tuning.methods import METHOD_NAMES, MethodOptions, options_from_settings
from zoo_tupate.tuning.recipes import RECORDED_KEYS, default_recipe, search_rates
from zoo_tupate.tuning.stuck import majority_rate, stuck_note
from zoo_tupate.tuning.throughput import measure_rate, rate_key, read_rates, write_rate

PROBE_FILE = "probe.json"


@dataclass
class ProbePlan:
    """One probe to tune: a method configuration, its recipe, and the index spaces its checkpoint serves."""

    method: str
    options: dict[str, Any]
    recipe: dict[str, Any]  # zoo_tupate.tuning.recipes.Recipe as JSON: lr (None: search), rows, epochs, ...
    spaces: list[str]
    views: list[tuple[str, str]]  # (repr, pooling) pairs to embed
    rows: int
    key: str
    folder: Path
    cached: bool
    rows_per_s: float | None = None
    overhead_s: float | None = None
    est_seconds: float | None = None
    entries: int = 0

    @property
    def lr(self) -> float | None:
        """The learning rate (``None``: searched)."""
        return self.recipe["lr"]

    @property
    def epochs(self) -> int:
        return int(self.recipe["epochs"])

    @property
    def init_seed(self) -> int:
        return int(self.recipe["init_seed"])

    def method_options(self) -> MethodOptions:
        """The method configuration as :class:`MethodOptions` (what ``build`` takes)."""
        targets = self.options.get("lora_targets")
        return MethodOptions(**{**self.options, "lora_targets": tuple(targets) if targets else None})

    def runs(self) -> int:
        """Training runs the probe takes (one per searched rate)."""
        return 1 if self.lr is not None else len(search_rates(self.method))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready plan (what ``suggest`` can print before tuning)."""
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["lr"], data["epochs"], data["init_seed"] = self.lr, self.epochs, self.init_seed
        return data


class ProbeSet(list):
    """The probe plans for one dataset (a list of :class:`ProbePlan`) and the dataset's rows as loaded for them.

    :func:`ensure_probes` and ``suggest --verify`` take it, so one call loads and plans a dataset once.
    """

    def __init__(self, plans: list[ProbePlan] | tuple = (), tasks: dict[tuple, TaskData] | None = None,
                 dataset: str = "", text_columns: list[str] | None = None, label_column: str | None = None) -> None:
        super().__init__(plans)
        self.tasks = tasks if tasks is not None else {}
        self.dataset, self.text_columns, self.label_column = dataset, text_columns, label_column

    def task(self, recipe: dict[str, Any]) -> TaskData:
        """The dataset sampled as ``recipe`` says (loaded once per sampling)."""
        return _task(self.tasks, self.dataset, self.text_columns, self.label_column, recipe)

    def subset(self, method: str) -> ProbeSet:
        """The plans of one method, sharing the loaded rows."""
        return ProbeSet([p for p in self if p.method == method], self.tasks, self.dataset, self.text_columns,
                        self.label_column)


@dataclass
class _Group:
    method: str
    settings: dict[str, Any]
    spaces: set[str] = field(default_factory=set)
    views: set[tuple[str, str]] = field(default_factory=set)
    recorded: dict[str, Counter] = field(default_factory=dict)
    entries: int = 0


def probe_root(home: str | Path) -> Path:
    """``<home>/cache/probes``."""
    return Path(home).expanduser() / "cache" / "probes"


def plan_probes(
    dataset: str,
    index: Any,
    base_model: str,
    methods: list[str] | tuple[str, ...] | None = None,
    base_model_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    device: str = "auto",
    measure: bool = True,
) -> ProbeSet:
    """What :func:`ensure_probes` will tune for ``dataset``: one plan per method configuration in the index.

    Each plan's recipe (rate, rows, epochs, max length, batch size, seeds) is what the index entries it
    will be compared with recorded (the most common value), else the defaults of
    :mod:`~zoo_tupate.tuning.recipes` (calibrated rate, else a search); ``overrides`` (e.g. ``max_train``)
    win over both. Returns no plan when the index holds no entry of ``base_model`` for ``methods``. The
    dataset is loaded here, once per sampling, and travels with the plans (:class:`ProbeSet`).
    The time estimate (model load, tokenisation, training and evaluation) comes from earlier probes of
    the same base model and method on this machine, else from a few batches measured now (``measure``).
    """
    from zoo_tupate.embedding.space import normalize_base_model

    wanted = list(methods or METHOD_NAMES)
    unknown = [m for m in wanted if m not in METHOD_NAMES]
    if unknown:
        raise TuningError(f"probes cannot tune method {unknown[0]!r} (choose from {', '.join(METHOD_NAMES)})")
    base_id = normalize_base_model(base_model, base_model_id)
    groups = _groups(index.entries(), base_id, wanted)
    plans = ProbeSet([], None, dataset, text_columns, label_column)
    if not groups:
        return plans
    root = probe_root(index.home)
    rates = read_rates(root)
    for group in groups:
        options = options_from_settings(group.method, group.settings)
        recipe = _recipe(group, base_id, overrides or {})
        task = plans.task(recipe)
        settings = {
            "fingerprint": task.fingerprint(), "base_model_id": base_id, "method": group.method,
            "options": asdict(options), **{k: v for k, v in recipe.items() if k != "lr_source"},
        }
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]
        folder = root / key
        rate = rates.get(rate_key(base_id, group.method, device), {})
        plans.append(ProbePlan(
            method=group.method, options=asdict(options), recipe=recipe, spaces=sorted(group.spaces),
            views=sorted(group.views), rows=len(task.train), key=key, folder=folder,
            cached=(folder / "early" / "adapter_config.json").is_file(), rows_per_s=rate.get("rows_per_s"),
            overhead_s=rate.get("overhead_s"), entries=group.entries,
        ))
    for plan in plans:
        if plan.rows_per_s is None and measure and not plan.cached:
            task = plans.task(plan.recipe)
            measured = measure_rate(task, base_model, base_id, plan.method, plan.method_options(), plan.recipe,
                                    plan.lr, device)
            if measured:
                plan.rows_per_s, plan.overhead_s = measured
                write_rate(root, rate_key(base_id, plan.method, device), *measured)
        if plan.cached:
            plan.est_seconds = 0.0
        elif plan.rows_per_s:
            train = plan.rows * plan.epochs / plan.rows_per_s
            plan.est_seconds = round(plan.runs() * (train + (plan.overhead_s or 0.0)), 1)
    return plans


def ensure_probes(
    dataset: str,
    index: Any,
    base_model: str,
    methods: list[str] | tuple[str, ...] | None = None,
    base_model_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    device: str = "auto",
    progress: bool = False,
    notes: list[str] | None = None,
    planned: ProbeSet | None = None,
) -> list:
    """Tune (or reuse) an early probe per method configuration in the index; return their embeddings.

    Each returned :class:`~zoo_tupate.Embedding` lies in a space of the index (others are dropped, with a
    line appended to ``notes``), one per space: a space several configurations serve (LoRA ``delta``
    ignores rank and alpha) gets the probe of the one with most index entries. The embeddings' metadata
    carries the probe's recipe and its own validation score. ``planned``: what :func:`plan_probes` returned for
    the same arguments (its plans and loaded rows are reused; planned here when ``None``). Raises
    :class:`DatasetError`/:class:`TuningError` for unusable data or models.
    """
    from zoo_tupate.embedding.checkpoint import embed
    from zoo_tupate.embedding.space import normalize_base_model

    notes = notes if notes is not None else []
    plans = planned if planned is not None else plan_probes(
        dataset, index, base_model, methods, base_model_id, overrides, text_columns, label_column, device,
        measure=False)
    base_id = normalize_base_model(base_model, base_model_id)
    best: dict[str, tuple[int, Any]] = {}
    for plan in plans:
        if not plan.cached:
            _tune_probe(plan, plans.task(plan.recipe), base_model, base_id, device, progress)
            plan.cached = True
        record = _json_object(plan.folder / PROBE_FILE)
        stuck = stuck_note(plan.method, record)
        if stuck:
            notes.append(stuck)
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
            emb.metadata.update({"probe": True, "dataset": record.get("dataset"), "probe_key": plan.key,
                                 "epochs": plan.epochs, "init_seed": plan.init_seed,
                                 "lr": record.get("lr", plan.lr), "recipe": plan.recipe,
                                 "probe_metric": record.get("metric"), "probe_score": record.get("early_metric")})
            if emb.space not in best or plan.entries > best[emb.space][0]:
                best[emb.space] = (plan.entries, emb)
    return [emb for _, emb in best.values()]


def _recipe(group: _Group, base_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The group's recipe: overrides, else what its entries recorded, else the defaults."""
    recipe = default_recipe(base_id, group.method).to_json()
    recorded = {k: c.most_common(1)[0][0] for k, c in group.recorded.items() if c}
    if recorded.get("lr") is not None:
        recipe["lr_source"] = "zoo"
    recipe.update(recorded)
    recipe.update({k: v for k, v in overrides.items() if v is not None})
    return recipe


def _task(tasks: dict[tuple, TaskData], dataset: str, text_columns: list[str] | None, label_column: str | None,
          recipe: dict[str, Any]) -> TaskData:
    """The dataset sampled as ``recipe`` says (loaded once per sampling)."""
    key = (recipe["max_train"], recipe["max_eval"], recipe["seed"])
    if key not in tasks:
        tasks[key] = load_task(dataset, text_columns, label_column, *key)
    return tasks[key]


def _tune_probe(plan: ProbePlan, task: TaskData, base_model: str, base_id: str, device: str,
                progress: bool) -> None:
    from zoo_tupate.tuning.config import TuneConfig
    from zoo_tupate.tuning.train import tune

    plan.folder.parent.mkdir(parents=True, exist_ok=True)
    options = plan.method_options()
    recipe = plan.recipe
    with tempfile.TemporaryDirectory(prefix="probe-", dir=plan.folder.parent) as tmp:
        config = TuneConfig(
            dataset=task.name, base_model=base_model, method=plan.method, base_model_id=base_id,
            epochs=plan.epochs, early_epochs=plan.epochs, max_train=recipe["max_train"],
            max_eval=recipe["max_eval"], lr=plan.lr, batch_size=recipe["batch_size"],
            max_length=recipe["max_length"], device=device, output=Path(tmp), seed=recipe["seed"],
            init_seed=plan.init_seed, options=options, cards=False, save_best=False,
        )
        started = time.perf_counter()
        result = tune(config, progress=progress, task=task)[0]
        wall = time.perf_counter() - started
        staged = Path(tmp) / "stage"
        staged.mkdir()
        shutil.move(str(result.early_dir), str(staged / "early"))
        shutil.copy2(result.log_path, staged / "train_log.json")
        record = {**plan.to_json(), "cached": True, "dataset": task.display_name, "wall_s": round(wall, 3),
                  "lr": result.chosen.lr, "rows_per_s": round(result.chosen.rows_per_s, 2),
                  "early_metric": result.chosen.history[-1]["metric"], "metric": result.chosen.metric,
                  "notes": result.notes, "validation_rows": len(task.validation),
                  "majority_rate": majority_rate(task.validation.labels) if task.problem == "classification"
                  else None}
        (staged / PROBE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if plan.folder.exists():
            shutil.rmtree(plan.folder)
        staged.rename(plan.folder)  # atomic within one file system: a half-written probe is never cached
    plan.cached = True
    plan.rows_per_s = result.chosen.rows_per_s
    train_s = sum(r.train_s for r in result.runs)
    overhead = max(0.0, wall - train_s) / max(1, len(result.runs))
    write_rate(plan.folder.parent, rate_key(base_id, plan.method, device), result.chosen.rows_per_s, overhead)


def _groups(entries: list[Any], base_id: str, methods: list[str]) -> list[_Group]:
    """Index entries of ``base_id`` grouped by method configuration."""
    from zoo_tupate.embedding.space import parse_space

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
        for name, value in _recorded(zoo, config).items():
            group.recorded.setdefault(name, Counter())[value] += 1
        group.entries += 1
    return sorted(groups.values(), key=lambda g: (METHOD_NAMES.index(g.method), json.dumps(g.settings)))


def _recorded(zoo: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The recipe settings an entry recorded (zoo-tupate checkpoints; ``init_seed`` also from configs)."""
    out: dict[str, Any] = {}
    for name in RECORDED_KEYS:
        value = zoo.get(name)
        if name == "init_seed" and value is None:
            value = config.get("init_seed")
        if name == "lr" and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            out[name] = float(value)
        elif name == "max_train" and name in zoo and (value is None or isinstance(value, int)):
            out[name] = value  # None (all rows) is a recorded choice
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out[name] = value
    return out


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
    if method == "bottleneck":
        from zoo_tupate.tuning.bottleneck import pfeiffer_settings

        return pfeiffer_settings(config) or {}
    return {}


def _json_object(path: Path) -> dict[str, Any]:
    data = read_json(path)
    return data if isinstance(data, dict) else {}
