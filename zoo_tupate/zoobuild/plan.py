"""The plan of a zoo build: one item per (catalog task, method), saying whether it is pulled or tuned.

An item is *pulled* when the catalog knows a Hub adapter (or embedding card) of that task for the base
model and method; otherwise it is *tuned* on the task's data (``--data-dir/<task>`` or the catalog's Hub
dataset) with the probe recipe (:func:`zoo_tupate.tuning.recipes.default_recipe`), indexed under
:func:`entry_name` and, with ``--push ORG``, published to :func:`push_repo`. What is already done (a
tuned folder, an index entry, a push) is read from the build folder, so planning again after a crash
finds only what is missing. Planning writes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.cards.catalog import TaskCard, adapter_repos, match
from zoo_tupate.core.cachefiles import read_json
from zoo_tupate.core.errors import CatalogError
from zoo_tupate.embedding.space import normalize_base_model
from zoo_tupate.tuning.recipes import default_recipe

#: Methods a build tunes by default (those of the starter zoo).
DEFAULT_METHODS: tuple[str, ...] = ("lora", "prefix")
TUNABLE: tuple[str, ...] = ("lora", "bitfit", "prefix", "bottleneck")
#: Rough seconds per probe of a MiniLM-sized model (1,000 rows x 2 epochs) when this build has measured
#: none yet: CPU from the starter zoo build (22 probes in about 30 min on 2 cores), CUDA from issue 14
#: (22 s of wall time per probe process on an H200, imports and loading included).
PROBE_S = {"cpu": 80.0, "cuda": 22.0}
MINILM_PARAMS = 22.7e6
PULL_S, PUSH_S = 3.0, 3.0
#: Seconds of a probe that do not scale with the model (process start, imports, data); rough.
PROBE_OVERHEAD_S = 3.0


@dataclass
class BuildConfig:
    """What ``zoo build`` was asked for."""

    patterns: list[str]
    base_model: str
    work: Path
    methods: tuple[str, ...] = DEFAULT_METHODS
    base_model_id: str | None = None
    data_dir: Path | None = None
    push_org: str | None = None
    private: bool = False
    device: str = "auto"
    gpus_per_job: float = 1.0
    max_train: int | None = None  # cap on each task's training rows (default: the recipe's)

    def base_id(self) -> str:
        """The base model's normalised identity (as in space names)."""
        return normalize_base_model(self.base_model, self.base_model_id)

    def base_short(self) -> str:
        return _safe(self.base_id().split("/")[-1])


@dataclass
class Item:
    """One (task, method) of the build and what is known about it."""

    task: str
    method: str
    action: str  # "pull" or "tune"
    entry: str
    repo: str | None = None  # pull: the Hub repo
    revision: str | None = None
    dataset: str | None = None  # tune: a local folder or a Hub id[:config]
    text_columns: list[str] | None = None
    label_column: str | None = None
    push_repo: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    done: dict[str, Any] = field(default_factory=dict)  # step -> record, read from the build state
    problem: str = ""  # why the item cannot run (planned as failed)
    rows: int | None = None  # tune: the training rows the recipe will use (for the estimate)

    @property
    def key(self) -> str:
        return f"{self.task}/{self.method}"

    @property
    def slug(self) -> str:
        return _safe(f"{self.task.replace('/', '-')}-{self.method}")

    def steps(self) -> list[str]:
        """The steps still to do, in order."""
        if self.problem:
            return []
        if self.action == "pull":
            return ["pull"]
        wanted = ["tune", "index"] + (["push"] if self.push_repo else [])
        return [s for s in wanted if s not in self.done]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key, "steps": self.steps()}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def entry_name(task: str, method: str, base_short: str) -> str:
    """The index name of a built entry: ``glue/rte-lora@all-minilm-l6-v2`` (never a Hub repo id or a starter
    task name, so it collides with neither)."""
    return f"{task}-{method}@{base_short}"


def push_repo(org: str, task: str, method: str, base_short: str) -> str:
    """The Hub repo a built entry is pushed to: ``ORG/all-minilm-l6-v2-glue-rte-lora``."""
    flat = task.replace("/", "-")
    return f"{org}/{_safe(f'{base_short}-{flat}-{method}')}"


def state_path(work: Path, item: Item) -> Path:
    return work / "state" / f"{item.slug}.json"


def tuned_dir(work: Path, item: Item) -> Path:
    """The item's tuned method folder (``early/`` and ``train_log.json``), complete when it exists."""
    return work / "runs" / item.task.replace("/", "-") / item.method


def find_data(card: TaskCard, data_dir: Path | None) -> tuple[str | None, bool]:
    """(dataset, local): ``data_dir/<task>`` (also ``<family>-<task>``, ``<family>/<task>``) when it exists,
    else the card's Hub dataset (``hub_id[:config]``), else ``None``."""
    if data_dir is not None:
        for rel in (card.short_name, card.name.replace("/", "-"), card.name):
            folder = data_dir / rel
            if folder.is_dir():
                return str(folder), True
    if card.dataset.hub_id:
        return card.dataset.hub_id + (f":{card.dataset.config}" if card.dataset.config else ""), False
    return None, False


def plan(config: BuildConfig, catalog: dict[str, TaskCard] | None = None) -> list[Item]:
    """The build's items, sorted by task then method (raises :class:`CatalogError` for unknown patterns)."""
    cards = match(config.patterns, catalog)
    if not cards:
        raise CatalogError(f"nothing to build for {' '.join(config.patterns)}")
    base_short = config.base_short()
    items = []
    for card in cards:
        for method in config.methods:
            items.append(_item(config, card, method, base_short))
    return items


