"""Embedding cards: task embeddings published as a small folder (or Hub model repo).

A card holds two files:

``task_embedding.safetensors``
    One 1-D float32 (or float16) tensor per space. The tensor name is a filename-safe form of the space string
    (:func:`tensor_name`, which adds a short hash so that names never collide). Safetensors metadata
    values must be strings, so *all* metadata is one JSON document under the single metadata key
    ``zoo_tupate``::

        {"format": "zoo-tupate/embedding-card", "format_version": 1, "zoo_tupate_version": "0.1.0",
         "extra": {...},                      # free-form, JSON-ready (task, datasets, license, ...)
         "embeddings": [                      # one entry per tensor, in write order
           {"tensor": "<tensor name>", "space": "bert-base-uncased/lora/raw/layer-mean/3fa2c1d0",
            "method": "lora", "repr": "raw", "pooling": "layer-mean", "dim": 1536,
            "base_model": "bert-base-uncased", "layers": [0, 1], "degenerate": false,
            "degenerate_reason": null, "excluded_tensors": [], "sha256": "<weights sha256>",
            "source": "org/name@<sha>", "checkpoint": {"epoch": 3, "step": 1200},
            "train_size": 2490, "zoo_tupate_version": "0.1.0", "metadata": {...}}]}

    ``checkpoint`` and ``train_size`` come from the embedding's ``metadata`` keys ``epoch``, ``step`` and
    ``train_size`` (else from ``extra``), ``null`` when unknown. LoRA ΔW and BitFit vectors carry
    ``metadata["segments"]`` (``[[module, shape, offset, length], ...]``, see :mod:`zoo_tupate.embedding.segments`)
    for cross-layout comparison; a card without them is compared across layouts through its ``layout``.

``README.md``
    A Hub model card built with ``huggingface_hub.ModelCard`` from ``cards/templates/embedding_card.md``
    (``library_name: zoo-tupate``, tags ``task-embedding`` and the methods, ``base_model``, ``datasets``).

Files are written atomically (temporary file + ``os.replace``). :func:`read_card` refuses a card whose file
is missing or truncated, whose header or JSON document is malformed or disagrees with the tensors, or whose
vectors are not finite, with :class:`CorruptCheckpoint` naming the file.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from zoo_tupate.core.errors import (
    CorruptCheckpoint,
    DegenerateAdapter,
    IncompatibleSpace,
    UnsupportedCheckpoint,
    ZooError,
)
from zoo_tupate.core.redact import redact
from zoo_tupate.core.safetext import loads_bounded
from zoo_tupate.core.storage import atomic_write_bytes, json_default
from zoo_tupate.embedding.space import parse_space, space_dirname
from zoo_tupate.embedding.vectors import Embedding
from zoo_tupate.formats.weights import read_safetensors_header

WEIGHTS_NAME = "task_embedding.safetensors"
README_NAME = "README.md"
METADATA_KEY = "zoo_tupate"
FORMAT = "zoo-tupate/embedding-card"
FORMAT_VERSION = 1
TEMPLATE_NAME = "embedding_card.md"
LIBRARY_NAME = "zoo-tupate"

_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "tensor": (str,), "space": (str,), "method": (str,), "repr": (str,), "pooling": (str,), "dim": (int,),
    "base_model": (str, type(None)), "layers": (list,), "degenerate": (bool,),
    "degenerate_reason": (str, type(None)), "excluded_tensors": (list,), "sha256": (str,), "source": (str,),
    "metadata": (dict,),
}


def tensor_name(space: str) -> str:
    """The filename-safe tensor name of a space (unique per space: it ends with a hash of the space)."""
    return space_dirname(space)


def _version() -> str:
    from zoo_tupate.core.version import __version__

    return __version__


def _pick(emb: Embedding, extra: dict[str, Any], key: str) -> Any:
    if key in emb.metadata:
        return emb.metadata[key]
    checkpoint = extra.get("checkpoint")
    if key in ("epoch", "step") and isinstance(checkpoint, dict):
        return checkpoint.get(key)
    return extra.get(key)


def _entry(emb: Embedding, extra: dict[str, Any], version: str) -> dict[str, Any]:
    return {
        "tensor": tensor_name(emb.space), "space": emb.space, "method": emb.method, "repr": emb.repr,
        "pooling": emb.pooling, "dim": emb.dim, "base_model": emb.base_model,
        "layers": [int(i) for i in emb.layers], "degenerate": bool(emb.degenerate),
        "degenerate_reason": emb.degenerate_reason, "excluded_tensors": list(emb.excluded_tensors),
        "sha256": emb.sha256, "source": emb.source,
        "checkpoint": {"epoch": _pick(emb, extra, "epoch"), "step": _pick(emb, extra, "step")},
        "train_size": _pick(emb, extra, "train_size"), "zoo_tupate_version": version,
        "metadata": emb.metadata,
    }


def _check_vectors(embeddings: list[Embedding], dtype: Any = np.float32) -> dict[str, np.ndarray]:
    if not embeddings:
        raise ZooError("an embedding card needs at least one embedding")
    tensors: dict[str, np.ndarray] = {}
    spaces: set[str] = set()
    for emb in embeddings:
        vector = np.asarray(emb.vector)
        if vector.ndim != 1 or vector.size == 0:
            raise ZooError(f"embedding in space {emb.space}: vector must be 1-D and non-empty, got shape {vector.shape}")
        if not np.all(np.isfinite(vector)):
            raise DegenerateAdapter(f"embedding in space {emb.space}: non-finite values cannot be published")
        if emb.space in spaces:
            raise IncompatibleSpace(f"a card holds one embedding per space; {emb.space} is given twice")
        spaces.add(emb.space)
        tensors[tensor_name(emb.space)] = np.ascontiguousarray(vector, dtype=dtype)
    return tensors


def write_card(folder: str | Path, embeddings: list[Embedding], extra: dict[str, Any] | None = None,
               half: bool = False) -> Path:
    """Write ``embeddings`` (one per space) and a README model card into ``folder``; return the folder.

    ``extra`` is stored as-is in the JSON document; the README uses its keys ``task`` (a catalog name such
    as ``glue/rte``), ``title``, ``description``, ``datasets``, ``license``, ``repo_id``, ``notes`` and
    ``base_model_hub_id`` (the front matter's ``base_model`` as the Hub spells it; spaces keep the normalised id).
    ``half`` stores the vectors as float16 (half the size; readers return float32 either way).
    """
    from safetensors.numpy import save

    folder = Path(folder)
    extra = dict(extra or {})
    if half and any(np.abs(np.asarray(e.vector)).max(initial=0.0) > np.finfo(np.float16).max for e in embeddings):
        raise ZooError(f"{folder}: values exceed float16's range; write the card in float32")
    tensors = _check_vectors(list(embeddings), np.float16 if half else np.float32)
    version = _version()
    document = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "zoo_tupate_version": version, "extra": extra,
        "embeddings": [_entry(emb, extra, version) for emb in embeddings],
    }
    try:
        text = redact(json.dumps(document, default=json_default, sort_keys=True, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise ZooError(f"{folder / WEIGHTS_NAME}: card metadata is not JSON-ready ({exc})") from None
    readme = render_readme(json.loads(text))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / WEIGHTS_NAME, save(tensors, metadata={METADATA_KEY: text}))
    atomic_write_bytes(folder / README_NAME, (readme.rstrip("\n") + "\n").encode("utf-8"))
    return folder


def _load_template() -> str:
    return (resources.files("zoo_tupate.cards") / "templates" / TEMPLATE_NAME).read_text(encoding="utf-8")


def _markdown_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(entries: list[dict[str, Any]]) -> str:
    head = ["space", "method", "repr", "pooling", "dim", "base model", "source", "epoch", "step", "train size"]
    rows = [
        [f"`{e['space']}`", e["method"], e["repr"], e["pooling"], e["dim"], e["base_model"], e["source"],
         e["checkpoint"].get("epoch"), e["checkpoint"].get("step"), e["train_size"]]
        for e in entries
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _catalog_card(task: Any) -> Any:
    if not isinstance(task, str):
        return None
    from zoo_tupate.cards.catalog import load_catalog

    try:
        return load_catalog().get(task)
    except ZooError:
        return None


def _card_data(document: dict[str, Any]) -> Any:
    from huggingface_hub import ModelCardData

    entries, extra = document["embeddings"], document["extra"]
    bases = sorted({e["base_model"] for e in entries if e["base_model"] and e["base_model"] != "unknown"})
    methods = sorted({e["method"] for e in entries})
    datasets = extra.get("datasets")
    if datasets is None:
        card = _catalog_card(extra.get("task"))
        datasets = [card.dataset.hub_id] if card is not None and card.dataset.hub_id else None
    if isinstance(extra.get("base_model_hub_id"), str):  # the Hub's spelling (space ids keep the normalised one)
        bases = [extra["base_model_hub_id"]]
    return ModelCardData(
        base_model=(bases[0] if len(bases) == 1 else bases) or None,
        library_name=LIBRARY_NAME,
        tags=["task-embedding", *[m for m in methods if m != "task-embedding"]],
        datasets=list(datasets) if datasets else None,
        license=extra.get("license"),
    )


def _usage(extra: dict[str, Any]) -> str:
    repo = extra.get("repo_id") or "<org>/<this-repo>"
    return (
        "from huggingface_hub import snapshot_download\n"
        "from zoo_tupate.cards.cardfile import read_card\n\n"
        f'embeddings = read_card(snapshot_download("{repo}"))\n'
        "for emb in embeddings:\n"
        "    print(emb.space, emb.dim)"
    )


def _template_kwargs(document: dict[str, Any]) -> dict[str, Any]:
    extra = document["extra"]
    task = extra.get("task")
    card = _catalog_card(task)
    title = extra.get("title") or (f"Task embedding: {task}" if task else "Task embeddings")
    description = extra.get("description") or (card.description if card is not None else "")
    notes = extra.get("notes")
    if isinstance(notes, list):
        notes = "\n".join(f"- {n}" for n in notes)
    return {
        "title": title, "description": description, "embeddings_table": _table(document["embeddings"]),
        "weights_file": WEIGHTS_NAME, "metadata_key": METADATA_KEY, "usage": _usage(extra),
        "notes": f"\n## Notes\n\n{notes}\n" if notes else "",
        "zoo_tupate_version": document["zoo_tupate_version"], "format_version": document["format_version"],
    }


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*(?:\|[^{}]*)?\}\}")


def _render_plain(template: str, **values: Any) -> str:
    """Render the ``{{ name }}`` placeholders of a template without Jinja (the card template uses no more)."""
    if template.endswith("\n"):  # as Jinja does (keep_trailing_newline=False)
        template = template[:-1]
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), template)


def render_readme(document: dict[str, Any], template: str | None = None, use_jinja: bool | None = None) -> str:
    """The README text of a card document, via ``ModelCard.from_template`` (Jinja) or a plain fallback."""
    from huggingface_hub import ModelCard
    from huggingface_hub.utils import is_jinja_available

    template = _load_template() if template is None else template
    card_data = _card_data(document)
    kwargs = _template_kwargs(document)
    if use_jinja is None:
        use_jinja = is_jinja_available()
    if use_jinja:
        return str(ModelCard.from_template(card_data, template_str=template, **kwargs))
    return str(ModelCard(_render_plain(template, card_data=card_data.to_yaml(), **kwargs)))


def _corrupt(path: Path, reason: str) -> CorruptCheckpoint:
    return CorruptCheckpoint(f"{path}: {reason}")


def read_document(folder: str | Path) -> dict[str, Any]:
    """The card's JSON metadata document, checked against the file's tensors (no vectors are read)."""
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise _corrupt(path, "missing: not an embedding card")
    infos, metadata = read_safetensors_header(path)
    if METADATA_KEY not in metadata:
        raise _corrupt(path, f"no '{METADATA_KEY}' metadata: not an embedding card")
    try:
        document = loads_bounded(metadata[METADATA_KEY])
    except ValueError as exc:
        raise _corrupt(path, f"'{METADATA_KEY}' metadata is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _corrupt(path, f"'{METADATA_KEY}' metadata is not a {FORMAT} document")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _corrupt(path, "format_version is missing")
    if version > FORMAT_VERSION:
        raise UnsupportedCheckpoint(
            f"{path}: embedding-card format {version} is newer than this zoo-tupate reads ({FORMAT_VERSION}); upgrade"
        )
    entries = document.get("embeddings")
    if not isinstance(entries, list) or not entries:
        raise _corrupt(path, "the metadata lists no embeddings")
    if not isinstance(document.get("extra", {}), dict):
        raise _corrupt(path, "'extra' is not an object")
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        _check_entry(path, i, entry, infos)
        seen.add(entry["tensor"])
    if len(seen) != len(entries):
        raise _corrupt(path, "two metadata entries name the same tensor")
    if set(infos) != seen:
        missing = sorted(set(infos) ^ seen)
        raise _corrupt(path, f"tensors and metadata disagree (only on one side: {', '.join(missing)})")
    return document


def _check_entry(path: Path, i: int, entry: Any, infos: dict[str, Any]) -> None:
    if not isinstance(entry, dict):
        raise _corrupt(path, f"embeddings[{i}] is not an object")
    for key, types in _ENTRY_TYPES.items():
        if key not in entry:
            raise _corrupt(path, f"embeddings[{i}].{key} is missing")
        value = entry[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise _corrupt(path, f"embeddings[{i}].{key} has the wrong type ({type(value).__name__})")
    name = entry["tensor"]
    if name not in infos:
        raise _corrupt(path, f"embeddings[{i}] names tensor {name!r}, which the file does not hold")
    info = infos[name]
    if info.dtype not in ("F32", "F16") or info.shape != (entry["dim"],) or entry["dim"] < 1:
        raise _corrupt(
            path, f"tensor {name!r} is {info.dtype}{list(info.shape)}, the metadata says F32[{entry['dim']}] (or F16)"
        )
    if name != tensor_name(entry["space"]):
        raise _corrupt(path, f"tensor {name!r} does not belong to space {entry['space']!r}")
    parts = parse_space(entry["space"])
    if parts["method"] and any(parts[k] != entry[k] for k in ("method", "repr", "pooling")):
        raise _corrupt(path, f"embeddings[{i}]: method/repr/pooling disagree with space {entry['space']!r}")


def read_card(folder: str | Path) -> list[Embedding]:
    """The embeddings of a card folder, in the order they were written (validated; see module docstring)."""
    from safetensors.numpy import load

    path = Path(folder) / WEIGHTS_NAME
    document = read_document(folder)
    try:
        tensors = load(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise _corrupt(path, f"cannot read tensors ({exc})") from None
    out = []
    for entry in document["embeddings"]:
        vector = np.asarray(tensors[entry["tensor"]], dtype=np.float32)
        if not np.all(np.isfinite(vector)):
            raise _corrupt(path, f"tensor {entry['tensor']!r} holds non-finite values")
        out.append(Embedding(
            vector=vector, method=entry["method"], repr=entry["repr"], pooling=entry["pooling"],
            space=entry["space"], base_model=entry["base_model"], layers=list(entry["layers"]),
            degenerate=entry["degenerate"], degenerate_reason=entry["degenerate_reason"],
            excluded_tensors=list(entry["excluded_tensors"]), sha256=entry["sha256"], source=entry["source"],
            metadata=dict(entry["metadata"]),
        ))
    return out


def is_card(folder: str | Path) -> bool:
    """True when ``folder`` holds a readable embedding-card header (vectors are not read)."""
    try:
        read_document(folder)
    except (ZooError, OSError):
        return False
    return True
