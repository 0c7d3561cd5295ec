"""``suggest --target org/name[@rev]``: a Hub adapter repo or embedding-card repo as the target."""

from __future__ import annotations

from collections.abc import Iterable

from zoo_tupate.answer.checkpoint_target import checkpoint_embeddings
from zoo_tupate.cards.cardfile import read_card
from zoo_tupate.cards.catalog import classify_pattern
from zoo_tupate.core.errors import HubError, UnsupportedCheckpoint, ZooError
from zoo_tupate.core.redact import redact
from zoo_tupate.embedding.vectors import REPRS, Embedding
from zoo_tupate.hub.client import describe, hub_cache, make_api, offline
from zoo_tupate.hub.deadline import configured_timeout, repo_deadline
from zoo_tupate.hub.fetch import fetch
from zoo_tupate.hub.progress import make_tqdm_bridge
from zoo_tupate.hub.pull import _can_fall_back
from zoo_tupate.hub.resolve import (
    RepoState,
    cached_state,
    check_revision,
    remember_ref,
    remote_state,
    select_files,
)
from zoo_tupate.store.index import Index


def parse_repo(target: str) -> tuple[str, str | None]:
    """``org/name[@rev]`` or ``hub:org/name[@rev]`` → (repo, revision); HubError for anything else."""
    try:
        resolved = classify_pattern(target if target.lower().startswith("hub:") else f"hub:{target}")
    except ZooError as exc:
        raise HubError(f"{target}: not a Hub repo id ({exc})") from None
    assert resolved.repo_id is not None
    return resolved.repo_id, resolved.revision


def resolve_target(
    target: str,
    index: Index,
    reprs: Iterable[str] = REPRS,
    pooling: str = "layer-mean",
    revision: str | None = None,
    base_model_id: str | None = None,
    timeout: float | None = None,
) -> list[Embedding]:
    """Download a Hub repo's adapter files (or its embedding card) and return its embeddings in ``reprs``.

    Files go to the same cache as ``pull``; offline (``HF_HUB_OFFLINE``) only the cache is used. The Hub
    traffic is bounded by ``timeout`` seconds (default: :func:`~zoo_tupate.hub.deadline.configured_timeout`).
    """

    repo, rev = parse_repo(target)
    rev = rev or revision
    check_revision(repo, rev)
    reprs = tuple(reprs)
    cache_dir = hub_cache(index.home)
    seconds = timeout if timeout is not None else configured_timeout()
    with repo_deadline(repo, None if offline() else seconds) as deadline:
        headers = deadline.headers if deadline else None
        state = _state(repo, rev, cache_dir, headers)
        source = f"{repo}@{state.sha}"
        try:
            kind, files = select_files(state)
            folder = fetch(state, files, cache_dir, local_only=offline() or state.from_cache,
                           tqdm_class=make_tqdm_bridge(_ignore, _ignore), headers=headers)
            if not state.from_cache:
                remember_ref(cache_dir, repo, rev, state.sha)
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001 - huggingface_hub/httpx/OS errors become one line
            raise HubError(redact(describe(exc, repo, state.sha[:12]))) from None
    if kind == "card":
        try:
            card = read_card(folder)
        except ZooError as exc:  # name the repo, not the cache folder
            raise type(exc)(redact(str(exc).replace(str(folder), source))) from None
        embeddings = [e for e in card if e.repr in reprs and e.pooling == pooling]
        if not embeddings:
            held = ", ".join(sorted({f"{e.repr}/{e.pooling}" for e in card}))
            raise UnsupportedCheckpoint(
                f"{source}: the embedding card holds {held}, not {'/'.join(reprs)} with pooling {pooling}"
            )
    else:
        try:
            embeddings = checkpoint_embeddings(index, folder, reprs, pooling, base_model_id)
        except ZooError as exc:
            raise type(exc)(redact(str(exc).replace(str(folder), source))) from None
    for emb in embeddings:
        if emb.degenerate:
            raise UnsupportedCheckpoint(f"{source}: degenerate target ({emb.degenerate_reason})")
        emb.source = source
    return embeddings


def _ignore(_: float) -> None:
    """Byte counts of a target download are not displayed."""


def _state(repo: str, revision: str | None, cache_dir, headers: dict[str, str] | None = None) -> RepoState:
    if offline():
        state = cached_state(cache_dir, repo, revision)
        if state is None:
            raise HubError(f"{repo}@{revision or 'main'}: not in the local cache and HF_HUB_OFFLINE is set")
        return state
    try:
        return remote_state(make_api(headers), repo, revision)
    except Exception as exc:  # noqa: BLE001
        state = cached_state(cache_dir, repo, revision) if _can_fall_back(exc) else None
        if state is None:
            if isinstance(exc, ZooError):
                raise
            raise HubError(redact(describe(exc, repo, revision))) from None
        return state
