"""Hugging Face Hub integration: pull adapters and embedding cards into the index, push adapters, publish cards.

``pull`` / ``push`` / ``publish_card`` / ``resolve_target`` (a Hub repo as a ``suggest`` target) and
``search_adapters``. The endpoint is ``$HF_ENDPOINT`` read at call time; the token comes from
huggingface_hub's usual sources and never appears in output.
"""

from __future__ import annotations

from zoo_tupate.hub.pull import PullResult, pull, pull_requests
from zoo_tupate.hub.push import PushResult, publish_card, push
from zoo_tupate.hub.resolve import ALLOWED_FILES, RepoRequest, expand_patterns
from zoo_tupate.hub.search import SearchHit, search_adapters
from zoo_tupate.hub.target import parse_repo, resolve_target

__all__ = [
    "ALLOWED_FILES",
    "PullResult",
    "PushResult",
    "RepoRequest",
    "SearchHit",
    "expand_patterns",
    "parse_repo",
    "publish_card",
    "pull",
    "pull_requests",
    "push",
    "resolve_target",
    "search_adapters",
]
