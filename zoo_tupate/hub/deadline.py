"""Per-repo deadlines for Hub traffic, and the one-line reason given when one passes.

A :class:`Deadline` is registered under a random key; every request made for the repo carries the key in
the :data:`HEADER` header (huggingface_hub forwards the ``headers`` given to ``HfApi``/``snapshot_download`` to
every request it makes, from any of its worker threads, and across redirects). The transport
(:mod:`zoo_tupate.hub.transport`) looks the deadline up, strips the header before anything is sent, bounds
the request's timeouts by the time left, and records progress here so that the reason can say what happened:
no answer, a stalled transfer, or a transfer too slow to finish.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from zoo_tupate.core.constants import HUB_ANSWER_TIMEOUT_ENV, HUB_TIMEOUT_ENV, hub_timeout, parse_timeout
from zoo_tupate.core.errors import HubError
from zoo_tupate.core.redact import redact

#: Request header that carries a deadline's key from zoo-tupate to its transport (never sent to the server).
HEADER = "X-Zoo-Tupate-Deadline"

_ACTIVE: dict[str, Deadline] = {}
_LOCK = threading.Lock()
_OVERRIDE: contextvars.ContextVar[tuple[float | None] | None] = contextvars.ContextVar("zoo_hub_timeout",
                                                                                        default=None)


class HubTimeout(HubError):
    """A repo's Hub traffic did not finish within its deadline (no answer, stalled or too slow)."""


class FileTooLarge(HubError):
    """A download over the cap on one adapter file (``ZOO_TUPATE_HUB_MAX_FILE_BYTES``), listed or streamed."""


#: Request header that carries the cap on a download's bytes to the transport (never sent to the server).
CAP_HEADER = "X-Zoo-Tupate-Max-Bytes"


@dataclass
class Transfer:
    """One request of a repo (``GET <file>``; a resumed download is the same transfer) and its progress."""

    what: str
    phase: str = "answer"  # waiting for the "answer", or reading the "body"
    received: int = 0
    expected: int | None = None
    status: int | None = None  # of the last answer
    last_data: float = field(default_factory=time.monotonic)


@dataclass
class Deadline:
    """The time budget of one repo's Hub traffic, and what each of its requests has done so far."""

    repo: str
    seconds: float
    start: float = field(default_factory=time.monotonic)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    transfers: dict[str, Transfer] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """Headers to give huggingface_hub calls made for this repo."""
        return {HEADER: self.key}

    def remaining(self) -> float:
        return self.start + self.seconds - time.monotonic()

    def request(self, what: str) -> None:
        """A request (``GET <file>``) is about to be sent."""
        with self.lock:
            self.transfers.setdefault(what, Transfer(what)).phase = "answer"

    def body(self, what: str, expected: int | None, partial: bool = False, status: int | None = None) -> None:
        """The answer to ``what`` arrived; its body (``expected`` bytes, if known) follows. ``partial``: a
        ``206`` continuing the bytes received so far (else the transfer starts again from byte 0)."""
        with self.lock:
            transfer = self.transfers.setdefault(what, Transfer(what))
            transfer.phase, transfer.last_data, transfer.status = "body", time.monotonic(), status
            if not partial:
                transfer.received, transfer.expected = 0, expected

    def data(self, what: str, nbytes: int) -> None:
        with self.lock:
            transfer = self.transfers.setdefault(what, Transfer(what))
            transfer.received += nbytes
            transfer.last_data = time.monotonic()

    def exceeded(self, what: str | None = None, connecting: bool = False) -> HubTimeout:
        """The error for this deadline having passed during ``what`` (default: the longest-idle request)."""
        budget = f"{_seconds(self.seconds)} deadline (--timeout / {HUB_TIMEOUT_ENV})"
        with self.lock:
            transfer = self.transfers.get(what or "")
            if transfer is None:
                transfer = min(self.transfers.values(), key=lambda t: t.last_data, default=Transfer("the first request"))
            transfer = Transfer(**vars(transfer))
        idle = time.monotonic() - transfer.last_data
        what = transfer.what
        if connecting:
            reason = f"timed out: could not connect for {what} within the {budget}"
        elif transfer.status is not None and transfer.status >= 400:
            reason = f"gave up at the {budget}: the Hub kept answering HTTP {transfer.status} to {what}"
        elif transfer.phase == "answer" and not transfer.received:
            reason = f"timed out: connected, but no answer to {what} within the {budget}"
        else:
            expected = f" of {transfer.expected:,}" if transfer.expected is not None else ""
            done = f"{transfer.received:,}{expected} bytes"
            if idle >= min(5.0, self.seconds / 2):
                reason = f"transfer stalled: no data for {_seconds(idle)} during {what} ({done}); gave up at the {budget}"
            else:
                reason = f"timed out: {what} too slow to finish within the {budget} ({done} received)"
        return HubTimeout(redact(f"{self.repo}: {reason}"))


    def silent(self, what: str, seconds: float) -> HubTimeout:
        """The error for a server that kept ``what`` without answering a byte for ``seconds``."""
        return HubTimeout(redact(f"{self.repo}: timed out: connected, but no answer to {what} for "
                                 f"{_seconds(seconds)} (a silent server; {HUB_ANSWER_TIMEOUT_ENV})"))


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def lookup(key: str | None) -> Deadline | None:
    """The active deadline registered under ``key`` (None when unknown or finished)."""
    if not key:
        return None
    with _LOCK:
        return _ACTIVE.get(key)


@contextmanager
def repo_deadline(repo: str, seconds: float | None) -> Iterator[Deadline | None]:
    """Register a deadline of ``seconds`` for ``repo``'s Hub traffic (``None``: none) for the ``with`` block."""
    if seconds is None:
        yield None
        return
    deadline = Deadline(repo, float(seconds))
    with _LOCK:
        _ACTIVE[deadline.key] = deadline
    try:
        yield deadline
    finally:
        with _LOCK:
            _ACTIVE.pop(deadline.key, None)


def configured_timeout() -> float | None:
    """The per-repo deadline in force: the innermost :func:`using_timeout`, else ``$ZOO_TUPATE_HUB_TIMEOUT``."""
    override = _OVERRIDE.get()
    if override is not None:
        return override[0]
    try:
        return hub_timeout()
    except ValueError as exc:
        raise HubError(str(exc)) from None


@contextmanager
def using_timeout(seconds: float | str | None) -> Iterator[None]:
    """Use ``seconds`` (a ``--timeout`` value; ``None`` keeps the configured one) as the per-repo deadline."""
    if seconds is None:
        yield
        return
    try:
        value = parse_timeout(seconds, "--timeout")
    except ValueError as exc:
        raise HubError(str(exc)) from None
    token = _OVERRIDE.set((value,))
    try:
        yield
    finally:
        _OVERRIDE.reset(token)
