"""The hostile inputs of issue 12 (one generated case per class), added to ``malformed_cases.generate``.

Each was a traceback before: a ``dtype`` that is a list or an object, JSON nested 10,000 deep (header
metadata, a header entry, the config), LoRA rank 0 and many zero-size tensors, a layer index of 5,000
digits, ``r``/``lora_alpha`` of 10**400, a folder that is a symbolic link loop; plus the "also wrong"
ones: a duplicate header key, a header one byte over the cap, self-linked and dangling configs, pickle
streams over the size bound, ``lora_alpha: 0`` (degenerate).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Zero-size tensors in the generated case (the 200,000 of the issue run in their own test).
ZERO_SIZE_TENSORS = 2_000
#: Bytes of the generated pickle "list bombs" (just over the 4 MiB bound).
BOMB_BYTES = 4 * 1024 * 1024 + 4096

DEEP = "[" * 10_000 + "]" * 10_000


def list_bomb(nbytes: int) -> bytes:
    """A protocol-2 pickle of one long list of small ints (``nbytes`` long)."""
    return b"\x80\x02]q\x00(" + b"K\x01" * ((nbytes - 8) // 2) + b"e."


def zip_bomb(nbytes: int) -> bytes:
    """A torch-zip-shaped file whose ``data.pkl`` is a list bomb."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        fixed = (1980, 1, 1, 0, 0, 0)  # no wall-clock time in the bytes: the generator stays reproducible
        archive.writestr(zipfile.ZipInfo("archive/data.pkl", fixed), list_bomb(nbytes))
        archive.writestr(zipfile.ZipInfo("archive/version", fixed), "3\n")
    return buffer.getvalue()


def legacy_bomb(nbytes: int) -> bytes:
    """A legacy torch file (valid magic number, protocol, sys info) whose object pickle is a list bomb."""
    import pickle

    head = (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"little_endian": True}, protocol=2))
    return head + list_bomb(nbytes)


def zero_size_header(prefix: str, count: int) -> dict:
    """A header of ``count`` zero-size LoRA tensors (rank 0, empty data section)."""
    header = {}
    for i in range(count // 2):
        for part, shape in (("lora_A", [0, 32]), ("lora_B", [32, 0])):
            header[f"{prefix}.{i}.attention.self.query.{part}.weight"] = {
                "dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
    return header


def generate(root: Path, mc, add: Callable[[str, str, Path, str], None]) -> None:
    """Write the hostile cases under ``root`` (``mc``: the malformed_cases module, for its builders)."""
    rng = np.random.default_rng(12)
    good = mc.st_bytes(mc.lora_tensors(rng))
    _, header, data = mc.split_header(good)
    first = sorted(k for k in header if k != "__metadata__")[0]
    text = json.dumps(header)

    case = mc.case_writer(root, "hostile", add)

    for name, dtype in {"dtype-list": ["F32"], "dtype-object": {"F": 32}}.items():
        case(name, mc.raw_st({**header, first: {**header[first], "dtype": dtype}}, data))
    case("deep-metadata", mc.raw_st(None, data, header_bytes=(text[:-1] + ', "__metadata__": {"x": '
                                                              + DEEP + "}}").encode()))
    case("deep-tensor-entry", mc.raw_st(None, data, header_bytes=(text[:-1] + ', "zz": {"dtype": '
                                                                  + DEEP + "}}").encode()))
    case("deep-config", good, ('{"peft_type": "LORA", "target_modules": ' + DEEP + "}").encode())
    case("rank-0", mc.st_bytes(mc.lora_tensors(rng, rank=0)))
    case(f"zero-size-{ZERO_SIZE_TENSORS}", mc.raw_st(zero_size_header(mc.PREFIX, ZERO_SIZE_TENSORS)))
    long_index = {k.replace(".layer.0.", ".layer." + "7" * 5000 + "."): v for k, v in mc.lora_tensors(rng).items()}
    case("layer-index-5000-digits", mc.st_bytes(long_index))
    big = "1" + "0" * 400
    case("r-10^400", good, f'{{"peft_type": "LORA", "r": {big}, "lora_alpha": 8}}'.encode())
    case("alpha-10^400", good, f'{{"peft_type": "LORA", "r": 4, "lora_alpha": {big}}}'.encode())
    case("alpha-1e400", good, b'{"peft_type": "LORA", "r": 4, "lora_alpha": 1e400}')
    case("alpha-nan", good, b'{"peft_type": "LORA", "r": 4, "lora_alpha": NaN}')
    loop = root / "hostile-folder-symlink-loop"
    loop.symlink_to(loop)
    add("hostile", "folder-symlink-loop", loop, "fail")
    self_linked = case("config-self-linked", good, None)
    (self_linked / "adapter_config.json").symlink_to(self_linked / "adapter_config.json")
    dangling = case("config-dangling-link", good, None)
    (dangling / "adapter_config.json").symlink_to(dangling / "missing.json")
    duplicate = text[:-1] + f", {json.dumps(first)}: {json.dumps(header[first])}}}"
    case("duplicate-tensor-key", mc.raw_st(None, data, header_bytes=duplicate.encode()))
    case("header-cap-plus-1", struct.pack("<Q", 100 * 2**20 + 1) + b"{}")
    case("pickle-list-bomb", list_bomb(BOMB_BYTES), weights_name="adapter_model.bin")
    case("torch-zip-list-bomb", zip_bomb(BOMB_BYTES), weights_name="adapter_model.bin")
    case("lora-alpha-0", good, {**mc.CONFIG, "lora_alpha": 0}, expect="degenerate")
