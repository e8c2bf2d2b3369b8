"""Every relative link in README.md, docs/**/*.md and benchmarks/README.md points at a file or folder that exists,
relative to the file that holds it. Links to other sites (any scheme: http, https, mailto) and pure #anchors are not
checked; a trailing #anchor is stripped. Links inside code (fenced blocks, `spans`) are not links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target) and ![alt](target)
CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$|`[^`\n]*`", re.S | re.M)
NOT_CHECKED = re.compile(r"^([a-z][a-z0-9+.-]*:|#|$)", re.I)  # a scheme (http:, https:, mailto:) or a pure #anchor


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(markdown: str) -> list[str]:
    """The relative targets of a Markdown text, each without its #anchor."""
    targets = (m.group(1) for m in LINK.finditer(CODE.sub("", markdown)))
    return [t.split("#", 1)[0] for t in targets if not NOT_CHECKED.match(t)]


def broken_links(markdown: str, folder: Path) -> list[str]:
    """The relative targets of `markdown` that name nothing under `folder` (the folder of the file holding it)."""
    return [t for t in relative_links(markdown) if not (folder / t).exists()]


def test_every_relative_link_resolves():
    files = doc_files()
    assert (ROOT / "README.md") in files and len(files) > 3
    broken = [
        f"{path.relative_to(ROOT)}: ({target})"
        for path in files
        for target in broken_links(path.read_text(encoding="utf-8"), path.parent)
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_a_broken_link_is_reported(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "plot.png").write_bytes(b"")
    text = (
        "See [the plot](img/plot.png#top), ![gone](img/missing.png), [folder](img), [site](https://example.org/x),\n"
        "[mail](mailto:a@b.c), [here](#section) and [other](../nowhere.md#part).\n"
        "```\n[not a link](in/code.md)\n```\nand `[also](code.md)`.\n"
    )
    assert relative_links(text) == ["img/plot.png", "img/missing.png", "img", "../nowhere.md"]
    assert broken_links(text, tmp_path) == ["img/missing.png", "../nowhere.md"]
