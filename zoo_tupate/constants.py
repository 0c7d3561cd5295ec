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
