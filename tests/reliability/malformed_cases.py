"""Generated malformed checkpoints, reproducible by seed (no torch, no peft: raw bytes and JSON).

``generate(root, seed)`` writes one folder (or file) per case under ``root`` and returns the cases. Each
case says what the four commands (``info``, ``embed``, ``index add``, ``suggest --target``) must do:

* ``fail``: every command exits non-zero with one ``error:`` line naming the file;
* ``degenerate``: ``info``/``embed`` succeed and flag it, ``index add``/``suggest`` refuse it;
* ``clean``: odd but possibly valid (random bit flips in tensor data, odd config values): either a
  success or a clean one-line failure, never a traceback.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LAYERS = 2
HIDDEN = 32
RANK = 4
PREFIX = "base_model.model.bert.encoder.layer"
MODULES = ("query", "value")
CONFIG = {"peft_type": "LORA", "task_type": "SEQ_CLS", "r": RANK, "lora_alpha": 8,
          "target_modules": list(MODULES), "base_model_name_or_path": "tiny-bert"}
#: Pickle payloads write this file; the test checks it never appears.
MARKER_NAME = "PAYLOAD_RAN"


@dataclass
class Case:
    """One malformed input: where it is, what kind of damage, and the expected outcome."""

    name: str
    path: Path
    expect: str  # "fail" | "degenerate" | "clean"
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


# ------------------------------------------------------------------------------------------ builders
def lora_tensors(rng: np.random.Generator, rank: int = RANK, layers: int = LAYERS) -> dict[str, np.ndarray]:
    """PEFT LoRA key names and shapes of a tiny BERT (A: r×h, B: h×r), trained-looking values."""
    out = {}
    for layer in range(layers):
        for module in MODULES:
            key = f"{PREFIX}.{layer}.attention.self.{module}"
            out[f"{key}.lora_A.weight"] = (rng.standard_normal((rank, HIDDEN)) * 0.1).astype(np.float32)
            out[f"{key}.lora_B.weight"] = (rng.standard_normal((HIDDEN, rank)) * 0.1).astype(np.float32)
    return out


def st_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """A well-formed safetensors file (via the safetensors library)."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()})


def raw_st(header: dict | list | str, data: bytes = b"", header_len: int | None = None,
           header_bytes: bytes | None = None) -> bytes:
    """A safetensors file from a hand-written header (possibly lying about lengths)."""
    raw = header_bytes if header_bytes is not None else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    length = len(raw) if header_len is None else header_len
    return struct.pack("<Q", length) + raw + data


def split_header(blob: bytes) -> tuple[int, dict, bytes]:
    """(header length, header dict, data bytes) of a well-formed safetensors blob."""
    (length,) = struct.unpack("<Q", blob[:8])
    return length, json.loads(blob[8:8 + length]), blob[8 + length:]


def write_ckpt(folder: Path, weights: bytes | None, config: bytes | dict | None = CONFIG,
               weights_name: str = "adapter_model.safetensors") -> Path:
    """A checkpoint folder with ``weights`` (bytes) and ``adapter_config.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        (folder / weights_name).write_bytes(weights)
    if config is not None:
        text = config if isinstance(config, bytes) else json.dumps(config).encode()
        (folder / "adapter_config.json").write_bytes(text)
    return folder


def case_writer(root: Path, family: str, add: Callable[[str, str, Path, str], None]) -> Callable[..., Path]:
    """``case(name, weights, config=CONFIG, expect="fail", weights_name=...)``: write one checkpoint of
    ``family`` under ``root`` (folder ``<family>-<name>``) and register it with ``add``."""

    def case(name: str, weights: bytes | None, config: bytes | dict | None = CONFIG, expect: str = "fail",
             weights_name: str = "adapter_model.safetensors") -> Path:
        folder = write_ckpt(root / f"{family}-{name}", weights, config, weights_name)
        add(family, name, folder, expect)
        return folder

    return case


class _Exec:
    """A pickle payload that runs code when unpickled (what weights_only must refuse)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def evil_pickle(marker: Path) -> bytes:
    """A legacy pickle whose unpickling writes ``marker``."""
    return pickle.dumps({"x": _Exec(marker)}, protocol=2)


