"""A property-style sweep: random damage to a good LoRA checkpoint, drawn from a seed.

Three kinds, in turn: random header corruption (1-4 bytes of the JSON header replaced by JSON-significant
or arbitrary bytes, or a random value swapped into a random field), random truncation (anywhere in the
file), and random key names (tensor names replaced by random strings: control characters, dots, digits,
``layer.N.`` with huge N, empty names, duplicates, non-ASCII). Any outcome is allowed except a traceback,
more than one stderr line on failure, or a failed command that changed the index.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import malformed_cases as mc
import numpy as np

KINDS = ("header", "truncate", "keys")
_JSON_BYTES = b'{}[]",:0123456789-+.eE \\/\x00\x1b\n\xff'
_FIELD_VALUES = [None, True, -1, 0, 2**64, 10**30, 1.5, "F32", "", [], {}, [[1]], ["a"], [-1, 2], [0, 2**63],
                 "x" * 300]
_ALPHABET = string.ascii_letters + string.digits + "._-/[]\\ \x00\x1b\n\t\u202e\u00e9\u4e2d"


def _random_name(rng: np.random.Generator) -> str:
    roll = rng.integers(0, 6)
    if roll == 0:
        return ""
    if roll == 1:
        digits = "".join(rng.choice(list(string.digits), size=int(rng.integers(1, 12))))
        return f"{mc.PREFIX}.{digits}.attention.self.query.lora_{'AB'[int(rng.integers(0, 2))]}.weight"
    if roll == 2:
        return "__metadata__"
    size = int(rng.integers(1, 80))
    return "".join(rng.choice(list(_ALPHABET), size=size))


def _header_damage(rng: np.random.Generator, good: bytes) -> bytes:
    length, header, data = mc.split_header(good)
    if rng.random() < 0.5:
        blob = bytearray(good)
        for _ in range(int(rng.integers(1, 5))):
            pos = 8 + int(rng.integers(0, length))
            blob[pos] = _JSON_BYTES[int(rng.integers(0, len(_JSON_BYTES)))]
        return bytes(blob)
    name = list(header)[int(rng.integers(0, len(header)))]
    if name == "__metadata__":
        header[name] = _FIELD_VALUES[int(rng.integers(0, len(_FIELD_VALUES)))]
    else:
        field = ["dtype", "shape", "data_offsets", "extra"][int(rng.integers(0, 4))]
        header[name][field] = _FIELD_VALUES[int(rng.integers(0, len(_FIELD_VALUES)))]
    return mc.raw_st(header, data)


def _truncate(rng: np.random.Generator, good: bytes) -> bytes:
    return good[:int(rng.integers(0, len(good)))]


def _rename_keys(rng: np.random.Generator, good: bytes) -> bytes:
    _, header, data = mc.split_header(good)
    names = [k for k in header if k != "__metadata__"]
    count = int(rng.integers(1, len(names) + 1))
    chosen = rng.choice(len(names), size=count, replace=False)
    pairs = [(k, v) for k, v in header.items()]
    for i in chosen:
        pairs[int(i)] = (_random_name(rng), pairs[int(i)][1])
    body = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"  # duplicates kept
    return mc.raw_st(None, data, header_bytes=body.encode())


_DAMAGE = {"header": _header_damage, "truncate": _truncate, "keys": _rename_keys}


def generate(root: Path, count: int, seed: int = 0) -> list[mc.Case]:
    """``count`` damaged checkpoints under ``root`` (the kinds in turn), reproducible from ``seed``."""
    rng = np.random.default_rng([seed, 500])
    good = mc.st_bytes(mc.lora_tensors(rng))
    cases = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        folder = mc.write_ckpt(root / f"sweep-{kind}-{i}", _DAMAGE[kind](rng, good))
        cases.append(mc.Case(f"sweep-{kind}-{i}", folder, "clean", f"sweep-{kind}"))
    return cases
