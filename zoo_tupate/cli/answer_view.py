"""How ``suggest`` shows its answer: the advice, one table row per source, the footer; ``--explain``: one block
per source. Everything fits 80 columns (a pipe or a file included) without cutting a number."""

from __future__ import annotations

import textwrap
from typing import Any

from rich.table import Table

from zoo_tupate.answer.single_list import Answer, SourceRow
from zoo_tupate.cli.tables import number_column, show, text_column
from zoo_tupate.embedding.segments import short_modules

#: Short column headers of the spaces.
SPACE_HEADERS: dict[str, str] = {"lora/delta": "LoRA ΔW", "lora/raw": "LoRA raw", "prefix/raw": "prefix",
                                 "bitfit/raw": "BitFit"}
#: At most this many similarity columns beside the score (the rest under --explain).
MAX_SPACE_COLUMNS = 2


def render(console: Any, answer: Answer, explain: bool = False, wide: bool = False) -> None:
    """Print the answer: advice, the table (or ``explain``: the blocks), footer."""
    width = console.width
    for line in textwrap.wrap(answer.advice, width):
        console.print(line, markup=False, highlight=False)
    console.print()
    if explain:
        several = len({s.zoo for s in answer.sources}) > 1
        for source in answer.sources:
            for line in block(source, width, several):
                console.print(line, markup=False, highlight=False)
    else:
        show(console, table(answer, wide))
    for line in textwrap.wrap(answer.footer, width):
        console.print(line, markup=False, highlight=False, style="dim")
    if any(s.cross_layout for s in answer.sources):
        for line in textwrap.wrap("shared: a source of another layout, scored on the modules both it and the "
                                  "target tune", width):
            console.print(line, markup=False, highlight=False, style="dim")


def table(answer: Answer, wide: bool = False) -> Table:
    """One row per source: rank, name, score, other spaces' similarity, training rows, effect [80%]."""
    sources = answer.sources
    spaces = extra_spaces(sources)
    zoos = {s.zoo for s in sources if s.zoo}
    out = Table(title=f"sources for {answer.target}" + (f" ({next(iter(zoos))} zoo)" if len(zoos) == 1 else ""))
    number_column(out, "#")
    text_column(out, "source")
    number_column(out, "score")
    for space in spaces:
        number_column(out, SPACE_HEADERS.get(space, space))
    number_column(out, "rows")
    effects = any(s.effect for s in sources)
    if effects:
        number_column(out, "effect [80%]")
    if len(zoos) > 1:
        text_column(out, "zoo")
    if wide:
        text_column(out, "from")
    for s in sources:
        name = f"{s.name} shared: {','.join(short_modules(s.modules))}" if s.cross_layout else s.name
        cells = [str(s.rank), name, f"{s.score:.3f}"]
        cells += [f"{s.similarity[sp]:.3f}" if sp in s.similarity else "–" for sp in spaces]
        cells.append(size_text(s.size))
        if effects:
            cells.append(effect_text(s))
        if len(zoos) > 1:
            cells.append(s.zoo)
        if wide:
            cells.append(s.source)
        out.add_row(*cells)
    return out


def extra_spaces(sources: list[SourceRow]) -> list[str]:
    """The spaces shown as columns beside the score (not the score's own), when there are few enough."""
    scored = {s.score_space for s in sources}
    others = list(dict.fromkeys(sp for s in sources for sp in s.similarity if sp not in scored))
    return others if len(others) <= MAX_SPACE_COLUMNS else []


def block(source: SourceRow, width: int, show_zoo: bool = False) -> list[str]:
    """``--explain``: one source as a few wrapped lines (``show_zoo``: name its layer)."""
    zoo = f"   [{source.zoo} zoo]" if source.zoo and show_zoo else ""
    lines = [f"{source.rank}. {source.name}{zoo}"]
    basis = SPACE_HEADERS.get(source.score_space, source.score_space)
    shared = f", on the shared modules {','.join(short_modules(source.modules))}" if source.cross_layout else ""
    facts = [f"score {source.score:.4f}" + (f" ({basis} cosine{shared})" if basis else ""),
             f"training rows {source.size:,}" if source.size else "training rows unknown"]
    lines.append("; ".join(facts))
    similar = " · ".join(f"{SPACE_HEADERS.get(sp, sp)} {v:.4f}" for sp, v in source.similarity.items())
    lines.append(f"similarity: {similar}")
    e = source.effect
    if e is not None:
        lines.append(f"effect: {e.gain:+.1f} points, 80% [{e.low:+.1f}, {e.high:+.1f}], "
                     f"helps with probability {e.p_helps:.2f}")
    else:
        lines.append("effect: not predicted (no measured transfer for this base model and method)")
    if source.parts:
        parts = " ".join(f"{k} {v:+.2f}" for k, v in source.parts.items())
        lines.append(f"combined ranker: {sum(source.parts.values()):+.2f} = {parts}")
    out = textwrap.wrap(lines[0], width)
    for line in lines[1:]:
        out.extend(textwrap.wrap(line, width, initial_indent="   ", subsequent_indent="     "))
    return out


def size_text(size: int | None) -> str:
    """Training rows, short: ``635``, ``2.5k``, ``393k``, ``1.2M``."""
    if not size:
        return "–"
    if size < 1000:
        return str(size)
    if size < 10_000:
        return f"{size / 1000:.1f}k"
    if size < 1_000_000:
        return f"{size / 1000:.0f}k"
    return f"{size / 1e6:.1f}M"


def effect_text(source: SourceRow) -> str:
    """``+1.9 [-15, +19]``: predicted points and the 80% interval, or ``–``."""
    e = source.effect
    if e is None:
        return "–"
    return f"{e.gain:+.1f} [{e.low:+.0f}, {e.high:+.0f}]"
