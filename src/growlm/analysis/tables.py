"""A plain table (title, columns, rows) rendered as Markdown, HTML or a rich console table, with one number format."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

from rich.table import Table as RichTable


def format_value(value: object) -> str:
    """Integers with thousands separators, floats to 4 significant digits (scientific when huge or tiny)."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


HASH = re.compile(r"[0-9a-f]{16,}")


def _html_cell(value: object, text: str) -> str:
    if _is_number(value):
        return f'<td class="num">{html.escape(text)}</td>'
    if HASH.fullmatch(text):
        return f"<td><code>{text}</code></td>"
    return f"<td>{html.escape(text)}</td>"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    note: str = ""

    def numeric_columns(self) -> list[bool]:
        return [
            bool(self.rows) and all(_is_number(r[i]) or r[i] is None for r in self.rows)
            for i in range(len(self.columns))
        ]

    def cells(self) -> list[list[str]]:
        return [[format_value(v) for v in row] for row in self.rows]

    def to_markdown(self) -> str:
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        rule = "| " + " | ".join("---:" if n else "---" for n in self.numeric_columns()) + " |"
        body = [line(self.columns), rule, *(line(c) for c in self.cells())]
        note = f"\n{self.note}\n" if self.note else ""
        return f"### {self.title}\n\n" + "\n".join(body) + "\n" + note

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(_html_cell(v, t) for v, t in zip(row, cells)) + "</tr>"
            for row, cells in zip(self.rows, self.cells())
        )
        note = f'<p class="note">{html.escape(self.note)}</p>' if self.note else ""
        return (
            f'<h3>{html.escape(self.title)}</h3>\n<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{note}\n"
        )

    def to_rich(self) -> RichTable:
        table = RichTable(title=self.title, caption=self.note or None)
        for column, numeric in zip(self.columns, self.numeric_columns()):
            table.add_column(column, justify="right" if numeric else "left")
        for cells in self.cells():
            table.add_row(*cells)
        return table
