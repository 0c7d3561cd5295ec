"""From what a user typed to repos at commits: patterns → repo requests → (sha, file list) → files to fetch.

Patterns go through the catalog (:func:`zoo_tupate.cards.catalog.classify_pattern`): catalog tasks and AdapterHub
aliases become the adapter repos the catalog knows for the base model; ``org/name[@rev]`` and
``hub:org/name[@rev]`` are repos. A revision (branch, tag or sha) is resolved to a commit sha with
``model_info``; offline, from the cache's ``refs/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from zoo_tupate.cards.cardfile import README_NAME
from zoo_tupate.cards.cardfile import WEIGHTS_NAME as CARD_FILE
from zoo_tupate.cards.catalog import TaskCard, adapter_repos, classify_pattern
from zoo_tupate.core.errors import CatalogError, HubError
from zoo_tupate.core.safetext import escape_controls
from zoo_tupate.readers.base import CONFIG_FILES, WEIGHT_FILES

#: Small files that describe an adapter and are fetched beside its weights.
ADAPTER_SIDE_FILES = (*CONFIG_FILES, "head_config.json", README_NAME)
#: Everything pull may ever download: adapter weights and configs, cards, READMEs. Never base weights.
ALLOWED_FILES = (*WEIGHT_FILES, *ADAPTER_SIDE_FILES, CARD_FILE)
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
#: A branch or tag name (git's ref grammar, kept to what the Hub uses: ``main``, ``v1.0``, ``refs/pr/3``).
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")


def check_revision(repo: str, revision: str | None) -> None:
    """Refuse (:class:`HubError`) a revision that is neither a branch/tag name nor a commit sha.

    A revision becomes a file name in the cache (``refs/<revision>``): ``..``, a leading ``/``, ``//``,
    backslashes, control characters or a ``.lock`` suffix could name a file outside it."""
    if revision is None or SHA_RE.match(revision):
        return
    parts = revision.split("/")
    if (not _REF_RE.match(revision) or ".." in revision or any(not p or p.startswith(".") for p in parts)
            or revision.endswith((".lock", "/", "."))):
        shown = escape_controls(revision[:80])
        raise HubError(f"{repo}@{shown}: not a valid revision (a branch or tag name, or a 40-character commit "
                       "sha; no '..', no leading '/')")


@dataclass(frozen=True)
class RepoRequest:
    """One repo to pull, and why (the pattern, catalog task and method that named it)."""

    repo: str
    revision: str | None = None
    pattern: str = ""
    task: str | None = None
    method: str | None = None


@dataclass(frozen=True)
class FileMeta:
    """What the Hub says about one file: size and hashes (git blob id; sha256 for LFS files)."""

    size: int | None = None
    blob_id: str | None = None
    lfs_sha256: str | None = None


@dataclass
class RepoState:
    """A repo at one commit: its sha and files."""

    repo: str
    sha: str
    files: dict[str, FileMeta] = field(default_factory=dict)
    from_cache: bool = False


def expand_patterns(
    patterns: Iterable[str],
    base_model: str | None = None,
    methods: Iterable[str] | None = None,
    revision: str | None = None,
    catalog: dict[str, TaskCard] | None = None,
    keep_unknown: bool = False,
) -> tuple[list[RepoRequest], list[str], list[str]]:
    """Requests for every repo the patterns name, notes for the user, and the unknown patterns.

    A pattern's own ``@rev`` wins over ``revision``, which wins over a catalog card's pinned revision.
    With ``keep_unknown`` a pattern that is neither a task, an alias nor a repo is returned (for search)
    instead of raising :class:`CatalogError`.
    """
    wanted_methods = [m.lower() for m in methods] if methods else None
    requests: dict[tuple[str, str | None], RepoRequest] = {}
    notes: list[str] = []
    unknown: list[str] = []
    for pattern in patterns:
        try:
            resolved = classify_pattern(pattern, catalog)
        except CatalogError:
            if keep_unknown:
                unknown.append(pattern)
                continue
            raise
        if resolved.kind == "hub":
            assert resolved.repo_id is not None
            req = RepoRequest(resolved.repo_id, resolved.revision or revision, pattern=pattern)
            check_revision(req.repo, req.revision)
            requests.setdefault((req.repo, req.revision), req)
            continue
        for card in resolved.tasks:
            alias_methods = wanted_methods
            if resolved.kind == "alias" and wanted_methods is None:
                alias_methods = _alias_methods(card, pattern)
            found = adapter_repos(card, base_model, alias_methods)
            if not found:
                base = f" for base model {base_model}" if base_model else ""
                meth = f" with method {', '.join(alias_methods)}" if alias_methods else ""
                notes.append(f"{card.name}: the catalog knows no adapter repo{base}{meth}")
            pinned = {a.repo: a.revision for a in card.adapters}
            for repo, method, _base in found:
                rev = revision or pinned.get(repo)
                check_revision(repo, rev)
                req = RepoRequest(repo, rev, pattern=pattern, task=card.name, method=method)
                requests.setdefault((req.repo, req.revision), req)
    return list(requests.values()), notes, unknown


def _alias_methods(card: TaskCard, alias: str) -> list[str] | None:
    for a in card.aliases:
        if a.id.lower() == alias.strip().lower() and a.method:
            return [a.method]
    return None


def remote_state(api, repo: str, revision: str | None) -> RepoState:
    """Ask the Hub for ``repo`` at ``revision``: its commit sha and files (with sizes and hashes)."""
    try:
        info = api.model_info(repo, revision=revision, files_metadata=True)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # huggingface_hub could not parse the answer
        if isinstance(exc, HubError) or type(exc).__module__.startswith(("huggingface_hub", "httpx")):
            raise
        raise HubError(f"{repo}: the Hub's answer about the repo is malformed ({type(exc).__name__}: "
                       f"{str(exc)[:120]})") from None
    sha = getattr(info, "sha", None)
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise HubError(f"{repo}: the Hub gave no valid commit sha for revision {revision or 'main'!r}")
    files = {}
    for sib in getattr(info, "siblings", None) or []:
        name, size = getattr(sib, "rfilename", None), getattr(sib, "size", None)
        if not isinstance(name, str) or (size is not None and (not isinstance(size, int) or size < 0)):
            raise HubError(f"{repo}@{sha[:12]}: the Hub's file listing is malformed (entry {str(name)[:80]!r})")
        lfs = getattr(sib, "lfs", None)
        files[name] = FileMeta(size=size, blob_id=getattr(sib, "blob_id", None),
                               lfs_sha256=getattr(lfs, "sha256", None) if lfs else None)
    return RepoState(repo=repo, sha=sha, files=files)


def cached_state(cache_dir: Path, repo: str, revision: str | None) -> RepoState | None:
    """``repo`` at ``revision`` from the local cache only (None when that revision was never pulled)."""
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    storage = Path(cache_dir) / f"models--{repo.replace('/', '--')}"
    rev = revision or "main"
    if SHA_RE.match(rev):
        sha = rev
    else:
        check_revision(repo, rev)
        ref = storage / "refs" / rev
        if not ref.is_file():
            return None
        sha = ref.read_text().strip()
    snapshot = storage / "snapshots" / sha
    if not snapshot.is_dir():
        return None
    files: dict[str, FileMeta] = {}
    try:
        for f in get_cached_repo_tree(repo, revision=sha, cache_dir=cache_dir):
            files[f.path] = FileMeta(size=f.size, blob_id=f.blob_id)
    except CachedRepoTreeNotFoundError:
        files = {p.relative_to(snapshot).as_posix(): FileMeta() for p in snapshot.rglob("*") if p.is_file()}
    return RepoState(repo=repo, sha=sha, files=files, from_cache=True)


def remember_ref(cache_dir: Path, repo: str, revision: str | None, sha: str) -> None:
    """Record in the cache that ``revision`` (default branch when None) was at ``sha``, for offline pulls.

    Downloads by sha do not write ``refs/<branch>``; this does, atomically, in huggingface_hub's layout.
    """
    rev = revision or "main"
    if SHA_RE.match(rev):
        return
    check_revision(repo, rev)
    refs = Path(cache_dir) / f"models--{repo.replace('/', '--')}" / "refs"
    ref = refs / rev
    if not os.path.normpath(ref).startswith(os.path.normpath(refs) + os.sep):
        return  # never written outside the repo's refs/ (check_revision already refused such names)
    try:
        if ref.is_file() and ref.read_text().strip() == sha:
            return
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
        tmp.write_text(sha)
        os.replace(tmp, ref)
    except OSError:
        pass  # only offline use suffers


def select_files(state: RepoState) -> tuple[str, list[str]]:
    """``("adapter" | "card", files to fetch)`` for a repo; HubError when it holds neither.

    An adapter repo gets its first weights file (in the readers' order), its configs and README, never
    anything else (a base model's ``model.safetensors`` stays on the Hub). A repo with only an embedding
    card gets the card and README.
    """
    names = set(state.files)
    weights = [w for w in WEIGHT_FILES if w in names]
    if weights:
        return "adapter", [weights[0], *[f for f in ADAPTER_SIDE_FILES if f in names]]
    if CARD_FILE in names:
        return "card", [CARD_FILE, *([README_NAME] if README_NAME in names else [])]
    shown = ", ".join(sorted(names - {".gitattributes"})[:8]) or "no files"
    raise HubError(
        f"{state.repo}@{state.sha[:12]}: no adapter weights ({', '.join(WEIGHT_FILES)}) and no embedding card "
        f"({CARD_FILE}) in the repo (it holds: {shown})"
    )
