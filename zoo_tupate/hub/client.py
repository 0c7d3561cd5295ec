"""The Hub client as zoo-tupate uses it: endpoint, cache folder, and Hub errors turned into one line.

The endpoint and offline mode are read from the environment at call time (``HF_ENDPOINT``,
``HF_HUB_OFFLINE``), not from huggingface_hub's import-time constants, so one process can be pointed at a
local server. The token comes from huggingface_hub's usual sources and is never put in a message.
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo_tupate.constants import hub_offline
from zoo_tupate.errors import HubError
from zoo_tupate.redact import redact

DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint() -> str:
    """The Hub endpoint: ``$HF_ENDPOINT`` or the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks for cache-only access."""
    return hub_offline()


def hub_cache(home: str | Path) -> Path:
    """Where pulled repos are cached: ``<home>/cache/hub`` (huggingface_hub's cache layout)."""
    return Path(home).expanduser() / "cache" / "hub"


def make_api():
    """An ``HfApi`` for the current endpoint (token from huggingface_hub's usual sources)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), library_name="zoo-tupate", library_version=_version())


def _version() -> str:
    import zoo_tupate

    return zoo_tupate.__version__


def hub_error(exc: BaseException, repo: str, revision: str | None = None, action: str = "") -> HubError:
    """A one-line :class:`HubError` for ``exc`` raised while talking to the Hub about ``repo``."""
    return HubError(redact(describe(exc, repo, revision, action)))


def describe(exc: BaseException, repo: str, revision: str | None = None, action: str = "") -> str:
    """One line saying what went wrong with ``repo`` (``exc`` from huggingface_hub, httpx or the OS)."""
    from huggingface_hub import errors as hf

    where = f"{repo}@{revision}" if revision else repo
    prefix = f"{where}: {action + ': ' if action else ''}"
    if isinstance(exc, hf.RevisionNotFoundError):
        return f"{prefix}revision {revision or 'main'!r} not found on {endpoint()}"
    if isinstance(exc, hf.GatedRepoError):
        return f"{prefix}gated repo: request access on the Hub and log in (hf auth login)"
    if isinstance(exc, hf.RepositoryNotFoundError):
        return f"{prefix}repo not found on {endpoint()} (or private and the token has no access)"
    if isinstance(exc, (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError)) and not isinstance(
        exc, hf.LocalEntryNotFoundError
    ):
        return f"{prefix}file missing on the Hub ({_first_line(exc)})"
    if isinstance(exc, getattr(hf, "IncompleteSnapshotError", ())):
        return f"{prefix}cached copy is incomplete and the Hub cannot be used ({_first_line(exc)})"
    cause = exc.__cause__
    if isinstance(exc, hf.LocalEntryNotFoundError) and cause is not None and (
        isinstance(cause, hf.HfHubHTTPError) or _is_network_error(cause)
    ) and not isinstance(cause, hf.OfflineModeIsEnabled):
        return describe(cause, repo, revision, action)
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)):
        return f"{prefix}not in the local cache and the Hub cannot be used (HF_HUB_OFFLINE or network down)"
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        server = " ".join((getattr(exc, "server_message", None) or "").split())
        return f"{prefix}Hub answered HTTP {status}: {server[:300] or _first_line(exc)}"
    if _is_network_error(exc):
        return f"{prefix}cannot reach the Hub at {endpoint()} ({type(exc).__name__}: {_first_line(exc)})"
    if isinstance(exc, OSError):
        return f"{prefix}download failed ({_first_line(exc)})"
    return f"{prefix}{type(exc).__name__}: {_first_line(exc)}"


def _is_network_error(exc: BaseException) -> bool:
    try:
        import httpx2 as httpx  # huggingface_hub 2.x
    except ImportError:  # pragma: no cover - older huggingface_hub
        import httpx  # type: ignore[no-redef]
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def is_network_error(exc: BaseException) -> bool:
    """True for connection failures and timeouts (the Hub could not be reached at all)."""
    return _is_network_error(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
