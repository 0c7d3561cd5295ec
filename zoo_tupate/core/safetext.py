"""Text from untrusted files made safe to print and store: control and bidi characters escaped, JSON bounded.

A config or header can hold ``\\n`` and ANSI escapes (forging an ``error:`` line in a terminal), JSON nested
thousands deep (``RecursionError``) or integers of hundreds of digits (``OverflowError`` later on).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: C0 and C1 controls, DEL, zero-width and bidirectional formatting characters, line/paragraph separators.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Deepest JSON nesting accepted in configs (real adapter configs nest 3 or 4 levels).
MAX_JSON_DEPTH = 64
#: Largest integer magnitude accepted in a config (anything beyond is not a count, a rank or a seed).
MAX_JSON_INT = 2**63


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, keep: str = "") -> str:
    """``text`` with control/bidi characters written as escapes (``\\n``, ``\\x1b``, ``\\u202e``); the
    characters in ``keep`` (e.g. ``"\\n"``) stay as they are."""
    if not _CONTROL_RE.search(text):
        return text
    if keep:
        return _CONTROL_RE.sub(lambda m: m.group() if m.group() in keep else _escape_one(m), text)
    return _CONTROL_RE.sub(_escape_one, text)


def has_controls(text: str) -> bool:
    """True when ``text`` holds a character :func:`escape_controls` would escape."""
    return _CONTROL_RE.search(text) is not None


def loads_bounded(raw: str | bytes, unique_keys: bool = False) -> Any:
    """``json.loads`` raising only ``ValueError`` (never ``RecursionError``, nor ``OverflowError`` later on):
    for invalid JSON, anything :func:`check_bounded` refuses, or (``unique_keys``) an object with a repeated key."""
    hook = unique_pairs if unique_keys else None
    try:
        value = json.loads(raw, object_pairs_hook=hook)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    check_bounded(value)
    return value


def check_bounded(value: Any) -> None:
    """Raise ``ValueError`` if ``value`` nests deeper than :data:`MAX_JSON_DEPTH` or holds an integer beyond
    :data:`MAX_JSON_INT`, a non-finite float (``1e400``, ``NaN``, ``Infinity``) or a string that is not text
    (a lone surrogate such as ``"\\ud800"``: valid JSON, but it cannot be written or printed)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
            for key in item:
                _check_text(key)
        elif isinstance(item, list):
            children = item
        elif isinstance(item, str):
            _check_text(item)
            continue
        else:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_JSON_INT:
                raise ValueError(f"an integer too large ({item.bit_length()} bits)")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"a non-finite number ({item})")
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"a string that is not valid Unicode (lone surrogate at character {exc.start})") from None


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing (``ValueError``) an object with a repeated key."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {escape_controls(duplicate)[:80]!r}")
    return out
