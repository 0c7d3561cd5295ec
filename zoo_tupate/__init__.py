"""zoo-tupate: tuned parameters as task embeddings (TuPaTE), with a Hugging Face Hub model-zoo client.

Python API (the CLI is a thin layer over it)::

    from zoo_tupate import embed, Index, Zoo, suggest
    emb = embed("path/to/lora", repr="delta", pooling="layer-mean")  # LoRA is compared in delta, others in raw
    index = Index("~/.cache/zoo-tupate")
    index.add("path/to/adapter")  # raw, and delta for LoRA
    suggest(index, [emb], top_k=5)  # rank one index
    Zoo("~/.cache/zoo-tupate").suggest([emb])  # the index over the built-in starter zoo, as the CLI ranks
"""

from __future__ import annotations

from zoo_tupate.api import Embedding, Entry, Index, Suggestion, Zoo, embed, read_checkpoint, suggest
from zoo_tupate.core.version import __version__

__all__ = ["Embedding", "Entry", "Index", "Suggestion", "Zoo", "__version__", "embed", "read_checkpoint", "suggest"]
