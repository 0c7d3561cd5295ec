"""A local checkpoint folder (or embedding card) as a ``suggest`` target: its embeddings through the index's cache."""

from __future__ import annotations

from pathlib import Path

from zoo_tupate.cards.cardfile import is_card, read_card
from zoo_tupate.core.errors import UnsupportedCheckpoint
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.store.index import Index


def checkpoint_embeddings(index: Index, path: Path, reprs: tuple[str, ...], pooling: str,
                          base_model_id: str | None = None) -> list[Embedding]:
    """Embed a local checkpoint in each repr that applies to it (``delta`` only for LoRA)."""
    if is_card(path):
        return [e for e in read_card(path) if e.repr in reprs]
    out: list[Embedding] = []
    for repr_ in reprs:
        try:
            out.append(index.cached_embed(path, repr_, pooling, base_model_id=base_model_id))
        except UnsupportedCheckpoint:
            if repr_ == "raw" or len(reprs) == 1:
                raise
    return out
