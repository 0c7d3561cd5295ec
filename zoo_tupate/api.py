"""The public Python API: checkpoint path → tuned parameters → task embedding, and the zoo that ranks them.

Users import from here (or from :mod:`zoo_tupate`); the code lives in its layer (see docs/architecture.md).
"""

from __future__ import annotations

from zoo_tupate.embedding.checkpoint import embed, embed_checkpoint, embed_params, read_checkpoint
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.ranking.rank import suggest
from zoo_tupate.ranking.result import Ranking, Suggestion
from zoo_tupate.ranking.zoo import Zoo
from zoo_tupate.store.index import Entry, Index

__all__ = ["Embedding", "Entry", "Index", "Ranking", "Suggestion", "Zoo", "embed", "embed_checkpoint",
           "embed_params", "read_checkpoint", "suggest"]
