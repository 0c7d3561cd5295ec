"""Keep Hugging Face tokens out of everything zoo-tupate prints or writes."""

from __future__ import annotations

import os
import re

_TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{8,}\b")


def _known_tokens() -> list[str]:
    tokens = [os.environ.get(name, "") for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
    try:  # the token huggingface_hub would use (env, token file, ...)
        from huggingface_hub import get_token

        tokens.append(get_token() or "")
    except Exception:  # noqa: BLE001 - redaction must never fail
        pass
    return [t for t in tokens if len(t) >= 6]


def redact(text: str) -> str:
    """Replace any configured token, and anything shaped like an ``hf_`` token, by ``***``."""
    for token in _known_tokens():
        text = text.replace(token, "***")
    return _TOKEN_RE.sub("hf_***", text)
