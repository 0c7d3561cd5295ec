"""Every environment variable zoo-tupate reads, in one place."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "ZOO_TUPATE_HOME"


def default_home() -> Path:
    """The zoo home: ``$ZOO_TUPATE_HOME`` or a per-user cache directory."""
    value = os.environ.get(HOME_ENV)
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("zoo-tupate"))


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks for cache-only Hub access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


HUB_TIMEOUT_ENV = "ZOO_TUPATE_HUB_TIMEOUT"
#: Seconds one repo's Hub traffic (resolve + download) may take in ``pull`` / ``suggest --target org/name``.
DEFAULT_HUB_TIMEOUT = 300.0


def parse_timeout(value: str | float | None, what: str = HUB_TIMEOUT_ENV) -> float | None:
    """Seconds from ``value``; ``None`` for no deadline (``0``, ``none``, ``off``); ValueError when not a number."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"0", "none", "off", "inf", ""}:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{what}={value!r}: not a number of seconds (0 or 'none' for no deadline)") from None
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{what}={value!r}: must be a positive number of seconds (0 or 'none' for no deadline)")
    return None if seconds in (0.0, float("inf")) else seconds


def hub_timeout() -> float | None:
    """The per-repo Hub deadline: ``$ZOO_TUPATE_HUB_TIMEOUT`` seconds (default 300; 0 or ``none``: no deadline)."""
    value = os.environ.get(HUB_TIMEOUT_ENV)
    return DEFAULT_HUB_TIMEOUT if value is None else parse_timeout(value)


HUB_ANSWER_TIMEOUT_ENV = "ZOO_TUPATE_HUB_ANSWER_TIMEOUT"
#: Seconds a Hub server may keep a request without answering a byte (a silent server fails then, not at the
#: repo's deadline); a server that answers slowly but within it still completes.
DEFAULT_HUB_ANSWER_TIMEOUT = 30.0


def hub_answer_timeout() -> float | None:
    """``$ZOO_TUPATE_HUB_ANSWER_TIMEOUT`` seconds (default 30; 0 or ``none``: wait until the repo's deadline)."""
    value = os.environ.get(HUB_ANSWER_TIMEOUT_ENV)
    return DEFAULT_HUB_ANSWER_TIMEOUT if value is None else parse_timeout(value, HUB_ANSWER_TIMEOUT_ENV)


HUB_MAX_FILE_ENV = "ZOO_TUPATE_HUB_MAX_FILE_BYTES"
#: Largest adapter file ``pull`` / ``suggest --target org/name`` downloads (adapters are KB to MB, never GB).
DEFAULT_HUB_MAX_FILE_BYTES = 1024**3


def hub_max_file_bytes() -> int:
    """``$ZOO_TUPATE_HUB_MAX_FILE_BYTES`` (default 1 GiB): the cap on one downloaded adapter file."""
    value = os.environ.get(HUB_MAX_FILE_ENV, "").strip()
    if not value:
        return DEFAULT_HUB_MAX_FILE_BYTES
    try:
        cap = int(float(value))
    except ValueError:
        raise ValueError(f"{HUB_MAX_FILE_ENV}={value!r}: not a number of bytes") from None
    if cap < 1:
        raise ValueError(f"{HUB_MAX_FILE_ENV}={value!r}: must be a positive number of bytes")
    return cap