def evil_torch_zip(marker: Path) -> bytes:
    """A torch zip-format file (torch.save) whose ``data.pkl`` writes ``marker`` when unpickled."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight": torch.zeros(2, 2),
                "evil": _Exec(marker)}, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ the cases
def generate(root: Path, seed: int = 0, marker: Path | None = None) -> list[Case]:
    """Write every case under ``root``; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    marker = marker or root / MARKER_NAME
    cases: list[Case] = []

    def add(kind: str, name: str, path: Path, expect: str = "fail") -> None:
        cases.append(Case(f"{kind}-{name}", path, expect, kind))

    def folder(kind: str, name: str) -> Path:
        return root / f"{kind}-{name}"

    good = st_bytes(lora_tensors(rng))
    hlen, header, data = split_header(good)
    names = sorted(k for k in header if k != "__metadata__")

    # --- truncated files: every truncation point leaves the last tensor short of its offsets
    cuts = {"empty": 0, "3b": 3, "7b": 7, "prefix-only": 8, "half-header": 8 + hlen // 2,
            "header-only": 8 + hlen, "half-data": 8 + hlen + len(data) // 2, "minus-1": len(good) - 1}
    for i, cut in enumerate(sorted(rng.integers(9, len(good) - 1, size=6).tolist())):
        cuts[f"random{i}"] = cut
    for name, cut in cuts.items():
        add("truncated", name, write_ckpt(folder("truncated", name), good[:cut]))

    # --- bit flips in structural bytes (length prefix, offset/shape digits): must be refused
    text = good[8:8 + hlen].decode()
    digit_pos = [8 + i for i, ch in enumerate(text) if ch.isdigit() and _inside_numbers(text, i)]
    for i in range(6):
        pos = int(rng.integers(0, 8)) if i < 3 else 0
        if i >= 3:
            pos = int(rng.choice(digit_pos))
        blob = bytearray(good)
        blob[pos] ^= 1 << int(rng.integers(0, 8))
        add("bitflip-structure", f"{i}-byte{pos}", write_ckpt(folder("bitflip-structure", f"{i}"), bytes(blob)))
    # --- bit flips anywhere: a flipped float is still a float, so success is allowed; crashes are not
    for i in range(8):
        blob = bytearray(good)
        pos = int(rng.integers(0, len(blob)))
        blob[pos] ^= 1 << int(rng.integers(0, 8))
        add("bitflip-random", f"{i}-byte{pos}", write_ckpt(folder("bitflip-random", f"{i}"), bytes(blob)), "clean")

    # --- hand-written headers that lie
    first = names[0]
    spec = header[first]
    nbytes = spec["data_offsets"][1] - spec["data_offsets"][0]
    payload = data[:nbytes]

    def one(name: str, entry: dict | None = None, **kw) -> None:
        hdr = kw.pop("hdr", None)
        if hdr is None:
            hdr = {first: {**spec, "data_offsets": [0, nbytes], **(entry or {})}}
        add("header", name, write_ckpt(folder("header", name), raw_st(hdr, kw.pop("data", payload), **kw)))

    one("len-beyond-file", header_len=10_000)
    one("len-2^63", header_len=2**63)
    one("len-zero", header_len=0)
    one("len-max-u64", header_len=2**64 - 1)
    one("not-object-list", hdr=[1, 2, 3])
    one("not-object-string", hdr="tensors")
    one("not-utf8", header_bytes=b'{"\xff\xfe": 1}')
    one("end-beyond-file", {"data_offsets": [0, nbytes + 4096]})
    one("end-before-start", {"data_offsets": [nbytes, 0]})
    one("negative-offset", {"data_offsets": [-8, nbytes - 8]})
    one("offsets-not-ints", {"data_offsets": ["a", "b"]})
    one("offsets-missing", hdr={first: {"dtype": "F32", "shape": spec["shape"]}})
    one("dtype-missing", hdr={first: {"shape": spec["shape"], "data_offsets": [0, nbytes]}})
    one("dtype-unknown-F128", {"dtype": "F128"})
    one("dtype-unknown-Q4", {"dtype": "Q4_K"})
    one("dtype-number", {"dtype": 7})
    one("dtype-size-mismatch", {"dtype": "F16"})
    one("shape-absurd-1e24", {"shape": [10**12, 10**12]})
    one("shape-100GB", {"shape": [25 * 2**30]}, data=payload)
    one("claims-100GB-tensor", {"shape": [25 * 2**30], "data_offsets": [0, 100 * 2**30]})
    one("shape-negative", {"shape": [-RANK, -HIDDEN]})
    one("shape-strings", {"shape": ["four", HIDDEN]})
    one("shape-float", {"shape": [RANK + 0.5, HIDDEN]})
    one("shape-not-list", {"shape": 128})
    one("entry-not-object", hdr={first: [0, nbytes]})
    one("metadata-list", hdr={"__metadata__": [1], first: {**spec, "data_offsets": [0, nbytes]}})
    one("empty-header", hdr={}, data=b"")
    two = {first: {**spec, "data_offsets": [0, nbytes]}, names[1]: {**header[names[1]], "data_offsets": [0, nbytes]}}
    one("overlapping-offsets", hdr=two)
    gap = {first: {**spec, "data_offsets": [8, 8 + nbytes]}}
    one("gap-before-data", hdr=gap, data=b"\0" * 8 + payload)
    one("trailing-bytes", data=payload + b"\0" * 64)

    # --- configs
    weights = good
    for name, raw in {"empty": b"", "invalid": b"{", "list": b"[]", "string": b'"LORA"', "number": b"42",
                      "null": b"null", "not-utf8": b'{"peft_type": "\xff"}', "truncated": json.dumps(CONFIG)[:-9].encode(),
                      }.items():
        add("config", name, write_ckpt(folder("config", name), weights, raw))
    for name, peft_type in {"unknown-method": "FOO_TUNING", "prefix-with-lora-tensors": "PREFIX_TUNING",
                            "prompt-with-lora-tensors": "PROMPT_TUNING", "ia3-with-lora-tensors": "IA3",
                            "peft-type-number": 42, "peft-type-list": ["LORA"]}.items():
        add("config", name, write_ckpt(folder("config", name), weights, {**CONFIG, "peft_type": peft_type}))
    for name, extra in {"alpha-string": {"lora_alpha": "eight"}, "r-negative": {"r": -1},
                        "target-modules-number": {"target_modules": 3}, "base-model-number": {"base_model_name_or_path": 5},
                        "rank-pattern-list": {"rank_pattern": [1, 2]}}.items():
        add("config", name, write_ckpt(folder("config", name), weights, {**CONFIG, **extra}), "clean")
    cfg_dir = write_ckpt(folder("config", "is-a-directory"), weights, None)
    (cfg_dir / "adapter_config.json").mkdir()
    add("config", "is-a-directory", cfg_dir)
    fifo_dir = write_ckpt(folder("config", "is-a-fifo"), weights, None)
    os.mkfifo(fifo_dir / "adapter_config.json")
    add("config", "is-a-fifo", fifo_dir)

    # --- non-finite and all-zero tensors: degenerate
    def mutate(name: str, fn, expect: str = "degenerate", config=CONFIG, kind: str = "values") -> None:
        tensors = lora_tensors(np.random.default_rng([seed, len(cases)]))
        fn(tensors)
        add(kind, name, write_ckpt(folder(kind, name), st_bytes(tensors), config), expect)

    key = f"{PREFIX}.1.attention.self.value"
    mutate("nan-one-value", lambda t: t[f"{key}.lora_B.weight"].__setitem__((3, 1), np.nan))
    mutate("posinf-one-value", lambda t: t[f"{key}.lora_A.weight"].__setitem__((0, 0), np.inf))
    mutate("neginf-one-value", lambda t: t[f"{key}.lora_A.weight"].__setitem__((1, 5), -np.inf))
    mutate("all-nan", lambda t: [a.fill(np.nan) for a in t.values()])
    mutate("nan-f16", lambda t: t.update({k: v.astype(np.float16) for k, v in t.items()})
           or t[f"{key}.lora_B.weight"].__setitem__((0, 0), np.nan))
    mutate("all-zero", lambda t: [a.fill(0) for a in t.values()])
    mutate("lora-B-zero-untrained", lambda t: [a.fill(0) for k, a in t.items() if "lora_B" in k])
    mutate("f32-max-overflow-pooled", lambda t: [a.fill(np.finfo(np.float32).max) for a in t.values()], "clean")
    ia3 = {f"{PREFIX}.{layer}.attention.self.{m}.ia3_l.weight": np.zeros((HIDDEN, 1), np.float32)
           for layer in range(LAYERS) for m in ("key", "value")}
    add("values", "ia3-all-zero", write_ckpt(folder("values", "ia3-all-zero"), st_bytes(ia3),
                                             {"peft_type": "IA3", "base_model_name_or_path": "tiny-bert"}),
        "degenerate")

    # --- shapes that do not fit together
    def reshape(name: str, fn) -> None:
        mutate(name, fn, "fail", kind="shapes")

    b0 = f"{PREFIX}.0.attention.self.query.lora_B.weight"
    a1 = f"{PREFIX}.1.attention.self.query.lora_A.weight"
    reshape("rank-differs-across-layers", lambda t: t.__setitem__(a1, np.ones((RANK * 2, HIDDEN), np.float32)))
    reshape("A-B-rank-mismatch-all-layers", lambda t: [t.__setitem__(k, np.ones((HIDDEN, RANK * 2), np.float32))
                                                       for k in list(t) if "lora_B" in k])
    reshape("lora-A-1d", lambda t: [t.__setitem__(k, np.ones(HIDDEN, np.float32)) for k in list(t) if "lora_A" in k])
    reshape("lora-A-3d", lambda t: [t.__setitem__(k, np.ones((RANK, HIDDEN, 2), np.float32))
                                    for k in list(t) if "lora_A" in k])
    reshape("hidden-differs-across-layers", lambda t: t.__setitem__(b0, np.ones((HIDDEN * 2, RANK), np.float32)))
    ia3_bad = {f"{PREFIX}.{layer}.attention.self.key.ia3_l.weight": np.ones((HIDDEN * (layer + 1), 1), np.float32)
               for layer in range(LAYERS)}
    add("shapes", "ia3-width-differs", write_ckpt(folder("shapes", "ia3-width-differs"), st_bytes(ia3_bad),
                                                  {"peft_type": "IA3"}))
    prefix_bad = {"prompt_embeddings": np.ones((5, 2 * HIDDEN * LAYERS + 3), np.float32)}
    add("shapes", "prefix-width-indivisible",
        write_ckpt(folder("shapes", "prefix-width-indivisible"), st_bytes(prefix_bad),
                   {"peft_type": "PREFIX_TUNING", "num_layers": LAYERS, "token_dim": HIDDEN}))
    prefix_1d = {"prompt_embeddings": np.ones(5 * 2 * HIDDEN * LAYERS, np.float32)}
    add("shapes", "prefix-1d", write_ckpt(folder("shapes", "prefix-1d"), st_bytes(prefix_1d),
                                          {"peft_type": "PREFIX_TUNING", "num_layers": LAYERS}))

    # --- missing layers / modules
    def missing(name: str, fn) -> None:
        mutate(name, fn, "fail", kind="layers")

    missing("layer1-lacks-lora-B", lambda t: t.pop(f"{key}.lora_B.weight"))
    missing("layer1-lacks-value-module", lambda t: [t.pop(k) for k in list(t) if k.startswith(key + ".")])
    missing("no-layer-index", lambda t: [t.__setitem__(k.replace(".layer.", ".block_"), t.pop(k)) for k in list(t)])
    missing("two-adapters-one-file", lambda t: t.update({k.replace(".weight", ".default.weight"): v.copy()
                                                         for k, v in list(t.items())}))
    add("layers", "no-tensors", write_ckpt(folder("layers", "no-tensors"), st_bytes({})))
    add("layers", "no-weights-file", write_ckpt(folder("layers", "no-weights-file"), None))
    mutate("layers-0-and-5-only", lambda t: [t.__setitem__(k.replace(".layer.1.", ".layer.5."), t.pop(k))
                                             for k in list(t) if ".layer.1." in k], "clean", kind="layers")

    # --- pickles
    add("pickle", "exec-legacy", write_ckpt(folder("pickle", "exec-legacy"), evil_pickle(marker), CONFIG,
                                            "adapter_model.bin"))
    add("pickle", "exec-torch-zip", write_ckpt(folder("pickle", "exec-torch-zip"), evil_torch_zip(marker), CONFIG,
                                               "adapter_model.bin"))
    add("pickle", "numpy-array", write_ckpt(folder("pickle", "numpy-array"),
                                            pickle.dumps({"a": np.ones(3, np.float32)}), CONFIG, "adapter_model.bin"))
    add("pickle", "garbage", write_ckpt(folder("pickle", "garbage"), bytes(rng.integers(0, 256, 512, np.uint8)),
                                        CONFIG, "adapter_model.bin"))
    add("pickle", "empty", write_ckpt(folder("pickle", "empty"), b"", CONFIG, "adapter_model.bin"))
    add("pickle", "list-not-dict", write_ckpt(folder("pickle", "list-not-dict"), _torch_list(), CONFIG,
                                              "adapter_model.bin"))

    # --- links out of the checkpoint folder
    outside = write_ckpt(root / "_outside", good)
    for name, target in {"weights-abs": outside / "adapter_model.safetensors",
                         "weights-rel": Path("..") / "_outside" / "adapter_model.safetensors",
                         "weights-dev-zero": Path("/dev/zero")}.items():
        f = write_ckpt(folder("symlink", name), None)
        (f / "adapter_model.safetensors").symlink_to(target)
        add("symlink", name, f)
    f = write_ckpt(folder("symlink", "config-abs"), good, None)
    (f / "adapter_config.json").symlink_to(outside / "adapter_config.json")
    add("symlink", "config-abs", f)
    f = write_ckpt(folder("symlink", "weights-loop"), None)
    (f / "adapter_model.safetensors").symlink_to(f / "adapter_model.safetensors")
    add("symlink", "weights-loop", f)
    f = write_ckpt(folder("symlink", "weights-is-dir"), None)
    (f / "adapter_model.safetensors").mkdir()
    add("symlink", "weights-is-dir", f)
    f = write_ckpt(folder("symlink", "weights-fifo"), None)
    os.mkfifo(f / "adapter_model.safetensors")
    add("symlink", "weights-fifo", f)

    # --- the hostile classes of issue 12 (fixed seed: they are hand-made, not drawn)
    import hostile_cases

    hostile_cases.generate(root, sys.modules[__name__], add)
    # --- the hostile files of issue 23 (hand-made too)
    import hardening2_cases

    hardening2_cases.generate(root, sys.modules[__name__], add)
    return cases


def sparse_case(root: Path, apparent_bytes: int) -> Path:
    """A sparse file whose valid header describes ``apparent_bytes`` of LoRA data (zeros on disk: none)."""
    rows = apparent_bytes // (4 * HIDDEN * LAYERS * 2)
    header, offset = {}, 0
    for layer in range(LAYERS):
        for part, shape in (("lora_A", (rows, HIDDEN)), ("lora_B", (HIDDEN, rows))):
            size = 4 * shape[0] * shape[1]
            header[f"{PREFIX}.{layer}.attention.self.query.{part}.weight"] = {
                "dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
    folder = write_ckpt(root / "huge-sparse", None)
    path = folder / "adapter_model.safetensors"
    with open(path, "wb") as handle:
        handle.write(raw_st(header))
        handle.truncate(handle.tell() + offset)
    return folder


def _inside_numbers(text: str, i: int) -> bool:
    """True when text[i] is inside a ``shape`` or ``data_offsets`` array."""
    start = text.rfind("[", 0, i)
    return start > 0 and text.rfind("]", 0, i) < start and text[max(0, start - 16):start].rstrip(":\"").endswith(
        ("shape", "data_offsets"))


def _torch_list() -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save([torch.ones(2)], buffer)
    return buffer.getvalue()
