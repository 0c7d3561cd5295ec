"""zoo-tupate: tuned parameters as task embeddings (TuPaTE), with a Hugging Face Hub model-zoo client.

Python API (the CLI is a thin layer over it)::

    from zoo_tupate import embed, Index
    emb = embed("path/to/lora", repr="delta", pooling="layer-mean")  # LoRA is compared in delta, others in raw
    index = Index("~/.cache/zoo-tupate")
    index.add("path/to/adapter")  # raw, and delta for LoRA
    index.suggest([emb], top_k=5)
    Zoo("~/.cache/zoo-tupate").suggest([emb])  # the index over the built-in starter zoo, as the CLI ranks
"""

from __future__ import annotations

__version__ = "0.1.0"

from zoo_tupate.api import embed, read_checkpoint  # noqa: E402
from zoo_tupate.embedding import Embedding  # noqa: E402
from zoo_tupate.index import Entry, Index, Suggestion  # noqa: E402
from zoo_tupate.zoo import Zoo  # noqa: E402

__all__ = ["Embedding", "Entry", "Index", "Suggestion", "Zoo", "__version__", "embed", "read_checkpoint"]
