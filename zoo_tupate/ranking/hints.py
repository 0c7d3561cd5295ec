"""What to tell a user whose target matches no space of the zoo: the nearest spaces and how they differ."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zoo_tupate.embedding.space import parse_space, short_space
from zoo_tupate.embedding.vectors import Embedding

#: Config keys that decide a layout, in the words a user knows them by.
_LAYOUT_KEYS = (("target_modules", "modules"), ("r", "rank"), ("num_virtual_tokens", "tokens"))


def _layout_words(config: dict[str, Any], dim: int) -> str:
    parts = []
    for key, word in _LAYOUT_KEYS:
        value = config.get(key)
        if isinstance(value, (list, tuple)):
            value = ",".join(sorted(str(v) for v in value))
        if value not in (None, ""):
            parts.append(f"{word} {value}")
    return ", ".join(parts + [f"dim {dim}"])


def nearest_spaces(targets: Iterable[Embedding], entries: Iterable[Any], limit: int = 2) -> str:
    """A sentence naming, per target embedding, the zoo spaces of the same base model, method and repr
    (another layout) and how their layouts differ; else which base models the zoo holds for the method."""
    entries = list(entries)
    sentences = []
    for target in targets:
        want = parse_space(target.space)
        same, bases = {}, set()
        for entry in entries:
            got = parse_space(entry.space)
            if got["method"] != want["method"] or got["repr"] != want["repr"]:
                continue
            bases.add(got["base_model"])
            if got["base_model"] == want["base_model"] and entry.space != target.space:
                same.setdefault(entry.space, entry)
        mine = _layout_words(target.metadata.get("config") or {}, target.dim)
        if same:
            shown = [f"{short_space(space)} ({_layout_words(e.metadata.get('config') or {}, e.dim)})"
                     for space, e in list(same.items())[:limit]]
            sentences.append(f"the target's {want['method']}/{want['repr']} ({mine}) differs in layout from the "
                             f"zoo's nearest space(s) of {want['base_model']}: {'; '.join(shown)}")
        elif want["base_model"] in bases:  # the target's own space holds entries, but none is a candidate
            sentences.append(f"the zoo's {want['method']}/{want['repr']} entries of {want['base_model']} in the "
                             "target's space are the target itself (an entry is never ranked for itself): add "
                             "other sources of that base model to compare with")
        elif bases:
            sentences.append(f"the zoo holds {want['method']}/{want['repr']} entries only for other base models "
                             f"({', '.join(sorted(bases)[:3])}), not {want['base_model']}")
    return "; ".join(sentences)