def _item(config: BuildConfig, card: TaskCard, method: str, base_short: str) -> Item:
    item = Item(task=card.name, method=method, action="tune", entry=entry_name(card.name, method, base_short))
    found = adapter_repos(card, config.base_model, [method])
    if not found and config.base_model_id:
        found = adapter_repos(card, config.base_model_id, [method])
    if found:
        repo = found[0][0]
        pinned = {a.repo: a.revision for a in card.adapters}
        item.action, item.repo, item.revision, item.entry = "pull", repo, pinned.get(repo), repo
        return item
    if method not in TUNABLE:
        item.problem = f"no Hub adapter known, and {method} cannot be tuned (tunable: {', '.join(TUNABLE)})"
        return item
    dataset, local = find_data(card, config.data_dir)
    if dataset is None:
        item.problem = "no Hub adapter known and no data to tune on (no --data-dir folder, no Hub dataset)"
        return item
    item.dataset = dataset
    if not local:
        item.text_columns, item.label_column = list(card.dataset.text_columns), card.dataset.label_column
    item.recipe = default_recipe(config.base_id(), method).to_json()
    if config.max_train:
        item.recipe["max_train"] = config.max_train
    item.rows = min(int(item.recipe["max_train"]), int(card.train_size)) if card.train_size else None
    if config.push_org:
        item.push_repo = push_repo(config.push_org, card.name, method, base_short)
    item.done = _done(config.work, item)
    return item


def _done(work: Path, item: Item) -> dict[str, Any]:
    """What an earlier run finished: the state file's records, ``tune`` only while its folder exists."""
    state = read_json(state_path(work, item)) or {}
    done = {k: v for k, v in state.items() if k in ("tune", "index", "push")}
    folder = tuned_dir(work, item)
    if (folder / "early" / "adapter_config.json").is_file():
        done.setdefault("tune", _tune_record(folder))
    else:
        done = {}  # without the tuned folder nothing after it can be trusted
    if done.get("push", {}).get("repo") not in (None, item.push_repo):
        done.pop("push")  # pushed elsewhere: push again to the repo asked for now
    return done


def _tune_record(folder: Path) -> dict[str, Any]:
    log = read_json(folder / "train_log.json") or {}
    return {"lr": log.get("lr"), "metric": log.get("metric"), "early_metric": log.get("early_metric"),
            "wall_s": log.get("wall_s"), "train_s": log.get("train_s")}


# ------------------------------------------------------------------------------------------ estimate


def estimate_s(items: list[Item], config: BuildConfig, slots: int,
               rates: dict[str, dict[str, float]] | None = None) -> tuple[float, str]:
    """Seconds the build's remaining work should take with ``slots`` jobs at once, and what that rests on.

    Per probe, in this order: the mean wall time of this build's finished probes; else the rows/s and
    per-probe overhead ``suggest`` measured on this machine for the base model and method (``rates``, from
    ``throughput.json``), times the item's rows and epochs; else a rough figure scaled by rows and model size.
    """
    tuning = [i for i in items if "tune" in i.steps()]
    seconds = [_probe_seconds(i, config, items, rates or {}) for i in tuning]
    bases = sorted({basis for _, basis in seconds})
    pulls = sum(i.action == "pull" for i in items)
    pushes = sum("push" in i.steps() for i in items)
    at_once = max(1, min(slots, len(tuning) or 1))
    total = sum(s for s, _ in seconds) / at_once + pulls * PULL_S / 4 + pushes * PUSH_S
    mean = sum(s for s, _ in seconds) / len(seconds) if seconds else 0.0
    return total, f"{len(tuning)} probe(s), mean {mean:.0f} s each, {at_once} at once ({'; '.join(bases) or '-'})"


def _probe_seconds(item: Item, config: BuildConfig, items: list[Item],
                   rates: dict[str, dict[str, float]]) -> tuple[float, str]:
    measured = [float(i.done["tune"]["wall_s"]) for i in items
                if i.method == item.method and i.done.get("tune", {}).get("wall_s")]
    if measured:
        return sum(measured) / len(measured), "measured by this build"
    device = device_name(config)
    rows = item.rows or int(item.recipe.get("max_train") or 1000)
    epochs = int(item.recipe.get("epochs") or 2)
    rate = rates.get(f"{config.base_id()}|{item.method}|{device}")
    if rate and rate.get("rows_per_s"):
        return rows * epochs / rate["rows_per_s"] + rate.get("overhead_s", PROBE_OVERHEAD_S), \
            "rows/s measured on this machine"
    params = _param_count(config.base_model)
    scale = params / MINILM_PARAMS if params else 1.0
    work = (PROBE_S[device] - PROBE_OVERHEAD_S) * scale * (rows * epochs) / (1000 * 2)
    return PROBE_OVERHEAD_S + work, (f"rough: {PROBE_S[device]:.0f} s per MiniLM probe of 1,000 rows x 2 epochs "
                                     f"on {device}, scaled by rows" + (" and model size" if params else ""))


def device_name(config: BuildConfig) -> str:
    """``cuda`` or ``cpu``: where this build's probes tune (the key its measured rates are kept under)."""
    import torch

    wants_cuda = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    return "cuda" if wants_cuda else "cpu"


def _param_count(base_model: str) -> float | None:
    """Rough parameter count from a local ``config.json`` (embeddings + 12·hidden² per layer)."""
    from zoo_tupate.core.models import resolve_model

    try:
        config = json.loads((Path(resolve_model(base_model)) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    hidden = config.get("hidden_size") or config.get("dim")
    layers = config.get("num_hidden_layers") or config.get("n_layers")
    vocab = config.get("vocab_size") or 0
    if not hidden or not layers:
        return None
    return float(vocab * hidden + 12 * layers * hidden * hidden)
