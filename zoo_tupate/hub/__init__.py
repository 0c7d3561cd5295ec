"""Hugging Face Hub integration: pull adapters and embedding cards into the index, push adapters, publish cards.

``pull`` / ``push`` / ``publish_card`` and ``search_adapters`` (a Hub repo as a ``suggest`` target is
:mod:`zoo_tupate.answer.hub_target`, a layer above). The endpoint is ``$HF_ENDPOINT`` read at call time; the token comes from
huggingface_hub's usual sources and never appears in output.

Layer 7, beside ``tuning`` (neither imports the other). May import every layer up to ``ranking``.
"""

from __future__ import annotations

from zoo_tupate.hub.pull import PullResult, pull, pull_requests
from zoo_tupate.hub.push import PushResult, publish_card, push
from zoo_tupate.hub.resolve import ALLOWED_FILES, RepoRequest, expand_patterns
from zoo_tupate.hub.search import SearchHit, search_adapters

__all__ = [
    "ALLOWED_FILES",
    "PullResult",
    "PushResult",
    "RepoRequest",
    "SearchHit",
    "expand_patterns",
    "publish_card",
    "pull",
    "pull_requests",
    "push",
    "search_adapters",
]
