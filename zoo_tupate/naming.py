"""Default index entry names: the task and method a checkpoint was tuned on, not its folder's name.

``tune`` writes ``<output>/<method>/early`` and ``.../best``, so folder names say nothing; the name comes
from the checkpoint's own record (an embedding card's ``task``/``dataset``, or the ``zoo_tupate`` block of
``adapter_config.json``), else from the path above such generic folders, else from the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from zoo_tupate.storage import read_json

#: Folder names that say nothing about the task.
GENERIC = {"early", "best", "final", "adapter", "adapters", "checkpoint", "lora", "prefix", "bitfit", "ia3",
           "model", "output", "outputs"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._/@+-]+")


def _slug(text: str) -> str:
    text = text.strip().rstrip("/")
    if "/" in text and Path(text).expanduser().exists():  # a local dataset path: its folder name
        text = Path(text).name
    return _UNSAFE.sub("_", text).strip("_./") or "entry"


def _record(path: Path) -> tuple[str | None, str | None]:
    """(task or dataset, method) from a card or a zoo-tupate adapter config, when recorded."""
    try:
        from zoo_tupate.cardfile import is_card, read_document

        if is_card(path):
            doc = read_document(path)
            extra = doc.get("extra") or {}
            entries = doc.get("embeddings") or [{}]
            task = extra.get("task") or extra.get("dataset") or entries[0].get("metadata", {}).get("dataset")
            methods = sorted({e.get("method") for e in entries if e.get("method")})
            return task, "+".join(methods) if methods else None
    except Exception:  # noqa: BLE001 - naming must never fail an add; the reader reports bad files
        pass
    config = read_json(path / "adapter_config.json")
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
