"""The task catalog: one YAML card per known task, shipped as package data (``zoo_tupate.cards``).

A card (``cards/<family>/<task>.yaml``) names a task (``glue/rte``), its Hub dataset (id, config, splits,
columns, label order), the off-the-shelf adapter repos known for it and AdapterHub's own ids for it
(``nli/rte@ukp``). Cards are checked against :data:`~zoo_tupate.cards.schema.CARD_SCHEMA` by a small hand-written validator; a bad
card raises :class:`CatalogError` naming the file and the field.

:func:`classify_pattern` decides what a user's source pattern means, in this order:

1. ``hub:org/name[@rev]`` always names a Hub repo (``@`` = revision);
2. a pattern that matches catalog names, or holds glob characters ``*?[``, is a catalog pattern;
3. an AdapterHub id known to the catalog (``nli/multinli@ukp``) is an alias, never ``repo@revision``;
4. anything else shaped ``org/name[@rev]`` names a Hub repo directly, ``@`` only ever meaning a revision.

Anything else raises :class:`CatalogError`. Local paths are not considered here: callers check them first.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from zoo_tupate.cards.schema import CARD_SCHEMA, validate
from zoo_tupate.core.errors import CatalogError
from zoo_tupate.embedding.space import normalize_base_model

if TYPE_CHECKING:  # importlib.resources.abc is new in 3.11; only the annotation needs it
    from importlib.resources.abc import Traversable

GLOB_CHARS = frozenset("*?[")
HUB_PREFIX = "hub:"

@dataclass(frozen=True)
class DatasetSpec:
    """Where a task's data lives on the Hub and which columns hold its text and label."""

    hub_id: str | None
    config: str | None
    splits: dict[str, str]
    text_columns: list[str]
    label_column: str | None
    labels: list[str] | None
    verified: bool
    note: str | None = None


@dataclass(frozen=True)
class AdapterRef:
    """An off-the-shelf adapter repo for a task (``AdapterHub/bert-base-uncased-pf-rte``)."""

    repo: str
    method: str
    base_model: str
    verified: bool
    revision: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Alias:
    """Another tool's id for the task, e.g. AdapterHub's ``nli/rte@ukp``."""

    id: str
    verified: bool
    method: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class TaskCard:
    """One catalog task, as read from ``cards/<family>/<task>.yaml``."""

    name: str
    family: str
    title: str
    description: str
    task_type: str
    paper_group: str
    train_size: int
    dataset: DatasetSpec
    adapters: list[AdapterRef]
    aliases: list[Alias]
    hub_search: dict[str, list[str]]
    citation: str | None = None
    hub_train_rows: int | None = None
    notes: list[str] = field(default_factory=list)
    source_file: str = ""

    def __hash__(self) -> int:  # names are unique in a catalog; the list fields are not hashable
        return hash(self.name)

    @property
    def short_name(self) -> str:
        """The task part of the name (``rte`` for ``glue/rte``)."""
        return self.name.split("/", 1)[1]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the card (without ``source_file``)."""
        out = asdict(self)
        out.pop("source_file")
        return out


def _card_from_dict(data: dict[str, Any], source: str) -> TaskCard:
    return TaskCard(
        name=data["name"], family=data["family"], title=data["title"], description=data["description"],
        task_type=data["task_type"], paper_group=data["paper_group"], train_size=data["train_size"],
        dataset=DatasetSpec(**data["dataset"]),
        adapters=[AdapterRef(**a) for a in data["adapters"]],
        aliases=[Alias(**a) for a in data["aliases"]],
        hub_search={k: list(v) for k, v in data["hub_search"].items()},
        citation=data.get("citation"), hub_train_rows=data.get("hub_train_rows"),
        notes=list(data.get("notes") or []), source_file=source,
    )


def _check_consistency(data: dict[str, Any], family: str, stem: str) -> list[str]:
    """Rules the schema cannot express: name vs. file location, labels vs. task type, a usable dataset."""
    problems = []
    if data["name"] != f"{family}/{stem}":
        problems.append(f"name: {data['name']!r} must be {family}/{stem!s} (the card's folder/file name)")
    if data["family"] != family:
        problems.append(f"family: {data['family']!r} must be the folder name {family!r}")
    ds = data["dataset"]
    if data["task_type"] == "classification" and not ds["labels"]:
        problems.append("dataset.labels: a classification task needs its label names, in label-id order")
    if data["task_type"] != "classification" and ds["labels"]:
        problems.append(f"dataset.labels: must be null for task_type {data['task_type']!r}")
    if ds["hub_id"] is not None:
        if "train" not in ds["splits"]:
            problems.append("dataset.splits: needs a 'train' entry when hub_id is set")
        if not ds["text_columns"]:
            problems.append("dataset.text_columns: needs at least one column when hub_id is set")
        if ds["label_column"] is None:
            problems.append("dataset.label_column: needed when hub_id is set")
    if len({a["id"].lower() for a in data["aliases"]}) != len(data["aliases"]):
        problems.append("aliases: the same id is listed twice")
    return problems


def parse_card(text: str, source: str, family: str, stem: str) -> TaskCard:
    """Parse and validate one card's YAML ``text``; ``source`` names the file in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise CatalogError(f"{source}: not valid YAML ({first})") from None
    problems = validate(data, CARD_SCHEMA)
    if not problems:
        problems = _check_consistency(data, family, stem)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CatalogError(f"{source}: {problems[0]}{more}")
    return _card_from_dict(data, source)


