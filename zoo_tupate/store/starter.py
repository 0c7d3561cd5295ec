"""The starter zoo: embedding cards shipped inside the package, a read-only layer under the user's index.

``zoo_tupate/cards/starter/<model>/<family>-<task>/`` holds one embedding card per task of the 11 CR tasks
on ``sentence-transformers/all-MiniLM-L6-v2`` (made by ``scripts/build_starter_zoo.py`` under the probe
recipe of :mod:`zoo_tupate.tuning.recipes`) and, in ``adapter/``, the LoRA adapter its LoRA vectors come
from (float16, no head: what ``suggest --verify`` starts a proxy transfer from). :func:`starter_index` materialises them once per package
version into an :class:`~zoo_tupate.store.index.Index` under ``<home>/cache/starter/<digest>/`` that
:class:`~zoo_tupate.ranking.zoo.Zoo` reads beneath the user's own entries.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

#: The starter zoo's base model (normalised identity, as in space names).
STARTER_MODEL = "sentence-transformers/all-minilm-l6-v2"
#: How users spell it (the Hub id).
STARTER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: The starter tasks: data folder name -> catalog name.
STARTER_TASKS: dict[str, str] = {
    "cola": "glue/cola", "sst2": "glue/sst2", "mrpc": "glue/mrpc", "stsb": "glue/stsb", "qqp": "glue/qqp",
    "mnli": "glue/mnli", "qnli": "glue/qnli", "rte": "glue/rte", "wnli": "glue/wnli", "snli": "nli/snli",
    "scitail": "nli/scitail",
}
STARTER_SOURCE = "starter"
#: Sub-folder of a starter card holding its LoRA adapter (float16, no head) for ``suggest --verify``.
ADAPTER_DIR = "adapter"


def starter_dir() -> Path:
    """The packaged starter folder (``zoo_tupate/cards/starter/all-minilm-l6-v2``)."""
    return Path(str(resources.files("zoo_tupate.cards"))) / "starter" / STARTER_MODEL.split("/")[-1]


def starter_cards() -> list[Path]:
    """The packaged starter card folders, sorted."""
    root = starter_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "task_embedding.safetensors").is_file())


def starter_adapter(name: str) -> Path | None:
    """The packaged LoRA adapter folder of the starter entry ``name`` (e.g. ``glue/rte``), if shipped."""
    from zoo_tupate.cards.cardfile import read_document

    for card in starter_cards():
        if (read_document(card)["extra"].get("task") or card.name) == name:
            folder = card / ADAPTER_DIR
            return folder if (folder / "adapter_model.safetensors").is_file() else None
    return None


def _digest(cards: list[Path]) -> str:
    h = hashlib.sha256()
    for card in cards:
        h.update(card.name.encode())
        h.update((card / "task_embedding.safetensors").read_bytes())
    return h.hexdigest()[:16]


def starter_index(home: str | Path):
    """The starter zoo as a read-only :class:`Index` (built on first use; ``None`` when none is packaged)."""
    from zoo_tupate.cards.cardfile import read_card, read_document
    from zoo_tupate.store.index import Index

    cards = starter_cards()
    if not cards:
        return None
    root = Path(home).expanduser() / "cache" / "starter"
    folder = root / _digest(cards)
    if folder.is_dir():  # renamed into place only once complete
        return Index(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".build-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    index = Index(tmp)
    items = []
    for card in cards:
        name = read_document(card)["extra"].get("task") or card.name
        items.extend((name, emb, STARTER_SOURCE, {"starter": True}) for emb in read_card(card))
    index.add_many(items)
    try:
        tmp.rename(folder)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return Index(folder)
