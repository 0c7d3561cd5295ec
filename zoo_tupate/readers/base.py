"""What every reader sees (a checkpoint folder) and returns (tuned parameters grouped by layer)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.core.errors import CorruptCheckpoint, UnsupportedCheckpoint
from zoo_tupate.core.safetext import loads_bounded
from zoo_tupate.formats.safetensors_header import TensorInfo
from zoo_tupate.formats.weights import (
    MappedFile,
    check_inside,
    check_load_size,
    list_tensors,
    load_tensors,
    mapped_file,
    resolve_strictly,
)

#: Weight files that hold an adapter, most specific first. Head files are never read.
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "adapter.safetensors",
    "pytorch_adapter.bin",
)
CONFIG_FILES = ("adapter_config.json",)
#: Largest adapter config read (real ones are a few KB).
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: Longest base model name or path accepted in a config (Hub ids are under 100 characters, paths under 4,096).
MAX_NAME_CHARS = 4096
HEAD_FILES = ("pytorch_model_head.bin", "head.safetensors", "head_config.json")

#: Tensor dtypes a reader loads: safetensors names, and "float32" for a `.bin` (whose other dtypes are refused
#: when it is read, see :mod:`zoo_tupate.formats.picklefile`).
FLOAT_DTYPES = frozenset({"F32", "F16", "BF16", "F64", "float32"})
_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers)\.(\d+)\.(.+)$")
#: Most digits of a layer index in a tensor name (no model has a million layers).
MAX_LAYER_DIGITS = 6


@dataclass
class CheckpointFolder:
    """A checkpoint on disk: its folder, weights file, parsed config and tensor headers."""

    path: Path
    weights: Path
    config: dict[str, Any]
    tensors: dict[str, TensorInfo]
    mapped: MappedFile | None = None
    #: What :func:`group_by_layer` loaded: layer → canonical name → (file key, the array it returned).
    sources: dict[int, dict[str, tuple[str, np.ndarray]]] = field(default_factory=dict, repr=False)

    def load(self, names: list[str]) -> dict[str, np.ndarray]:
        """Load only ``names`` from the weights file (float32 safetensors: views of the mapping, no copy).

        Tuned parameters are floating point: a BOOL or integer tensor is refused, not converted."""
        for name in names:
            info = self.tensors.get(name)
            if info is not None and info.dtype not in FLOAT_DTYPES:
                raise CorruptCheckpoint(f"{self.weights}: tensor {name[:120]!r} has dtype {info.dtype}; tuned "
                                        "parameters must be floating point (F32, F16, BF16 or F64)")
        if self.mapped is None:
            return load_tensors(self.weights, names)
        check_load_size(self.weights, [self.tensors[n] for n in names if n in self.tensors])
        return {name: self.mapped.array(name, lazy=True) for name in names}

    @property
    def release(self) -> Callable[[], None] | None:
        """Drops the pages a large mapped weights file had touched (None when there is nothing to drop)."""
        return self.mapped.release if self.mapped is not None and self.mapped.large else None


@dataclass
class TunedParams:
    """The tuned parameters of one checkpoint, as a reader found them.

    ``layers`` maps a Transformer layer index to ``{canonical name: array}`` (float32 views of the mapped
    file, or :class:`~zoo_tupate.formats.weights.HalfTensor` for F16/BF16, converted where used); canonical names are the
    parameter path inside the layer with model prefixes and adapter names removed
    (``attention.self.query.lora_A``). ``shared`` holds tuned tensors that belong to no layer
    (input-level prompts, heads kept with ``include_heads``).
    """

    method: str
    format: str
    base_model: str | None
    layers: dict[int, dict[str, np.ndarray]]
    shared: dict[str, np.ndarray] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    scaling: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Called by the pooling code after each tensor: drops the pages of a large memory-mapped weights file
    #: that the arrays above (views of it) touched, so peak memory stays about one tensor (None: nothing to do).
    release: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    #: Optional fast path: per layer, that layer's tensors in canonical (sorted-name) order as one flat float32
    #: view, i.e. the concatenation of their values (set by :func:`contiguous_rows`; empty when not available).
    rows: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_params(self) -> int:
        """Number of tuned values read (layers and shared)."""
        total = sum(a.size for group in self.layers.values() for a in group.values())
        return int(total + sum(a.size for a in self.shared.values()))


def open_checkpoint(path: str | Path) -> CheckpointFolder:
    """Locate the weights file and config of a checkpoint folder (or a weights file given directly)."""
    path = Path(path).expanduser()
    if not path.exists():
        if path.is_symlink():
            resolve_strictly(path)  # names a link loop or a dangling link
        raise UnsupportedCheckpoint(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix not in (".safetensors", ".bin", ".pt", ".pth"):
            raise UnsupportedCheckpoint(f"{path}: not a weights file (expected a folder, .safetensors or .bin)")
        folder, weights = path.parent, path
    else:
        folder = path
        found = [folder / name for name in WEIGHT_FILES if _lstat(folder / name) is not None]
        if not found:
            listing = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "empty folder"
            raise UnsupportedCheckpoint(
                f"{folder}: no adapter weights found (looked for {', '.join(WEIGHT_FILES)}; found {listing})"
            )
        weights = found[0]
    st = _lstat(weights)
    if st is None or stat.S_ISLNK(st.st_mode):  # a plain file named inside the folder is inside it
        check_inside(weights, folder)
        st = _stat(weights)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpoint(f"{weights}: is not a regular file")
    config = read_config(folder)
    mapped = mapped_file(weights) if weights.suffix == ".safetensors" else None
    tensors = mapped.infos if mapped is not None else list_tensors(weights)
    check_names(weights, tensors)
    return CheckpointFolder(path=folder, weights=weights, config=config, tensors=tensors, mapped=mapped)


def check_names(weights: Path, names: Iterable[str]) -> None:
    """Refuse tensor names that the readers cannot parse (a layer index of thousands of digits)."""
    for name in names:
        try:
            split_layer(name)
        except CorruptCheckpoint as exc:
            raise CorruptCheckpoint(f"{weights}: {exc}") from None


def read_config(folder: Path) -> dict[str, Any]:
    """Parse ``adapter_config.json`` if present (empty dict when absent; a dangling or looping link is refused)."""
    for name in CONFIG_FILES:
        file = folder / name
        if _lstat(file) is None:
            continue
        config = read_json_bounded(file, folder, "adapter config")
        if not isinstance(config, dict):
            raise CorruptCheckpoint(f"{file}: expected a JSON object, got {type(config).__name__}")
        check_config_fields(file, config)
        return config
    return {}


def read_json_bounded(file: Path, folder: Path, what: str = "JSON file", max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """The JSON of a file that came from a checkpoint or the Hub: the one way such a file is read.

    A link must stay inside ``folder``; the file must be regular (a FIFO would block, ``/dev/zero`` never
    ends) and at most ``max_bytes`` (checked before and while reading); the JSON is bounded
    (:func:`~zoo_tupate.safetext.loads_bounded`). Anything else is a :class:`CorruptCheckpoint` naming the file.
    """
    st = _lstat(file)
    if st is None:
        raise CorruptCheckpoint(f"{file}: no such file")
    if stat.S_ISLNK(st.st_mode):
        check_inside(file, folder)
        st = _stat(file)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise CorruptCheckpoint(f"{file}: is not a regular file")
    if st.st_size > max_bytes:
        raise CorruptCheckpoint(f"{file}: {st.st_size:,} bytes, too large for an {what} (at most {max_bytes:,})")
    try:
        with open(file, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise CorruptCheckpoint(f"{file}: unreadable ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise CorruptCheckpoint(f"{file}: more than {max_bytes:,} bytes, too large for an {what}")
    try:
        return loads_bounded(data)
    except ValueError as exc:  # invalid JSON or UTF-8, too deep, a huge or non-finite number, a lone surrogate
        raise CorruptCheckpoint(f"{file}: invalid {what} ({exc})") from None


def check_config_fields(file: Path, config: dict[str, Any]) -> None:
    """Fields every reader relies on must have their type: ``peft_type`` a string, model names short strings."""
    if "peft_type" in config and not isinstance(config["peft_type"], (str, type(None))):
        raise CorruptCheckpoint(f"{file}: peft_type must be a string, got {type(config['peft_type']).__name__}")
    for key in ("base_model_name_or_path", "model_name"):
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise CorruptCheckpoint(f"{file}: {key} must be a string, got {type(value).__name__}")
        if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            raise CorruptCheckpoint(f"{file}: {key} is {len(value):,} characters long (a model name or path has at "
                                    f"most {MAX_NAME_CHARS:,})")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


@lru_cache(maxsize=1 << 16)
def split_layer(key: str) -> tuple[int, str] | None:
    """``'...encoder.layer.3.attention.self.query.lora_A.weight'`` → ``(3, 'attention.self.query.lora_A.weight')``."""
    match = _LAYER_RE.search(key)
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) > MAX_LAYER_DIGITS:
        raise CorruptCheckpoint(f"tensor {key[:60]!r}...: a layer index of {len(digits)} digits")
    return int(digits), match.group(2)


def group_by_layer(
    ckpt: CheckpointFolder, selected: dict[str, str]
) -> dict[int, dict[str, np.ndarray]]:
    """Load the tensors in ``selected`` (file key → canonical in-layer name) and group them by layer."""
    arrays = ckpt.load(list(selected))
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key, canonical in selected.items():
        split = split_layer(key)
        assert split is not None
        group = layers.setdefault(split[0], {})
        if canonical in group:
            raise UnsupportedCheckpoint(
                f"{ckpt.weights}: two tensors map to layer {split[0]} {canonical!r} (several adapters in one file?)"
            )
        group[canonical] = arrays[key]
        ckpt.sources.setdefault(split[0], {})[canonical] = (key, arrays[key])
    return dict(sorted(layers.items()))


def contiguous_rows(ckpt: CheckpointFolder, layers: dict[int, dict[str, np.ndarray]]) -> dict[int, np.ndarray]:
    """Per layer, its tensors in canonical order as one flat float32 view of the mapped file.

    Only when every layer's tensors are still the views :func:`group_by_layer` returned (a reader that
    changed them, as bias-only does, gets none) and lie back to back in that order; else empty.
    """
    if ckpt.mapped is None or not layers:
        return {}
    rows = {}
    for idx, group in layers.items():
        sources = ckpt.sources.get(idx, {})
        keys = []
        for name in sorted(group):
            key, array = sources.get(name, ("", None))
            if array is not group[name]:
                return {}
            keys.append(key)
        row = ckpt.mapped.span(keys)
        if row is None:
            return {}
        rows[idx] = row
    return rows


def base_model_from_config(config: dict[str, Any]) -> str | None:
    """The base model a PEFT or AdapterHub config names, if any."""
    for key in ("base_model_name_or_path", "model_name"):
        value = config.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def heads_and_rest(ckpt: CheckpointFolder, kept: set[str]) -> list[str]:
    """Tensor names of the file that a reader did not keep (heads, ``modules_to_save``, embeddings)."""
    return sorted(name for name in ckpt.tensors if name not in kept)


def load_shared(ckpt: CheckpointFolder, names: list[str]) -> dict[str, np.ndarray]:
    """Load tensors that belong to no layer, keyed by their name without PEFT prefixes."""
    arrays = ckpt.load(names)
    return {strip_prefixes(name): arrays[name] for name in names}


def strip_prefixes(key: str) -> str:
    """Remove PEFT's ``base_model.model.`` wrappers (however deeply nested)."""
    while True:
        for prefix in ("base_model.model.", "base_model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        else:
            return key
