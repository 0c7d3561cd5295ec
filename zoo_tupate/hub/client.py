"""The Hub client as zoo-tupate uses it: endpoint, cache folder, and Hub errors turned into one line.

The endpoint and offline mode are read from the environment at call time (``HF_ENDPOINT``,
``HF_HUB_OFFLINE``), not from huggingface_hub's import-time constants, so one process can be pointed at a
local server. The token comes from huggingface_hub's usual sources and is never put in a message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from zoo_tupate.core.constants import hub_offline
from zoo_tupate.core.errors import HubError
from zoo_tupate.core.redact import redact, strip_url_secrets

DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint() -> str:
    """The Hub endpoint: ``$HF_ENDPOINT`` or the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def public_endpoint() -> str:
    """The endpoint as it may be shown or stored: without ``user:password@`` or token-like parameters."""
    return strip_url_secrets(endpoint())


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks for cache-only access."""
    return hub_offline()


def hub_cache(home: str | Path) -> Path:
    """Where pulled repos are cached: ``<home>/cache/hub`` (huggingface_hub's cache layout)."""
    return Path(home).expanduser() / "cache" / "hub"


def make_api(headers: dict[str, str] | None = None):
    """An ``HfApi`` for the current endpoint (token from huggingface_hub's usual sources).

    ``headers`` go with every request (a repo deadline's key, see :mod:`zoo_tupate.hub.deadline`).
    """
    from huggingface_hub import HfApi

    prepare()
    return HfApi(endpoint=endpoint(), library_name="zoo-tupate", library_version=_version(), headers=headers)


def prepare() -> None:
    """Before any Hub call: timeouts on huggingface_hub's client, and its log lines redacted."""
    from zoo_tupate.hub.transport import install

    install()
    _redact_library_logs()


class _RedactingFilter(logging.Filter):
    """Redacts huggingface_hub's log records (retry warnings name the URL, credentials included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            record.msg, record.args = redact(message), ()
        except Exception:  # noqa: BLE001 - logging must never fail
            pass
        return True


_FILTER = _RedactingFilter()


def _redact_library_logs() -> None:
    logger = logging.getLogger("huggingface_hub")
    for target in (logger, *logger.handlers):
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


def _version() -> str:
    from zoo_tupate.core.version import __version__

    return __version__


def hub_error(exc: BaseException, repo: str, revision: str | None = None, action: str = "") -> HubError:
    """A one-line :class:`HubError` for ``exc`` raised while talking to the Hub about ``repo``."""
    return HubError(redact(describe(exc, repo, revision, action)))


def describe(exc: BaseException, repo: str, revision: str | None = None, action: str = "") -> str:
    """One line saying what went wrong with ``repo`` (``exc`` from huggingface_hub, httpx or the OS).

    The reason is precise: not found, HTTP status, connection refused, timeout, a transfer cut short
    (truncated), a size mismatch; a deadline's own message is kept as it is.
    """
    from huggingface_hub import errors as hf

    from zoo_tupate.hub.deadline import HubTimeout

    if isinstance(exc, HubTimeout):
        return str(exc)
    where = f"{repo}@{revision}" if revision else repo
    prefix = f"{where}: {action + ': ' if action else ''}"
    hub = public_endpoint()
    if isinstance(exc, hf.RevisionNotFoundError):
        return f"{prefix}revision {revision or 'main'!r} not found on {hub}"
    if isinstance(exc, hf.GatedRepoError):
        return f"{prefix}gated repo: request access on the Hub and log in (hf auth login)"
    if isinstance(exc, hf.RepositoryNotFoundError):
        return f"{prefix}repo not found on {hub} (or private and the token has no access)"
    if isinstance(exc, (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError)) and not isinstance(
        exc, hf.LocalEntryNotFoundError
    ):
        return f"{prefix}file missing on the Hub ({_first_line(exc)})"
    if isinstance(exc, getattr(hf, "IncompleteSnapshotError", ())):
        return f"{prefix}cached copy is incomplete and the Hub cannot be used ({_first_line(exc)})"
    cause = exc.__cause__
    if isinstance(exc, hf.LocalEntryNotFoundError) and cause is not None and (
        isinstance(cause, (hf.HfHubHTTPError, hf.FileMetadataError)) or _is_network_error(cause)
    ) and not isinstance(cause, hf.OfflineModeIsEnabled):
        return describe(cause, repo, revision, action)
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)):
        return f"{prefix}not in the local cache and the Hub cannot be used (HF_HUB_OFFLINE or network down)"
    if isinstance(exc, hf.FileMetadataError):  # an answer without the Hub's headers (a redirect, a proxy page)
        return f"{prefix}the server's answer is not a Hub answer ({_first_line(exc)[:200]})"
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        server = " ".join((getattr(exc, "server_message", None) or "").split())
        elsewhere = _redirected_host(exc)
        who = f"{elsewhere} (where the Hub redirected the request)" if elsewhere else "Hub"
        return f"{prefix}{who} answered HTTP {status}: {server[:300] or _first_line(exc)}"
    network = _network_reason(exc, hub)
    if network:
        return f"{prefix}{network}"
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return f"{prefix}truncated download: {_size_mismatch(exc)}"
    if isinstance(exc, OSError):
        return f"{prefix}download failed ({_first_line(exc)})"
    return f"{prefix}{type(exc).__name__}: {_first_line(exc)}"


def _httpx():
    try:
        import httpx2 as httpx  # huggingface_hub 2.x
    except ImportError:  # pragma: no cover - older huggingface_hub
        import httpx  # type: ignore[no-redef]
    return httpx


def _network_reason(exc: BaseException, hub: str) -> str:
    """What a connection-level failure was (refused, timeout, cut short, ...); empty for anything else."""
    httpx = _httpx()
    if not _is_network_error(exc):
        return ""
    text = _first_line(exc)
    target = _request_target(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out connecting to the Hub at {hub}{target}"
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout, TimeoutError)):
        from zoo_tupate.hub.transport import io_timeout

        return f"timed out: the Hub at {hub} sent nothing for {io_timeout():g} s{target} (HF_HUB_DOWNLOAD_TIMEOUT)"
    if isinstance(exc, httpx.RemoteProtocolError) or "incomplete" in text.lower():
        import re

        counts = re.search(r"received (\d+) bytes, expected (\d+)", text)
        if counts:
            got, expected = (int(n) for n in counts.groups())
            return f"truncated: the server closed the connection after {got:,} of {expected:,} bytes{target}"
        return f"truncated: the server closed the connection before the end of its answer{target} ({text})"
    lowered = text.lower()
    if isinstance(exc, ConnectionRefusedError) or "refused" in lowered:
        return f"connection refused by {hub} (nothing listening there?)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "resolution" in lowered:
        return f"cannot resolve the Hub's host name in {hub}"
    if isinstance(exc, (httpx.ReadError, ConnectionResetError)) or "reset" in lowered:
        return f"connection to {hub} reset{target} ({text})"
    return f"cannot reach the Hub at {hub} ({type(exc).__name__}: {text})"


def _request_target(exc: BaseException) -> str:
    """`` during GET <file>`` when httpx recorded the request, else empty."""
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""
    from zoo_tupate.hub.transport import describe_url

    return f" during {request.method} {describe_url(request.url)}"


def _redirected_host(exc: BaseException) -> str:
    """The host that answered when it is not the configured endpoint's (a redirect), else empty."""
    from urllib.parse import urlsplit

    try:
        url = str(exc.response.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""
    host, hub = urlsplit(url).netloc.rsplit("@", 1)[-1], urlsplit(endpoint()).netloc.rsplit("@", 1)[-1]
    return host if host and host != hub else ""


def _size_mismatch(exc: BaseException) -> str:
    import re

    match = re.search(r"should be of size (\d+) but has size (\d+) \((.*?)\)", str(exc))
    if not match:
        return _first_line(exc)
    expected, got, name = match.groups()
    return f"{name}: received {int(got):,} of {int(expected):,} bytes"


def _is_network_error(exc: BaseException) -> bool:
    httpx = _httpx()
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