def _card_files(root: Traversable) -> list[tuple[str, str, Traversable]]:
    files = []
    for family in root.iterdir():
        if not family.is_dir() or family.name.startswith(("_", ".")) or family.name == "templates":
            continue
        for item in family.iterdir():
            if item.is_file() and item.name.endswith((".yaml", ".yml")):
                files.append((family.name, item.name.rsplit(".", 1)[0], item))
    return sorted(files, key=lambda f: (f[0], f[1]))


def _source_name(item: Traversable, family: str) -> str:
    return str(item) if isinstance(item, Path) else f"cards/{family}/{item.name}"


def load_catalog(root: Path | Traversable | None = None) -> dict[str, TaskCard]:
    """All catalog cards by name, validated. ``root`` defaults to the installed ``zoo_tupate.cards``."""
    if root is None:
        return dict(_load_installed())
    return _load(root)


@functools.lru_cache(maxsize=1)
def _load_installed() -> dict[str, TaskCard]:
    return _load(resources.files("zoo_tupate.cards"))


def _load(root: Path | Traversable) -> dict[str, TaskCard]:
    cards: dict[str, TaskCard] = {}
    aliases: dict[str, str] = {}
    for family, stem, item in _card_files(root):
        source = _source_name(item, family)
        try:
            text = item.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{source}: cannot read ({exc.__class__.__name__})") from None
        card = parse_card(text, source, family, stem)
        for alias in card.aliases:
            key = alias.id.lower()
            if key in aliases:
                raise CatalogError(f"{source}: aliases: {alias.id!r} is already an alias of {aliases[key]}")
            aliases[key] = card.name
        cards[card.name] = card
    if not cards:
        raise CatalogError(f"{root}: no task cards found (expected <family>/<task>.yaml)")
    return cards


def _catalog(catalog: dict[str, TaskCard] | None) -> dict[str, TaskCard]:
    return load_catalog() if catalog is None else catalog


def _matches(pattern: str, card: TaskCard) -> bool:
    pat = pattern.lower()
    if fnmatch.fnmatchcase(card.name, pat):
        return True
    return "/" not in pat and fnmatch.fnmatchcase(card.short_name, pat)


def match(
    patterns: str | Iterable[str], catalog: dict[str, TaskCard] | None = None, strict: bool = True
) -> list[TaskCard]:
    """Cards whose names match any fnmatch glob (``glue/*``, ``*/rte``, ``qa/squad*``), sorted by name.

    A pattern without ``/`` also matches the task part alone (``rte``, ``squad*``). With ``strict`` a
    pattern that matches nothing raises :class:`CatalogError`.
    """
    cat = _catalog(catalog)
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    found: dict[str, TaskCard] = {}
    for pat in pats:
        hits = [c for c in cat.values() if _matches(pat, c)]
        if strict and not hits:
            raise CatalogError(
                f"pattern {pat!r} matches no catalog task (families: {', '.join(_families(cat))})"
            )
        found.update((c.name, c) for c in hits)
    return [found[name] for name in sorted(found)]


