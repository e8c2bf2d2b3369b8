"""Turning raw source files into clean document text.

- `decode_utf8`: bytes -> text, undecodable bytes replaced by U+FFFD and counted (callers report the count).
- `html_paragraphs`: the paragraphs of an HTML page with their `id` attribute (no markup, no navigation).
  A paragraph is an innermost block element (p, h1-h6, li, dt, dd, td, th, pre, caption, blockquote or a div
  with class "para"); whitespace inside it is collapsed to single spaces, except in <pre>, which keeps its lines.
  LibreOffice help pages repeat keyboard shortcuts for macOS in hidden elements: those are dropped, the default
  variant is kept.
- `split_fortunes`: fortune(6) files, entries separated by lines holding "%".
- `strip_terminal_codes`: ANSI colour escapes, backspace overstrikes ("_\\bA" -> "A") and other control
  characters (tab and newline are kept).
- `strip_pos_tags`: People's Daily "word/tag" lines back to plain Chinese text.
"""

from __future__ import annotations

import re
from pathlib import Path

import lxml.etree
import lxml.html

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_OVERSTRIKE = re.compile(r"[^\x08\n]\x08")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FORTUNE_SEPARATOR = re.compile(r"^%[ \t]*$", re.M)
_POS_TOKEN = re.compile(r"\[?([^\s/]+)/[A-Za-z]+\]?(?:[a-z]+)?")

PARAGRAPH_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th", "pre", "caption", "blockquote")
PARAGRAPH_DIV_CLASS = "para"
# Page furniture that is not content: navigation, search boxes, banners, debug footers, hidden macOS variants.
BOILERPLATE_TAGS = frozenset({"head", "script", "style", "noscript", "header", "footer", "nav", "aside"})
BOILERPLATE_IDS = frozenset({"banner", "title", "SearchFrame", "DonationFrame"})
BOILERPLATE_CLASSES = frozenset({"docnav", "toc", "MAC"})


def decode_utf8(data: bytes) -> tuple[str, int]:
    """Text of UTF-8 bytes (a leading BOM dropped, CRLF -> LF) and the number of bytes that were not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text, bad = data.decode("utf-8"), 0
    except UnicodeDecodeError:
        text, bad = _ESCAPED_BYTE.subn("\ufffd", data.decode("utf-8", errors="surrogateescape"))
    return text.replace("\r\n", "\n").replace("\r", "\n"), bad


def strip_terminal_codes(text: str) -> str:
    text = _ANSI.sub("", text)
    while True:
        text, n = _OVERSTRIKE.subn("", text)
        if not n:
            break
    return _CONTROL.sub("", text)


def split_fortunes(text: str) -> list[str]:
    entries = (strip_terminal_codes(e).strip("\n") for e in _FORTUNE_SEPARATOR.split(text))
    return [e for e in entries if e.strip()]


def strip_pos_tags(line: str) -> str:
    """'[中央/n 人民/n]nt  发表/v' -> '中央人民发表': words joined without spaces, as Chinese is written."""
    return "".join(m.group(1) for m in _POS_TOKEN.finditer(line))


def _classes(el) -> list[str]:
    return (el.get("class") or "").split()


def _is_boilerplate(el) -> bool:
    return (
        el.tag in BOILERPLATE_TAGS
        or el.get("id") in BOILERPLATE_IDS
        or not BOILERPLATE_CLASSES.isdisjoint(_classes(el))
    )


def _paragraph_text(el) -> str:
    if el.tag == "pre":
        return "\n".join(line.rstrip() for line in el.text_content().strip("\n").splitlines())
    return " ".join(el.text_content().split())


def html_paragraphs(path: str | Path) -> list[tuple[str | None, str]]:
    """(id attribute or None, text) for each non-empty paragraph of an HTML page, in document order."""
    root = lxml.html.fromstring(Path(path).read_bytes())
    for el in [e for e in root.iter(lxml.etree.Element) if _is_boilerplate(e)]:
        if el.getparent() is not None:
            el.drop_tree()
    candidates = [e for e in root.iter(*PARAGRAPH_TAGS, "div") if e.tag != "div" or PARAGRAPH_DIV_CLASS in _classes(e)]
    found = set(candidates)
    out = []
    for el in candidates:
        if any(d in found for d in el.iterdescendants()):
            continue  # not innermost: its inner paragraphs are taken instead
        text = _paragraph_text(el)
        if text.strip():
            out.append((el.get("id"), text))
    return out


def html_text(path: str | Path) -> str:
    """A page as one document: its paragraphs, one per line."""
    return "\n".join(text for _, text in html_paragraphs(path))
