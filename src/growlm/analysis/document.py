"""ReportBuilder: a report built once, section by section, and rendered twice: a self-contained HTML page
(figures embedded as base64 PNG, inline CSS, no scripts, no external requests) and a Markdown file with the same
headings and tables."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from growlm.analysis.plots import png_bytes
from growlm.analysis.tables import Table
from growlm.errors import GrowlmError
from growlm.io.ownership import HTML_MARK, MARKDOWN_MARK

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
:root { --fg: #1d2430; --muted: #5b6472; --line: #dde2ea; --head: #f3f5f9; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p.sub, p.note, figcaption { color: var(--muted); font-size: 13px; }
nav { background: var(--head); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; margin: 18px 0; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td { word-break: break-word; }
code { font: 12px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
figure { margin: 14px 0 22px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
pre { background: #f7f8fa; border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px;
  font-size: 12px; overflow-x: auto; }
details summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
"""


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


@dataclass
class ReportBuilder:
    title: str
    subtitle: str = ""
    _html: list[str] = field(default_factory=list)
    _markdown: list[str] = field(default_factory=list)
    _sections: list[tuple[str, str]] = field(default_factory=list)

    def section(self, heading: str) -> None:
        anchor = f"{_anchor(heading)}-{len(self._sections)}"
        self._sections.append((anchor, heading))
        self._html.append(f'<h2 id="{anchor}">{html.escape(heading)}</h2>\n')
        self._markdown.append(f"## {heading}\n")

    def paragraph(self, text: str) -> None:
        self._html.append(f"<p>{html.escape(text)}</p>\n")
        self._markdown.append(f"{text}\n")

    def table(self, table: Table) -> None:
        self._html.append(table.to_html())
        self._markdown.append(table.to_markdown())

    def figure(self, figure: Figure, caption: str) -> None:
        self.png(png_bytes(figure), caption)

    def png(self, data: bytes, caption: str) -> None:
        if not data.startswith(PNG_SIGNATURE):
            raise GrowlmError(f"plot {caption!r} is not a PNG image; reports embed PNG files only")
        encoded = base64.b64encode(data).decode("ascii")
        self._html.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n"
        )
        self._markdown.append(f"*Figure: {caption}* (embedded in the HTML report)\n")

    def preformatted(self, summary: str, text: str, open_: bool = False) -> None:
        self._html.append(
            f"<details{' open' if open_ else ''}><summary>{html.escape(summary)}</summary>"
            f"<pre>{html.escape(text)}</pre></details>\n"
        )
        self._markdown.append(f"<details><summary>{summary}</summary>\n\n```\n{text.rstrip()}\n```\n</details>\n")

    def to_html(self) -> str:
        nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h in self._sections)
        subtitle = f'<p class="sub">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (
            f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{HTML_MARK}\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{html.escape(self.title)}</h1>\n{subtitle}\n<nav>{nav}</nav>\n{''.join(self._html)}"
            f"</main>\n</body>\n</html>\n"
        )

    def to_markdown(self) -> str:
        subtitle = f"{self.subtitle}\n\n" if self.subtitle else ""
        return f"{MARKDOWN_MARK}\n# {self.title}\n\n{subtitle}" + "\n".join(self._markdown)
