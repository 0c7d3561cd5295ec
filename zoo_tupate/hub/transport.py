"""huggingface_hub's HTTP client, with connect and read timeouts on every call and per-repo deadlines.

Installed with huggingface_hub's own hook (``set_client_factory``): the client is the library's default one
(its event hooks, redirects, proxies from the environment) whose transports are wrapped by
:class:`DeadlineTransport`. The wrapper:

- fills the timeouts huggingface_hub leaves open (``HfApi`` calls pass ``timeout=None``, i.e. wait forever) with
  ``HF_HUB_DOWNLOAD_TIMEOUT`` (huggingface_hub's setting, default 10 s) for connecting and for each read;
- inside a repo's deadline (see :mod:`zoo_tupate.hub.deadline`), lets the wait for an answer run until the
  deadline (a slow server that answers in time is not cut off), bounds every other wait by the time left,
  keeps the body's read timeout at ``HF_HUB_DOWNLOAD_TIMEOUT`` so that a stalled transfer is dropped and
  resumed by huggingface_hub (``Range`` requests), and turns the timeout that ends at the deadline into a
  :class:`~zoo_tupate.hub.deadline.HubTimeout` that says what happened. huggingface_hub does not retry that
  exception, so nothing runs past the deadline by more than one backoff pause.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from zoo_tupate.hub.deadline import CAP_HEADER, HEADER, Deadline, FileTooLarge, lookup

try:
    import httpx2 as httpx  # huggingface_hub 2.x
except ImportError:  # pragma: no cover - older huggingface_hub
    import httpx  # type: ignore[no-redef]

#: How long an upload's answer may take outside a deadline (the server stores and hashes what it received).
UPLOAD_ANSWER_TIMEOUT = 120.0
#: Slack for "the deadline has passed" (a socket timeout fires a hair early or late).
_EPSILON = 0.05

_INSTALL_LOCK = threading.Lock()
_installed = False


def io_timeout() -> float:
    """Connect and read timeout of every Hub call: huggingface_hub's ``HF_HUB_DOWNLOAD_TIMEOUT`` (seconds)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_DOWNLOAD_TIMEOUT)


def install() -> None:
    """Make huggingface_hub use :func:`make_client` (once per process; it closes the current session)."""
    global _installed
    if _installed:
        return
    with _INSTALL_LOCK:
        if _installed:
            return
        from huggingface_hub import set_client_factory

        set_client_factory(make_client)
        _installed = True


def make_client() -> Any:
    """huggingface_hub's default ``httpx`` client with every transport wrapped in :class:`DeadlineTransport`."""
    try:
        from huggingface_hub.utils._http import default_client_factory

        client = default_client_factory()
    except ImportError:  # pragma: no cover - the factory moved
        client = httpx.Client(follow_redirects=True, timeout=None)
    transport = getattr(client, "_transport", None)
    mounts = getattr(client, "_mounts", None)
    if isinstance(transport, httpx.BaseTransport) and isinstance(mounts, dict):
        client._transport = DeadlineTransport(transport)
        client._mounts = {p: (t if t is None else DeadlineTransport(t)) for p, t in mounts.items()}
        return client
    client.close()  # pragma: no cover - httpx internals changed: a plain client with our transport
    return httpx.Client(follow_redirects=True, timeout=None, transport=DeadlineTransport(httpx.HTTPTransport()))


