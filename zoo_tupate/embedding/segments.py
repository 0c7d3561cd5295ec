"""Segment layouts: where each module's part lies in a stored task embedding (for cross-layout scoring).

A segment is ``[module name, shape, offset, length]``: LoRA ``delta`` layer-mean vectors hold one ΔW part
per module (``d·k`` values, or ``SKETCH_DIM``² sketched when larger), BitFit ``raw`` layer-mean vectors one
part per bias tensor. Two vectors of one base model, method, repr and pooling but different layouts are
comparable on the segments both have with the same name, shape and length (:mod:`zoo_tupate.ranking.ranker.layout`).
Segments follow from an embedding's ``layout`` (:func:`layout_segments`); they are recorded in the
embedding's ``metadata["segments"]``, in index entries and in embedding cards. Other vectors have none.
"""

from __future__ import annotations

import math
from typing import Any

from zoo_tupate.embedding.vectors import SKETCH_DIM

SEGMENTS_KEY = "segments"
#: The key of a segment: module name and shape (lengths must also agree to compare).
Key = tuple[str, tuple[int, ...]]


def layout_segments(method: str, repr_: str, pooling: str, layout: Any) -> list[list] | None:
    """The segments of a vector with this ``layout`` (as :mod:`zoo_tupate.embedding.vectors` returns it), or None
    when such vectors are not compared across layouts (other methods/reprs, ``flatten``, no layer part)."""
    if pooling != "layer-mean" or not isinstance(layout, list) or not layout or not isinstance(layout[0], list):
        return None
    out: list[list] = []
    offset = 0
    if repr_ == "delta" and method in ("lora", "bottleneck"):
        p = layout[2] if len(layout) > 2 and isinstance(layout[2], int) else SKETCH_DIM
        for name, shape in layout[0]:
            length = math.prod(shape) if math.prod(shape) <= p * p else p * p
            out.append([name, list(shape), offset, length])
            offset += length
    elif repr_ == "raw" and method == "bitfit":
        for name, shape in layout[0]:
            length = math.prod(shape)
            if name.endswith("bias"):
                out.append([name, list(shape), offset, length])
            offset += length
    else:
        return None
    return out or None


def segments_of(metadata: dict[str, Any], method: str, repr_: str, pooling: str, dim: int) -> list[list] | None:
    """An embedding's or entry's valid segments: ``metadata["segments"]``, else derived from its recorded
    ``layout``; None when it has neither (an entry indexed before segments were recorded) or they do not
    fit ``dim``."""
    segments = metadata.get(SEGMENTS_KEY)
    if segments is None and "layout" in metadata:
        try:
            segments = layout_segments(method, repr_, pooling, metadata["layout"])
        except (TypeError, ValueError):
            return None
    return segments if valid_segments(segments, dim) else None


def valid_segments(segments: Any, dim: int) -> bool:
    """Whether ``segments`` is a list of ``[name, shape, offset, length]`` inside ``dim``, without overlap."""
    if not isinstance(segments, list) or not segments:
        return False
    end = 0
    for item in segments:
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
                and isinstance(item[1], list) and all(_is_int(x) for x in item[1])
                and _is_int(item[2]) and _is_int(item[3])):
            return False
        offset, length = item[2], item[3]
        if offset < end or length < 1 or offset + length > dim:
            return False
        end = offset + length
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def segment_keys(segments: list[list]) -> dict[Key, tuple[int, int]]:
    """``(name, shape) -> (offset, length)``."""
    return {(name, tuple(shape)): (offset, length) for name, shape, offset, length in segments}


def short_modules(names: list[str]) -> list[str]:
    """Short names for tables: the fewest trailing parts that tell a module from the others, without a
    trailing bias part (``attention.self.query`` → ``query``; ``output.dense.bias`` beside
    ``attention.output.dense.bias`` → ``output.dense``)."""
    stems = [name.rsplit(".", 1)[0] if name.rsplit(".", 1)[-1].endswith("bias") and "." in name else name
             for name in names]
    parts = [stem.split(".") for stem in stems]
    out = []
    for i, mine in enumerate(parts):
        k = 1
        while k < len(mine) and any(".".join(other[-k:]) == ".".join(mine[-k:])
                                    for j, other in enumerate(parts) if j != i):
            k += 1
        out.append(".".join(mine[-k:]))
    return out
