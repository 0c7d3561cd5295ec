"""Tables that stay readable at any width: a table when it fits, else one block per row.

Numbers are never squeezed: a column marked as numbers (``no_wrap``) keeps its full width, and a table whose
numbers and longest words do not fit the console is printed as one block per row instead (its first cell as
the heading, then ``header value`` pairs, wrapped between pairs, never inside one). Works the same when
stdout/stderr is not a terminal (a pipe or a file: rich assumes 80 columns, or ``$COLUMNS``).
"""

from __future__ import annotations

import textwrap
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: A name column may fold a word longer than this (a long path or method id) rather than widen the table.
FOLD_AT = 16


def number_column(table: Table, header: str, **kwargs: Any) -> None:
    """Add a right-aligned column whose cells are never wrapped or cut."""
    table.add_column(header, justify="right", no_wrap=True, overflow="fold", **kwargs)


def text_column(table: Table, header: str, **kwargs: Any) -> None:
    """Add a column of names that wraps (folds long words) rather than being cut to ``…``."""
    table.add_column(header, overflow="fold", **kwargs)


def fits(console: Console, table: Table) -> bool:
    """Whether ``table`` shows every number and every word whole at the console's width."""
    return _needed_width(table) <= console.width


def show(console: Console, table: Table) -> None:
    """Print ``table`` if it fits the console, else the same content as one block per row."""
    if fits(console, table):
        console.print(table)
        return
    for line in blocks(table, console.width):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def blocks(table: Table, width: int) -> list[str]:
    """The table as text blocks: the title, then per row its first cell and ``header value`` pairs."""
    headers = [_plain(c.header) for c in table.columns]
    cells = [[_plain(cell) for cell in column._cells] for column in table.columns]
    lines: list[str] = []
    if table.title:
        lines.extend(textwrap.wrap(_plain(table.title), width) or [""])
    for r in range(table.row_count):
        row = [column[r] if r < len(column) else "" for column in cells]
        lines.extend(_block(headers, row, width))
    if table.caption:
        lines.extend(textwrap.wrap(_plain(table.caption), width))
    return lines


def _block(headers: list[str], row: list[str], width: int) -> list[str]:
    """One row: ``<first cell>`` (with the second when the first is a rank), then the pairs, indented."""
    start = 2 if headers[0].strip().lower() in ("rank", "#", "") and len(row) > 1 else 1
    head = " ".join(c for c in row[:start] if c).replace("\n", " ")
    out = textwrap.wrap(head, width, break_long_words=True) or [""]
    pairs = [f"{h}: {v}".replace("\n", " ") if h else v.replace("\n", " ")
             for h, v in zip(headers[start:], row[start:], strict=True) if v.strip()]
    line = "   "
    for pair in pairs:
        if len(line) > 3 and len(line) + 3 + len(pair) > width:
            out.append(line.rstrip())
            line = "   "
        line += ("   " if len(line) > 3 else "") + pair
    if len(line) > 3:
        out.append(line.rstrip())
    return out


def _needed_width(table: Table) -> int:
    """Columns at their narrowest without cutting: number columns whole, text columns at their longest word."""
    total = 0
    for column in table.columns:
        texts = [_plain(column.header), *(_plain(c) for c in column._cells)]
        if column.no_wrap:
            widest = max((Text(line).cell_len for t in texts for line in t.splitlines() or [""]), default=0)
        else:
            widest = min(max((Text(word).cell_len for t in texts for word in t.split()), default=0), FOLD_AT)
        total += max(widest, column.min_width or 0) + 2  # one space of padding each side
    return total + len(table.columns) + 1  # the borders


def _plain(value: Any) -> str:
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, str):
        try:
            return Text.from_markup(value).plain if "[" in value else value
        except Exception:  # noqa: BLE001 - not markup: the text as it is
            return value
    return str(value)
