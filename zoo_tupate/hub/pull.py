"""``pull``: fetch adapters (or embedding cards) from the Hub and index them, named by repo id.

For each repo: resolve the revision to a commit sha; if the index already holds ``repo@sha`` nothing is
downloaded or recomputed (``unchanged``); else only adapter files are fetched (never base weights) and
indexed: an embedding-card repo from its card (no weights), an adapter repo from its weights. Repos are
fetched in parallel (``jobs``); indexing runs in the calling thread. One failing repo never stops the
others: each gets a :class:`PullResult` with an outcome and a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from zoo_tupate.cards.cardfile import read_card
from zoo_tupate.cards.catalog import TaskCard
from zoo_tupate.core.errors import CatalogError, DegenerateAdapter, ZooError
from zoo_tupate.core.redact import redact
from zoo_tupate.hub.client import describe, hub_cache, is_network_error, make_api, offline, public_endpoint
from zoo_tupate.hub.deadline import configured_timeout, repo_deadline
from zoo_tupate.hub.fetch import fetch
from zoo_tupate.hub.progress import RepoProgress
from zoo_tupate.hub.resolve import (
    RepoRequest,
    RepoState,
    cached_state,
    expand_patterns,
    remember_ref,
    remote_state,
    select_files,
)
from zoo_tupate.hub.search import SearchHit, search_adapters
from zoo_tupate.store.index import Index

OUTCOMES = ("indexed", "unchanged", "failed")


@dataclass
class PullResult:
    """What happened to one repo."""

    repo: str
    revision: str | None
    sha: str | None = None
    outcome: str = "failed"
    reason: str = ""
    kind: str | None = None  # "adapter" or "card"
    task: str | None = None
    method: str | None = None
    files: list[str] = field(default_factory=list)
    spaces: list[str] = field(default_factory=list)

    @property
    def source(self) -> str | None:
        return f"{self.repo}@{self.sha}" if self.sha else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "source": self.source}


@dataclass
class _Fetched:
    request: RepoRequest
    state: RepoState
    kind: str
    files: list[str]
    folder: Path
    note: str = ""


def pull(
    patterns: Iterable[str],
    index: Index,
    base_model: str | None = None,
    methods: Iterable[str] | None = None,
    revision: str | None = None,
    search: bool = False,
    jobs: int = 4,
    progress: bool = True,
    reprs: Iterable[str] = ("raw", "delta"),
    pooling: str = "layer-mean",
    force: bool = False,
    catalog: dict[str, TaskCard] | None = None,
    console: Console | None = None,
    on_search: Callable[[list[SearchHit]], None] | None = None,
    timeout: float | None = None,
) -> list[PullResult]:
    """Pull the repos ``patterns`` name into ``index`` (see the module docstring); one result per repo.

    ``search`` also looks the Hub up for PEFT adapters of ``base_model`` (keywords: the catalog tasks'
    search hints, or the patterns that name nothing known) and pulls what it finds, after showing it.
    ``force`` re-indexes repos whose commit is already indexed and indexes degenerate adapters.
    ``progress``: notes, search results and (on a terminal) per-repo progress rows on ``console`` (stderr).
    ``timeout``: seconds each repo's Hub traffic may take (default: ``$ZOO_TUPATE_HUB_TIMEOUT``, 300 s).
    """
    console = console or Console(stderr=True)
    patterns = list(patterns)
    requests, notes, unknown = expand_patterns(patterns, base_model, methods, revision, catalog,
                                               keep_unknown=search)
    if progress:
        for note in notes:
            console.print(f"[yellow]note:[/yellow] {note}")
    if search:
        hits = _search(patterns, unknown, base_model, methods, catalog)
        if on_search is not None:
            on_search(hits)
        elif progress:
            _show_hits(hits, console, base_model)
        known = {r.repo for r in requests}
        requests += [RepoRequest(h.repo, revision, pattern=h.keyword or "search") for h in hits
                     if h.repo not in known]
    if not requests:
        raise CatalogError(f"nothing to pull for {' '.join(patterns)}"
                           + (f" with base model {base_model}" if base_model else "")
                           + (f" ({notes[0]})" if notes else ""))
    return pull_requests(requests, index, jobs=jobs, progress=progress, reprs=reprs, pooling=pooling,
                         force=force, console=console, timeout=timeout)


def pull_requests(
    requests: list[RepoRequest],
    index: Index,
    jobs: int = 4,
    progress: bool = True,
    reprs: Iterable[str] = ("raw", "delta"),
    pooling: str = "layer-mean",
    force: bool = False,
    console: Console | None = None,
    timeout: float | None = None,
) -> list[PullResult]:
    """Fetch and index already-resolved repo requests (see :func:`pull`)."""
    reprs = tuple(reprs)
    console = console or Console(stderr=True)
    indexed_sources = {e.source for e in index.entries()}
    cache_dir = hub_cache(index.home)
    is_offline = offline()
    seconds = timeout if timeout is not None else configured_timeout()
    results: dict[int, PullResult] = {}
    with RepoProgress(progress and console.is_terminal, console=console) as display:
        for req in requests:
            display.add(_key(req))
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="zoo-pull") as pool:
            futures = {
                pool.submit(_fetch_one, req, seconds, cache_dir, is_offline, indexed_sources, force, display): i
                for i, req in enumerate(requests)
            }
            for future in as_completed(futures):
                i = futures[future]
                req = requests[i]
                try:
                    got = future.result()
                except Exception as exc:  # noqa: BLE001 - one repo's failure is reported, never raised
                    got = _failed(req, None, describe(exc, req.repo, req.revision))
                if isinstance(got, _Fetched):
                    display.status(_key(req), "indexing")
                    got = _index_one(got, index, reprs, pooling, force)
                results[i] = got
                display.done(_key(req), _status_text(got))
    return [results[i] for i in range(len(requests))]


def _key(req: RepoRequest) -> str:
    return f"{req.repo}@{req.revision}" if req.revision else req.repo


def _status_text(result: PullResult) -> str:
    colour = {"indexed": "green", "unchanged": "cyan", "failed": "red"}[result.outcome]
    text = f"[{colour}]{result.outcome}[/{colour}]"
    return f"{text} {result.reason[:80]}" if result.outcome == "failed" else text


def _failed(req: RepoRequest, sha: str | None, reason: str) -> PullResult:
    return PullResult(req.repo, req.revision, sha=sha, outcome="failed", reason=redact(reason), task=req.task,
                      method=req.method)


def _fetch_one(
    req: RepoRequest,
    seconds: float | None,
    cache_dir: Path,
    is_offline: bool,
    indexed_sources: set[str],
    force: bool,
    display: RepoProgress,
) -> PullResult | _Fetched:
    """Resolve and download one repo, its Hub traffic bounded by a deadline of ``seconds``."""
    with repo_deadline(req.repo, None if is_offline else seconds) as deadline:
        headers = deadline.headers if deadline else None
        return _fetch_within(req, headers, cache_dir, is_offline, indexed_sources, force, display)


def _fetch_within(req: RepoRequest, headers: dict[str, str] | None, cache_dir: Path, is_offline: bool,
                  indexed_sources: set[str], force: bool, display: RepoProgress) -> PullResult | _Fetched:
    """:func:`_fetch_one`'s work, inside its deadline (``headers``: the deadline's request headers)."""
    key = _key(req)
    display.status(key, "resolving")
    note = ""
    state: RepoState | None = None
    try:
        if is_offline:
            state = cached_state(cache_dir, req.repo, req.revision)
            if state is None:
                return _failed(req, None, f"{key}: not in the local cache and HF_HUB_OFFLINE is set")
        else:
            try:
                state = remote_state(make_api(headers), req.repo, req.revision)
            except Exception as exc:
                state = cached_state(cache_dir, req.repo, req.revision) if _can_fall_back(exc) else None
                if state is None:
                    raise
                note = f"Hub unreachable ({describe(exc, req.repo, req.revision)}); used the cached copy"
        source = f"{req.repo}@{state.sha}"
        if source in indexed_sources and not force:
            return PullResult(req.repo, req.revision, sha=state.sha, outcome="unchanged",
                              reason=redact(note), task=req.task, method=req.method)
        kind, files = select_files(state)
        display.status(key, f"fetching {len(files)} files")
        folder = fetch(state, files, cache_dir, local_only=is_offline or state.from_cache,
                       tqdm_class=display.tqdm_class(key), headers=headers)
        if not state.from_cache:
            remember_ref(cache_dir, req.repo, req.revision, state.sha)
        return _Fetched(req, state, kind, files, folder, note)
    except ZooError as exc:
        return _failed(req, state.sha if state else None, str(exc))
    except Exception as exc:  # noqa: BLE001 - huggingface_hub/httpx/OS errors become one line
        return _failed(req, state.sha if state else None,
                       describe(exc, req.repo, state.sha[:12] if state else req.revision))


def _can_fall_back(exc: BaseException) -> bool:
    """Network failures and server errors (not 'repo/revision not found') may be served from the cache."""
    from huggingface_hub.errors import HfHubHTTPError

    from zoo_tupate.hub.deadline import HubTimeout

    if is_network_error(exc) or isinstance(exc, HubTimeout):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(exc, HfHubHTTPError) and status is not None and status >= 500


def _index_one(got: _Fetched, index: Index, reprs: tuple[str, ...], pooling: str, force: bool) -> PullResult:
    req, state = got.request, got.state
    source = f"{req.repo}@{state.sha}"
    result = PullResult(req.repo, req.revision, sha=state.sha, kind=got.kind, task=req.task, method=req.method,
                        files=list(got.files))
    metadata = {"hub": {"repo": req.repo, "revision": req.revision, "sha": state.sha, "endpoint": public_endpoint(),
                        "kind": got.kind, "files": list(got.files), **({"task": req.task} if req.task else {})}}
    try:
        if got.kind == "card":
            embeddings = read_card(got.folder)
            usable = [e for e in embeddings if force or not e.degenerate]
            if not usable:
                raise DegenerateAdapter(f"{source}: every embedding in the card is degenerate, not indexed")
            entries = index.add_embeddings(req.repo, usable, source=source, metadata=metadata)
        else:
            entries = index.add(got.folder, name=req.repo, reprs=reprs, source=source, metadata=metadata, replace=True,
                                force=force, pooling=pooling)
    except ZooError as exc:
        result.outcome, result.reason = "failed", redact(_relabel(str(exc), got.folder, source))
        return result
    except Exception as exc:  # noqa: BLE001 - a reader crash on odd files is reported like any failure
        result.outcome = "failed"
        result.reason = redact(_relabel(f"{type(exc).__name__}: {exc}", got.folder, source))
        return result
    result.outcome = "indexed"
    result.reason = redact(got.note)
    result.method = entries[0].method if entries else result.method
    result.spaces = sorted({e.space for e in entries})
    return result


def _relabel(message: str, folder: Path, source: str) -> str:
    """Name the repo instead of the cache folder in an error message."""
    return message.replace(str(folder), source)


def _search(patterns: list[str], unknown: list[str], base_model: str | None, methods: Iterable[str] | None,
            catalog: dict[str, TaskCard] | None) -> list[SearchHit]:
    """Search keywords: the catalog hints of the patterns' tasks, plus the patterns that name nothing known."""
    from zoo_tupate.cards.catalog import classify_pattern

    keywords: list[str | None] = []
    for pattern in patterns:
        if pattern in unknown:
            keywords.append(pattern)
            continue
        resolved = classify_pattern(pattern, catalog)
        for card in resolved.tasks:
            keywords += card.hub_search.get("keywords", [])[:2] or [card.short_name]
    if not patterns:
        keywords = [None]
    return search_adapters(base_model, dict.fromkeys(keywords), methods)


def _show_hits(hits: list[SearchHit], console: Console, base_model: str | None) -> None:
    title = f"found {len(hits)} PEFT adapter repo(s)" + (f" of {base_model}" if base_model else "")
    table = Table(title=f"{title} on {public_endpoint()}")
    for column in ("repo", "methods", "base model", "found by"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        table.add_row(hit.repo, ",".join(hit.methods) or "?", ",".join(hit.base_models) or "?", hit.keyword or "")
    console.print(table)
