"""The catalog card schema and the small validator that checks cards against it (no jsonschema needed)."""

from __future__ import annotations

import re
from typing import Any

METHODS = ("lora", "bitfit", "prefix", "prompt", "ia3", "bottleneck")
TASK_TYPES = (
    "classification", "regression", "extractive-qa", "multiple-choice-qa", "boolean-qa", "open-domain-qa",
)

_NAME = r"^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*$"
_STR = {"type": "string", "minLength": 1}
_STR_LIST = {"type": "array", "items": _STR}
_VERIFIED = {"type": "boolean"}

#: JSON-Schema-like description of a card (the subset :func:`validate` understands: type, enum, required,
#: properties, additionalProperties, items, minItems, minLength, minimum, pattern, propertyValues).
CARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "name", "family", "title", "description", "task_type", "paper_group", "train_size", "dataset",
        "adapters", "aliases", "hub_search",
    ],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "family": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$"},
        "title": _STR,
        "citation": _STR,
        "description": _STR,
        "task_type": {"type": "string", "enum": list(TASK_TYPES)},
        "paper_group": {"type": "string", "enum": ["CR", "QA", "SL", "other"]},
        "train_size": {"type": "integer", "minimum": 1},
        "hub_train_rows": {"type": ["integer", "null"], "minimum": 1},
        "dataset": {
            "type": "object",
            "required": ["hub_id", "config", "splits", "text_columns", "label_column", "labels", "verified"],
            "additionalProperties": False,
            "properties": {
                "hub_id": {"type": ["string", "null"], "pattern": r"^([A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$"},
                "config": {"type": ["string", "null"], "minLength": 1},
                "splits": {"type": "object", "propertyValues": _STR},
                "text_columns": _STR_LIST,
                "label_column": {"type": ["string", "null"], "minLength": 1},
                "labels": {"type": ["array", "null"], "items": _STR, "minItems": 2},
                "verified": _VERIFIED,
                "note": _STR,
            },
        },
        "adapters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["repo", "method", "base_model", "verified"],
                "additionalProperties": False,
                "properties": {
                    "repo": {"type": "string", "pattern": r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$"},
                    "method": {"type": "string", "enum": list(METHODS)},
                    "base_model": _STR,
                    "revision": _STR,
                    "verified": _VERIFIED,
                    "note": _STR,
                },
            },
        },
        "aliases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "verified"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": r"^[\w.-]+/[\w.-]+@[\w.-]+$"},
                    "method": {"type": "string", "enum": list(METHODS)},
                    "verified": _VERIFIED,
                    "note": _STR,
                },
            },
        },
        "hub_search": {
            "type": "object",
            "required": ["keywords", "datasets"],
            "additionalProperties": False,
            "properties": {"keywords": _STR_LIST, "datasets": _STR_LIST},
        },
        "notes": _STR_LIST,
    },
}

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Check ``value`` against a :data:`CARD_SCHEMA`-style ``schema``; return ``"field: reason"`` problems."""
    where = path or "<card>"
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        ok = any(
            isinstance(value, _TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
            for t in names
        )
        if not ok:
            return [f"{where}: expected {' or '.join(names)}, got {_type_name(value)} ({value!r})"]
    if value is None:
        return []
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{where}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int) and not isinstance(value, bool) and value < schema.get("minimum", value):
        problems.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{where}: needs at least {schema['minItems']} items")
        for i, item in enumerate(value):
            problems += validate(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{_join(path, key)}: missing required field")
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: key {key!r} is not a string")
            elif key in props:
                problems += validate(item, props[key], _join(path, key))
            elif "propertyValues" in schema:
                problems += validate(item, schema["propertyValues"], _join(path, key))
            elif schema.get("additionalProperties", True) is False:
                problems.append(f"{_join(path, key)}: unknown field")
    return problems


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)
