"""From rows to model inputs: the tokenizer, tokenised splits, padded batches and length bucketing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from zoo_tupate.core.errors import TuningError
from zoo_tupate.core.models import missing_weights_hint, resolve_model
from zoo_tupate.tuning.data import Split


def load_tokenizer(base_model: str) -> Any:
    """The base model's tokenizer (a :class:`TuningError` when it cannot be loaded)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_model(base_model))
    except (OSError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuningError(f"{base_model}: cannot load the tokenizer ({first}){missing_weights_hint(base_model)}") from None


@dataclass
class Encoded:
    """A tokenised split (unpadded) and its labels."""

    features: list[dict[str, list[int]]]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


def encode(tokenizer: Any, split: Split, problem: str, max_length: int) -> Encoded:
    """Tokenise a split once (truncated to ``max_length``; padding happens per batch)."""
    out = tokenizer(split.text_a, split.text_b, truncation=True, max_length=max_length)
    accepted = set(getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in out and k in accepted]
    features = [{k: out[k][i] for k in keys} for i in range(len(split))]
    dtype = torch.float32 if problem == "regression" else torch.long
    return Encoded(features, torch.tensor(split.labels, dtype=dtype))


def collate(encoded: Encoded, index: list[int] | torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the chosen rows to their longest length."""
    rows = [encoded.features[int(i)] for i in index]
    width = max(len(r["input_ids"]) for r in rows)
    batch: dict[str, torch.Tensor] = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows], dtype=torch.long)
    return batch


def batches(order: torch.Tensor, size: int, bucket_by: Encoded | None = None,
            generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Consecutive batches of ``order``; with ``bucket_by``, rows are sorted by length within windows of 50
    batches and the batches shuffled (``generator``), so that a batch pads little."""
    if bucket_by is None:
        return [order[start:start + size] for start in range(0, len(order), size)]
    window = size * 50
    out: list[torch.Tensor] = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        lengths = torch.tensor([len(bucket_by.features[int(i)]["input_ids"]) for i in chunk])
        chunk = chunk[torch.argsort(lengths, stable=True)]
        out.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
    return [out[int(i)] for i in torch.randperm(len(out), generator=generator)]
