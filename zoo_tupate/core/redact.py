"""Keep secrets out of everything zoo-tupate prints or writes: Hugging Face tokens, credentials inside URLs
(``http://user:PASSWORD@host``) and token-like query parameters (``?token=...``, signed-URL signatures)."""

from __future__ import annotations

import base64
import os
import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

_TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{8,}\b")
#: ``scheme://userinfo@`` — greedy up to the authority's last ``@`` (a raw ``@`` inside a password).
_USERINFO_RE = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s?#'\"<>`]*@")
#: Query parameters that carry credentials (tokens, keys, passwords, pre-signed URL signatures).
_SECRET_PARAM_RE = re.compile(
    r"([?&;](?:[\w.-]*token|api[_-]?key|apikey|key|password|passwd|pwd|secret|auth|authorization|sig|signature"
    r"|x-amz-signature|x-amz-credential|x-amz-security-token|credential|policy|key-pair-id)=)[^&\s#'\"<>`]+",
    re.IGNORECASE,
)
#: Environment variables whose URLs may hold a user and password.
_URL_ENVS = ("HF_ENDPOINT", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
#: Shorter secrets are removed only where they appear inside a URL (replacing 2-letter words would garble text).
_MIN_SECRET = 4


def strip_url_secrets(url: str) -> str:
    """``url`` without its userinfo (``user:password@``) and without token-like query parameter values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _scrub_urls(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = _SECRET_PARAM_RE.sub(r"\1***", "?" + parts.query)[1:] if parts.query else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _scrub_urls(text: str) -> str:
    return _SECRET_PARAM_RE.sub(r"\1***", _USERINFO_RE.sub(r"\1", text))


def _url_secrets() -> list[str]:
    """Passwords (and ``user:password`` pairs, plain, URL-quoted and base64 as in a Basic auth header) of the
    URLs configured in the environment."""
    out: list[str] = []
    for name in _URL_ENVS:
        value = os.environ.get(name, "")
        if "@" not in value:
            continue
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            continue
        userinfo = parts.netloc.rpartition("@")[0]
        if not userinfo:
            continue
        user, _, password = userinfo.partition(":")
        plain_user, plain_password = unquote(user), unquote(password)
        pair = f"{plain_user}:{plain_password}"
        out += [userinfo, pair, base64.b64encode(pair.encode()).decode().rstrip("=")]
        for secret in {password, plain_password, quote(plain_password, safe="")}:
            out.append(secret)
    return [s for s in dict.fromkeys(out) if len(s) >= _MIN_SECRET]


def _known_tokens() -> list[str]:
    tokens = [os.environ.get(name, "") for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
    try:  # the token huggingface_hub would use (env, token file, ...)
        from huggingface_hub import get_token

        tokens.append(get_token() or "")
    except Exception:  # noqa: BLE001 - redaction must never fail
        pass
    return [t for t in tokens if len(t) >= 6]


def redact(text: str) -> str:
    """Remove secrets from ``text``: credentials and token-like parameters of every URL in it, the configured
    token, the passwords of the URLs configured in the environment (``HF_ENDPOINT``, proxies), and anything
    shaped like an ``hf_`` token."""
    text = _scrub_urls(text)
    for secret in sorted(_url_secrets(), key=len, reverse=True):
        text = text.replace(secret, "***")
    for token in _known_tokens():
        text = text.replace(token, "***")
    return _TOKEN_RE.sub("hf_***", text)