def _families(cat: dict[str, TaskCard]) -> list[str]:
    return sorted({c.family for c in cat.values()})


def resolve_alias(alias: str, catalog: dict[str, TaskCard] | None = None) -> TaskCard | None:
    """The card listing ``alias`` (an AdapterHub id such as ``nli/multinli@ukp``; case-insensitive), or None."""
    key = alias.strip().lower()
    for card in _catalog(catalog).values():
        if any(a.id.lower() == key for a in card.aliases):
            return card
    return None


def _same_base(a: str, b: str) -> bool:
    """``roberta-base`` equals ``FacebookAI/roberta-base`` (the Hub's legacy organisations are dropped)."""
    return normalize_base_model(a) == normalize_base_model(b)


def adapter_repos(
    card: TaskCard, base_model: str | None = None, methods: Iterable[str] | None = None
) -> list[tuple[str, str, str]]:
    """``(repo_id, method, base_model)`` of the card's known adapters, filtered by base model and methods."""
    wanted = None if methods is None else {m.lower() for m in methods}
    return [
        (a.repo, a.method, a.base_model)
        for a in card.adapters
        if (base_model is None or _same_base(a.base_model, base_model)) and (wanted is None or a.method in wanted)
    ]


_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_RE = re.compile(rf"^(?P<repo>{_REPO_PART}/{_REPO_PART})(?:@(?P<rev>[^\s@]+))?$")
_HUB_RE = re.compile(rf"^(?P<repo>(?:{_REPO_PART}/)?{_REPO_PART})(?:@(?P<rev>[^\s@]+))?$")


@dataclass(frozen=True)
class ResolvedPattern:
    """What a source pattern means: catalog tasks, an alias's task, or one Hub repo (at a revision)."""

    kind: Literal["catalog", "alias", "hub"]
    pattern: str
    tasks: tuple[TaskCard, ...] = ()
    repo_id: str | None = None
    revision: str | None = None


def classify_pattern(pattern: str, catalog: dict[str, TaskCard] | None = None) -> ResolvedPattern:
    """Classify a source pattern (see the module docstring for the order); unknown ones raise CatalogError."""
    text = pattern.strip()
    if not text:
        raise CatalogError("empty source pattern")
    if text.lower().startswith(HUB_PREFIX):
        found = _HUB_RE.match(text[len(HUB_PREFIX):])
        if not found:
            raise CatalogError(f"{pattern!r}: after 'hub:' expected a Hub repo id 'org/name' or 'org/name@revision'")
        return ResolvedPattern("hub", pattern, repo_id=found["repo"], revision=found["rev"])
    cat = _catalog(catalog)
    if GLOB_CHARS & set(text) or any(_matches(text, c) for c in cat.values()):
        return ResolvedPattern("catalog", pattern, tasks=tuple(match(text, cat)))
    card = resolve_alias(text, cat)
    if card is not None:
        return ResolvedPattern("alias", pattern, tasks=(card,))
    found = _REPO_RE.match(text)
    if found and (found["rev"] or "").lower() == "ukp":
        raise CatalogError(
            f"{pattern!r} looks like an AdapterHub id but no catalog task lists it; "
            f"write 'hub:{text}' if you mean the Hub repo {found['repo']} at revision 'ukp'"
        )
    if found:
        return ResolvedPattern("hub", pattern, repo_id=found["repo"], revision=found["rev"])
    raise CatalogError(
        f"{pattern!r} is neither a catalog task (e.g. 'glue/rte', 'qa/squad*'), an AdapterHub id "
        "(e.g. 'nli/rte@ukp') nor a Hub repo ('org/name[@revision]' or 'hub:name')"
    )
