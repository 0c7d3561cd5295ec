"""Turning a ``suggest --target`` argument into embeddings: a checkpoint, an index entry, a Hub repo or a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_tupate.answer.checkpoint_target import checkpoint_embeddings
from zoo_tupate.cards.names import catalog_target
from zoo_tupate.core.errors import EntryNotFound, IncompatibleSpace, TuningError, UnsupportedCheckpoint
from zoo_tupate.embedding.vectors import REPRS, Embedding
from zoo_tupate.store.index import Index
from zoo_tupate.store.starter import STARTER_HUB_ID, STARTER_MODEL

DATASET_FILES = ("train.jsonl", "train.csv", "train.parquet", "train.json")
KINDS = ("auto", "checkpoint", "entry", "hub", "dataset")
#: What a folder needs to be read as a dataset target.
DATASET_HINT = ("as a dataset target, a folder needs train.* and validation.* (or dev.*) rows (jsonl, csv, "
                "parquet or json) and --base-model MODEL")


@dataclass
class Target:
    """Resolved target: its embeddings, the names to keep out of the ranking, and how it was found."""

    embeddings: list[Embedding]
    exclude: set[str] = field(default_factory=set)
    kind: str = "checkpoint"
    notes: list[str] = field(default_factory=list)
    probes: Any = None  # a dataset target's ProbeSet (plans + loaded rows), reused by --verify


def is_dataset_folder(path: Path) -> bool:
    """A local folder holding ``train.*`` rows rather than adapter weights."""
    return path.is_dir() and any((path / name).exists() for name in DATASET_FILES)


def looks_like_path(target: str) -> bool:
    """A target that can only be a local path (``./x``, ``/x``, ``~/x``, ``a/b/c``), never a Hub id."""
    if target.lower().startswith("hub:"):
        return False
    bare = target.split("@", 1)[0]
    return target.startswith((".", "/", "~", "\\")) or bare.count("/") > 1 or bare.endswith("/")


def resolve_target(index: Index, target: str, kind: str = "auto", reprs: tuple[str, ...] = REPRS,
                   pooling: str = "layer-mean", base_model_id: str | None = None, **probe_options: Any) -> Target:
    """Find the target's embeddings. ``auto`` tries a local dataset folder, a checkpoint path, an index
    entry, then the Hub. Dataset targets take ``probe_options``: ``base_model`` (required), ``methods``,
    ``max_train``, ``text_columns``, ``label_column``, ``announce`` (called with the probe plans before tuning) and ``progress``."""
    path = Path(target).expanduser()
    if kind in ("auto", "dataset") and is_dataset_folder(path) or kind == "dataset":
        return _dataset_target(index, target, reprs, base_model_id, probe_options)
    if kind in ("auto", "checkpoint") and (path.exists() or path.is_symlink()):
        try:
            embs = checkpoint_embeddings(index, path, reprs, pooling, base_model_id)
        except UnsupportedCheckpoint as exc:
            if kind == "auto" and path.is_dir() and "no adapter weights found" in str(exc):
                raise UnsupportedCheckpoint(f"{exc}; {DATASET_HINT}") from None
            raise
        for emb in embs:
            if emb.degenerate:
                raise UnsupportedCheckpoint(f"{path}: degenerate target ({emb.degenerate_reason})")
        return Target(embs, kind="checkpoint")
    if kind == "checkpoint":
        raise UnsupportedCheckpoint(f"{path}: no such file or directory")
    if kind in ("auto", "entry"):
        try:
            entries = index.get(target)
            return Target([index.embedding_of(e) for e in entries], exclude={target}, kind="entry")
        except EntryNotFound:
            if kind == "entry":
                raise
    if kind == "auto" and looks_like_path(target):
        raise UnsupportedCheckpoint(f"{path}: no such file or directory (nor an index entry)")
    if kind == "auto":
        name = catalog_target(target, lambda n: bool(_entries(index, n)))
        if name is not None:
            entries = index.get(name)
            notes = [] if name == target else [f"{target}: taken as the catalog task {name}"]
            return Target([index.embedding_of(e) for e in entries], exclude={name}, kind="entry", notes=notes)
    return _hub_target(index, target, reprs, pooling, base_model_id)


def _entries(index: Index, name: str) -> list:
    try:
        return index.get(name)
    except EntryNotFound:
        return []


def _hub_target(index: Index, target: str, reprs: tuple[str, ...], pooling: str,
                base_model_id: str | None) -> Target:
    from zoo_tupate.answer.hub_target import resolve_target as hub_resolve

    embeddings = hub_resolve(target, index, reprs=reprs, pooling=pooling, base_model_id=base_model_id)
    names = {target.split("@", 1)[0].removeprefix("hub:")}
    return Target(list(embeddings), exclude=names, kind="hub")


def _dataset_target(index: Index, target: str, reprs: tuple[str, ...], base_model_id: str | None,
                    options: dict[str, Any]) -> Target:
    """Tune (or reuse cached) early probes of the dataset in each space the zoo holds for the base model."""
    from zoo_tupate.tuning.probe import ensure_probes, plan_probes

    base_model = options.get("base_model")
    if not base_model:
        raise TuningError(f"{target}: a dataset target needs --base-model (the model its probes are tuned on; "
                          f"the starter zoo's is {STARTER_HUB_ID})")
    methods = options.get("methods")
    overrides = {"max_train": options.get("max_train")}
    columns = {"text_columns": options.get("text_columns"), "label_column": options.get("label_column")}
    plans = plan_probes(target, index, base_model, methods=methods, base_model_id=base_model_id,
                        overrides=overrides, **columns)
    if not plans:
        raise IncompatibleSpace(no_comparable_entries(index, target, base_model, base_model_id, methods))
    announce = options.get("announce")
    if announce is not None:
        announce(plans)
    notes: list[str] = []
    embeddings = ensure_probes(target, index, base_model, methods=methods, base_model_id=base_model_id,
                               overrides=overrides, progress=bool(options.get("progress")), notes=notes,
                               planned=plans, **columns)
    return Target([e for e in embeddings if e.repr in reprs], kind="dataset", notes=notes, probes=plans)


def no_comparable_entries(index: Any, target: str, base_model: str, base_model_id: str | None,
                          methods: list[str] | None) -> str:
    """Why no probe of ``target`` would be comparable, what the zoo holds, and how to build entries."""
    from zoo_tupate.embedding.space import normalize_base_model, parse_space

    base_id = normalize_base_model(base_model, base_model_id)
    wanted = methods or ["lora", "bitfit", "prefix", "bottleneck"]
    held: dict[str, set[str]] = {}
    for entry in index.entries():
        held.setdefault(parse_space(entry.space)["base_model"], set()).add(entry.method)
    holds = "; ".join(f"{b} ({', '.join(sorted(m))})" for b, m in sorted(held.items())) or "nothing"
    method = wanted[0]
    build = (f"zoo-tupate tune --dataset SOURCE --method {method} --base-model {base_model} "
             f"--output runs/SOURCE && zoo-tupate index add runs/SOURCE/{method}/early")
    starter = "" if base_id == STARTER_MODEL else f", or rank the starter zoo with --base-model {STARTER_HUB_ID}"
    return (f"{target}: the zoo holds no {'/'.join(wanted)} entry of base model {base_id} to compare a probe "
            f"with (it holds: {holds}); build entries with '{build}'{starter}")
