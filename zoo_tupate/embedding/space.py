"""Spaces: embeddings are only compared within one base model, method, repr, pooling and layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from zoo_tupate.core.errors import ZooError

#: Organisations the Hub moved legacy canonical models into; ``FacebookAI/roberta-base`` = ``roberta-base``.
_LEGACY_ORGS = {"google-bert", "facebookai", "distilbert", "openai-community", "google-t5", "albert"}
_ALIASES = {
    "sentence-transformers/all-minilm-l6-v2": "sentence-transformers/all-minilm-l6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-minilm-l6-v2",
}


def normalize_base_model(name: str | None, base_model_id: str | None = None) -> str:
    """A canonical, lower-case identity for a base model (``unknown`` when nothing names it).

    ``base_model_id`` (the user's word for a local base model) wins. A local path is identified by the
    ``_name_or_path``/``name_or_path`` of its ``config.json`` when present, else by its folder name.
    """
    if base_model_id:
        name = base_model_id
    if not name:
        return "unknown"
    name = name.strip().rstrip("/")
    if not base_model_id and _is_local(name):
        from zoo_tupate.core.models import packaged_identity

        path = Path(name).expanduser()
        name = packaged_identity(path) or _name_from_local_config(path) or path.name
    lowered = name.lower()
    if "/" in lowered:
        org, rest = lowered.split("/", 1)
        if org in _LEGACY_ORGS and "/" not in rest:
            lowered = rest
    return _ALIASES.get(lowered, lowered)


def _is_local(name: str) -> bool:
    """Whether a base model name is a local folder (a name no file system accepts is not)."""
    try:
        path = Path(name).expanduser()
        return (name.startswith((".", "/", "~")) or path.is_dir()) and path.exists()
    except (OSError, ValueError):  # too long, a NUL byte
        return False


def _name_from_local_config(path: Path) -> str | None:
    from zoo_tupate.readers.base import read_json_bounded

    try:
        data = read_json_bounded(path / "config.json", path, "model config")
    except ZooError:
        return None
    for key in ("_name_or_path", "name_or_path"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and value and not value.startswith(("/", ".")):
            return value
    return None


def layout_hash(layout: list) -> str:
    """Eight hex digits identifying a layout (names and shapes)."""
    text = json.dumps(layout, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def space_name(base_model: str, method: str, repr_: str, pooling: str, layout: list) -> str:
    """``<base>/<method>/<repr>/<pooling>/<layout hash>``: the key under which vectors are comparable."""
    return f"{base_model}/{method}/{repr_}/{pooling}/{layout_hash(layout)}"


def parse_space(space: str) -> dict[str, str]:
    """Split a space name back into base model, method, repr, pooling and layout hash."""
    parts = space.split("/")
    if len(parts) < 5:
        return {"base_model": space, "method": "", "repr": "", "pooling": "", "layout": ""}
    base = "/".join(parts[:-4])
    method, repr_, pooling, layout = parts[-4:]
    return {"base_model": base, "method": method, "repr": repr_, "pooling": pooling, "layout": layout}


def short_space(space: str) -> str:
    """``method/repr/hash`` of a space (the base model and pooling left out), for narrow tables."""
    parts = parse_space(space)
    if not parts.get("method"):
        return space
    return f"{parts['method']}/{parts['repr']}/{parts['layout']}" + (
        f" ({parts['pooling']})" if parts.get("pooling") not in ("layer-mean", None) else "")


def space_dirname(space: str) -> str:
    """A filesystem-safe directory name for a space."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in space)
    return f"{safe[:80]}-{hashlib.sha256(space.encode()).hexdigest()[:10]}"
