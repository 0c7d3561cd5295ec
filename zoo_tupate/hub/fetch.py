"""Download chosen files of a repo at a commit into the cache, check them against the Hub's hashes, and lay
them out as a plain checkpoint folder.

huggingface_hub's cache holds snapshot files as symlinks into ``blobs/``; the readers refuse links that
lead out of a checkpoint folder, so the verified files are hard-linked (copied where links are not
possible) into ``<home>/cache/hub-files/models--org--name/<sha>/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from zoo_tupate.core.constants import HUB_MAX_FILE_ENV, hub_max_file_bytes
from zoo_tupate.core.errors import HubError
from zoo_tupate.hub.client import endpoint, prepare
from zoo_tupate.hub.deadline import CAP_HEADER, FileTooLarge
from zoo_tupate.hub.resolve import FileMeta, RepoState

#: Files fetched at once within one repo (repos themselves run in parallel too).
FILE_WORKERS = 2


def fetch(
    state: RepoState,
    files: list[str],
    cache_dir: Path,
    local_only: bool = False,
    tqdm_class: type | None = None,
    headers: dict[str, str] | None = None,
) -> Path:
    """Fetch ``files`` of ``state.repo`` at ``state.sha`` (or find them in the cache); return a plain folder.

    Each file is checked against the size and hash the Hub listed; a mismatch removes the bad copy from
    the cache and raises :class:`HubError` (a re-run downloads it again). ``headers`` go with every request
    (a repo deadline's key).
    """
    from huggingface_hub import snapshot_download

    prepare()
    cap = check_listed_sizes(state, files)
    try:
        folder = Path(
            snapshot_download(
                state.repo,
                revision=state.sha,
                allow_patterns=list(files),
                cache_dir=str(cache_dir),
                local_files_only=local_only,
                endpoint=endpoint(),
                tqdm_class=tqdm_class,
                max_workers=FILE_WORKERS,
                headers={**(headers or {}), CAP_HEADER: str(cap)},
            )
        )
    except FileTooLarge:
        drop_incomplete(cache_dir, state.repo)
        raise
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise HubError(f"{state.repo}@{state.sha[:12]}: {', '.join(missing)} missing after download")
    for name in files:
        verify(folder / name, state.files.get(name), f"{state.repo}@{state.sha[:12]}")
    return checkout(folder, files, checkout_dir(cache_dir, state.repo, state.sha))


def check_listed_sizes(state: RepoState, files: list[str]) -> int:
    """The cap on one downloaded file (``ZOO_TUPATE_HUB_MAX_FILE_BYTES``); :class:`FileTooLarge` when the
    Hub's listing already says a file is over it (nothing is downloaded then)."""
    try:
        cap = hub_max_file_bytes()
    except ValueError as exc:
        raise HubError(str(exc)) from None
    for name in files:
        meta = state.files.get(name)
        if meta is not None and meta.size is not None and meta.size > cap:
            raise FileTooLarge(f"{state.repo}@{state.sha[:12]}: {name} is listed at {meta.size:,} bytes, over the "
                               f"{cap:,}-byte cap on an adapter file ({HUB_MAX_FILE_ENV}); not downloaded")
    return cap


def drop_incomplete(cache_dir: Path, repo: str) -> None:
    """Remove the partial downloads huggingface_hub keeps for resuming (``blobs/*.incomplete``) of ``repo``."""
    blobs = Path(cache_dir) / f"models--{repo.replace('/', '--')}" / "blobs"
    for partial in blobs.glob("*.incomplete"):
        partial.unlink(missing_ok=True)


def checkout_dir(cache_dir: Path, repo: str, sha: str) -> Path:
    """Where the plain files of ``repo`` at ``sha`` are laid out."""
    return Path(cache_dir).parent / "hub-files" / f"models--{repo.replace('/', '--')}" / sha


def checkout(snapshot: Path, files: list[str], dest: Path) -> Path:
    """Hard-link (or copy) ``files`` of a cache snapshot into ``dest`` as regular files; return ``dest``."""
    for name in files:
        real = Path(os.path.realpath(snapshot / name))
        target = dest / name
        if target.is_file() and target.stat().st_size == real.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            os.link(real, tmp)
        except OSError:
            shutil.copyfile(real, tmp)
        os.replace(tmp, target)
    return dest


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file's content (the Hub's ``blobId`` / ETag of a regular file)."""
    size = path.stat().st_size
    digest = hashlib.sha1(b"blob %d\0" % size)
    _feed(digest, path)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    _feed(digest, path)
    return digest.hexdigest()


def _feed(digest: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def verify(path: Path, meta: FileMeta | None, where: str) -> None:
    """Check a downloaded file's size and hash; on mismatch remove it from the cache and raise HubError."""
    blob = Path(os.path.realpath(path))
    expected_sha256 = meta.lfs_sha256 if meta else None
    expected_sha1 = meta.blob_id if meta and not expected_sha256 else None
    if expected_sha256 is None and expected_sha1 is None:  # fall back to the cache's own blob name (the ETag)
        if len(blob.name) == 64:
            expected_sha256 = blob.name
        elif len(blob.name) == 40:
            expected_sha1 = blob.name
    problem = None
    size = blob.stat().st_size
    if meta and meta.size is not None and size != meta.size:
        kind = "truncated" if size < meta.size else "size mismatch"
        problem = f"{kind}: downloaded {path.name} has {size:,} bytes where the Hub lists {meta.size:,}"
    elif expected_sha256 and sha256_file(blob) != expected_sha256:
        problem = f"hash mismatch: downloaded {path.name} is corrupt (its sha256 differs from the Hub's)"
    elif expected_sha1 and git_blob_sha1(blob) != expected_sha1:
        problem = f"hash mismatch: downloaded {path.name} is corrupt (its git hash differs from the Hub's)"
    if problem is None:
        return
    for stale in {path, blob}:
        try:
            stale.unlink()
        except OSError:
            pass
    raise HubError(f"{where}: {problem}; removed it from the cache, pull again")