class DeadlineTransport(httpx.BaseTransport):
    """Bounds each request's timeouts (see the module docstring); strips the deadline header before sending."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def handle_request(self, request: Any) -> Any:
        key = request.headers.pop(HEADER, None)
        cap = request.headers.pop(CAP_HEADER, None)
        try:
            return self._send(request, lookup(key), int(cap) if cap and cap.isdigit() else None)
        finally:
            if key is not None:  # httpx copies the request's headers into a redirect's request
                request.headers[HEADER] = key
            if cap is not None:
                request.headers[CAP_HEADER] = cap

    def _send(self, request: Any, deadline: Deadline | None, cap: int | None = None) -> Any:
        given = request.extensions.get("timeout") or {}
        io = io_timeout()
        upload = request.method not in ("GET", "HEAD")
        stall = given.get("read") or io
        timeouts = {
            "connect": given.get("connect") or io,
            "read": given.get("read") or (UPLOAD_ANSWER_TIMEOUT if upload else io),
            "write": given.get("write") or max(io, 60.0),
            "pool": given.get("pool") or io,
        }
        what = f"{request.method} {describe_url(request.url)}"
        if deadline is not None:
            if deadline.remaining() <= _EPSILON:
                raise deadline.exceeded(what)
            left = max(deadline.remaining(), 0.001)
            timeouts = {name: min(value, left) for name, value in timeouts.items()}
            answer = _answer_timeout()
            # an answer that comes before the deadline is awaited, unless the server stays silent that long
            timeouts["read"] = min(left, answer) if answer else left
            deadline.request(what)
        request.extensions["timeout"] = timeouts
        try:
            response = self.inner.handle_request(request)
        except httpx.TimeoutException as exc:
            if deadline is not None and deadline.remaining() <= _EPSILON:
                connecting = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                raise deadline.exceeded(what, connecting=connecting) from None
            if deadline is not None and isinstance(exc, httpx.ReadTimeout):
                raise deadline.silent(what, timeouts["read"]) from None
            raise
        if cap is not None and request.method == "GET" and response.status_code in (200, 206):
            length = response.headers.get("content-length")
            if length and length.isdigit() and int(length) > cap:
                response.close()
                raise too_large(request.url, f"the server announced {int(length):,} bytes", cap)
        if deadline is not None:
            length = response.headers.get("content-length")
            partial = response.status_code == 206
            deadline.body(what, int(length) if length and length.isdigit() and not partial else None, partial,
                          response.status_code)
        response.stream = _WatchedStream(response.stream, timeouts, stall, deadline, what,
                                         (cap, request.url) if cap is not None and request.method == "GET" else None)
        return response

    def close(self) -> None:
        self.inner.close()


class _WatchedStream(httpx.SyncByteStream):
    """A response body read with the stall timeout, counted against the repo's deadline."""

    def __init__(self, inner: Any, timeouts: dict[str, float], stall: float, deadline: Deadline | None,
                 what: str, cap: tuple[int, Any] | None = None) -> None:
        self.inner, self.timeouts, self.stall, self.deadline, self.what = inner, timeouts, stall, deadline, what
        self.cap = cap

    def __iter__(self) -> Iterator[bytes]:
        deadline = self.deadline
        # httpcore reads the body's read timeout from this dict when the body starts
        self.timeouts["read"] = self.stall if deadline is None else max(min(self.stall, deadline.remaining()), 0.001)
        received = 0
        try:
            for chunk in self.inner:
                received += len(chunk)
                if self.cap is not None and received > self.cap[0]:
                    raise too_large(self.cap[1], f"the server sent more than {self.cap[0]:,} bytes", self.cap[0])
                if deadline is not None:
                    deadline.data(self.what, len(chunk))
                    if deadline.remaining() <= 0:
                        raise deadline.exceeded(self.what)
                yield chunk
        except httpx.TimeoutException:
            if deadline is not None and deadline.remaining() <= _EPSILON:
                raise deadline.exceeded(self.what) from None
            raise

    def close(self) -> None:
        self.inner.close()


def _answer_timeout() -> float | None:
    from zoo_tupate.core.constants import hub_answer_timeout

    try:
        return hub_answer_timeout()
    except ValueError:
        return None  # refused with one line where the settings are read (pull, suggest)


def too_large(url: Any, what: str, cap: int) -> FileTooLarge:
    """The error for a download over ``cap`` bytes (the repo and file named from the URL)."""
    from zoo_tupate.core.constants import HUB_MAX_FILE_ENV

    path = unquote(str(url.path)).lstrip("/")
    repo = path.split("/resolve/", 1)[0] if "/resolve/" in path else path
    return FileTooLarge(f"{repo}: {describe_url(url)}: {what}, over the {cap:,}-byte cap on an adapter file "
                        f"({HUB_MAX_FILE_ENV}); download stopped")


def describe_url(url: Any) -> str:
    """The part of a Hub URL worth naming in a message: the file (``resolve/<rev>/<file>``) or the API path."""
    path = unquote(str(url.path))
    if "/resolve/" in path:
        return path.rsplit("/resolve/", 1)[1].split("/", 1)[-1]
    return path
