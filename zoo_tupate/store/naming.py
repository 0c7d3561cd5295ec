"""Index entry names: the default (the task and method a checkpoint was tuned on, not its folder's name), and
when a name is taken by other weights.

``tune`` writes ``<output>/<method>/early`` and ``.../best``, so folder names say nothing; the name comes
from the checkpoint's own record (an embedding card's ``task``/``dataset``, or the ``zoo_tupate`` block of
``adapter_config.json``), else from the path above such generic folders, else from the folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from zoo_tupate.core.errors import NameTaken, ZooError
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.readers.base import read_json_bounded
from zoo_tupate.store.manifest import State

#: Folder names that say nothing about the task.
GENERIC = {"early", "best", "final", "adapter", "adapters", "checkpoint", "lora", "prefix", "bitfit", "ia3",
           "model", "output", "outputs"}
#: Longest default entry name (a task recorded in a card or config can be any length).
MAX_NAME = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._/@+-]+")


def _slug(text: str) -> str:
    text = text.strip().rstrip("/")
    try:
        if "/" in text and Path(text).expanduser().exists():  # a local dataset path: its folder name
            text = Path(text).name
    except (OSError, ValueError):  # a name no file system accepts (too long, a NUL byte) is not a path
        pass
    return _UNSAFE.sub("_", text).strip("_./")[:MAX_NAME].strip("_./") or "entry"


def _record(path: Path) -> tuple[str | None, str | None]:
    """(task or dataset, method) from a card or a zoo-tupate adapter config, when recorded."""
    try:
        from zoo_tupate.cards.cardfile import is_card, read_document

        if is_card(path):
            doc = read_document(path)
            extra = doc.get("extra") or {}
            entries = doc.get("embeddings") or [{}]
            task = extra.get("task") or extra.get("dataset") or entries[0].get("metadata", {}).get("dataset")
            methods = sorted({e.get("method") for e in entries if e.get("method")})
            return task, "+".join(methods) if methods else None
    except Exception:  # noqa: BLE001 - naming must never fail an add; the reader reports bad files
        pass
    try:
        config = read_json_bounded(path / "adapter_config.json", path, "adapter config")
    except ZooError:  # absent or bad: the reader reports bad files when the add reads the checkpoint
        config = None
    config = config if isinstance(config, dict) else {}
    zoo = config.get("zoo_tupate") if isinstance(config.get("zoo_tupate"), dict) else {}
    task = zoo.get("dataset") if isinstance(zoo.get("dataset"), str) else None
    method = zoo.get("method") if isinstance(zoo.get("method"), str) else None
    return task, method


def default_name(path: str | Path) -> str:
    """The entry name ``index add`` gives ``path`` without ``--name`` (e.g. ``rte-lora``)."""
    path = Path(path).expanduser()
    task, method = _record(path)
    if task:
        name = _slug(task)
        return f"{name}-{method}" if method and "+" not in method else name
    try:
        parts = [p for p in path.resolve().parts if p not in ("/", "")]
    except (OSError, RuntimeError):
        parts = list(path.parts)
    meaningful = [p for p in parts if p.lower() not in GENERIC]
    base = meaningful[-1] if meaningful else (parts[-1] if parts else "entry")
    tail = [p for p in parts[parts.index(base) + 1:] if p.lower() in ("lora", "prefix", "bitfit", "ia3")] \
        if base in parts else []
    return _slug("-".join([base, *tail]))


def stale_spaces(state: State, items: list[tuple[str, Embedding, str | None, dict[str, Any] | None]],
                  replace: bool) -> list[tuple[str, str]]:
    """(name, space) pairs a replacing add drops: the names' spaces the items do not write again.

    A name is taken when it holds content of other weights than the items' (a different sha256): without
    ``replace`` that raises :class:`NameTaken`. The same weights in more spaces (``--repr both`` later)
    only extend the entry.
    """
    new: dict[str, dict[str, str]] = {}
    for name, emb, _, _ in items:
        new.setdefault(name, {})[emb.space] = emb.sha256
    stale: list[tuple[str, str]] = []
    for name, spaces in new.items():
        held = {state.kind(s)[0]: state.cols["sha256"][s] for s in state.by_name().get(name, [])}
        if not held or set(spaces.values()) <= set(held.values()) - {""}:
            continue
        if not replace:
            sources = sorted({state.cols["source"][s] for s in state.by_name()[name]} - {""})
            raise NameTaken(f"{name}: an index entry of this name already holds other weights"
                            f"{' (from ' + sources[0] + ')' if sources else ''}; pass --replace to replace it, "
                            "or --name to add under another name")
        stale.extend((name, space) for space in held if space not in spaces)
    return stale
