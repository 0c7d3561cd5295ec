"""Find PEFT adapters of a base model on the Hub (``HfApi.list_models`` with tag filters and a search term)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo_tupate.cards.schema import METHODS
from zoo_tupate.hub.client import hub_error, make_api

DEFAULT_LIMIT = 50


@dataclass
class SearchHit:
    """A repo the search found."""

    repo: str
    keyword: str | None
    sha: str | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def base_models(self) -> list[str]:
        return [t.split(":", 2)[-1] for t in self.tags if t.startswith("base_model:adapter:")]

    @property
    def methods(self) -> list[str]:
        return [t for t in self.tags if t in METHODS]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "base_models": self.base_models, "methods": self.methods}


def search_filters(base_model: str | None) -> list[str]:
    """Tag filters for PEFT adapters of ``base_model`` (all adapters when None)."""
    return ["peft", *([f"base_model:adapter:{base_model}"] if base_model else [])]


def search_adapters(
    base_model: str | None,
    keywords: Iterable[str | None] = (None,),
    methods: Iterable[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[SearchHit]:
    """PEFT adapter repos of ``base_model`` whose id contains a keyword (one query per keyword), deduplicated.

    With ``methods`` a repo tagged with another method is left out (untagged repos are kept).
    """
    api = make_api()
    wanted = {m.lower() for m in methods} if methods else None
    hits: dict[str, SearchHit] = {}
    for keyword in list(keywords) or [None]:
        try:
            models = list(api.list_models(filter=search_filters(base_model), search=keyword or None, limit=limit))
        except Exception as exc:  # noqa: BLE001 - reported as one line
            raise hub_error(exc, "search", action=f"list_models(search={keyword!r})") from None
        for info in models:
            hit = SearchHit(repo=info.id, keyword=keyword, sha=info.sha, tags=list(info.tags or []))
            if wanted is not None and hit.methods and not wanted & set(hit.methods):
                continue
            hits.setdefault(hit.repo, hit)
    return list(hits.values())
