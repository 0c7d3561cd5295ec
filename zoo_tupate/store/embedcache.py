"""Computed embeddings cached by content: ``<folder>/<sha[:2]>/<sha>-<key>.safetensors``, where ``sha`` hashes
the checkpoint's weights and ``key`` the embedding settings and the adapter config, so re-adding known
weights recomputes nothing. An entry is written without fsync: a torn one fails to parse and is recomputed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from zoo_tupate.core.errors import ZooError
from zoo_tupate.core.storage import map_vectors, read_metadata, write_vectors
from zoo_tupate.embedding.vectors import Embedding


def cached_embed(folder: Path, path: Path, repr_: str, pooling: str, include_heads: bool = False,
                 base_model_id: str | None = None, base_weights: Path | None = None) -> Embedding:
    """:func:`zoo_tupate.embed` of the checkpoint at ``path`` through the cache in ``folder``."""
    from zoo_tupate.embedding.checkpoint import embed_checkpoint
    from zoo_tupate.formats.weights import sha256_files
    from zoo_tupate.readers import open_checkpoint

    ckpt = open_checkpoint(path)
    sha = sha256_files([ckpt.weights])
    config = hashlib.sha256(json.dumps(ckpt.config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps([repr_, pooling, include_heads, base_model_id, str(base_weights or ""),
                                     config]).encode()).hexdigest()[:16]
    file = folder / sha[:2] / f"{sha}-{key}.safetensors"
    if file.exists():
        try:
            meta = read_metadata(file)
            vector = np.array(map_vectors(file, "vector"))
            emb = Embedding(vector=vector, **{k: v for k, v in meta.items() if k != "dim"})
            emb.source = str(ckpt.path)
            return emb
        except (ZooError, TypeError, OSError):
            file.unlink(missing_ok=True)
    emb = embed_checkpoint(ckpt, repr=repr_, pooling=pooling, include_heads=include_heads,
                           base_model_id=base_model_id, base_weights=base_weights, sha256=sha)
    write_vectors(file, {"vector": emb.vector}, emb.to_json(), durable=False)
    return emb
