"""What growlm made: the mark each owner puts in the folders it makes, the marks in the files it writes, and
recognising both (growlm_kind, growlm_file). Replacing an output (io.outputs) trusts nothing else.

A folder's mark, MARK_FILE, names its kind and the names it may hold; a user's file added to the folder makes it the
user's. Folders of growlm versions that did not mark them are recognised by their names (legacy_folders).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json, read_json
from growlm.io.temporaries import is_leftover
from growlm.legacy_folders import legacy_entries, legacy_kind

MARK_FILE = ".growlm-folder.json"  # {"format": MARK_FORMAT, "kind": "model folder", "entries": [names]}
MARK_FORMAT = "growlm-folder-v1"

# Marks growlm puts in the files it writes, so that replacing one can tell them from the user's.
PNG_METADATA = {"Software": "growlm"}
HTML_MARK = '<meta name="generator" content="growlm">'
MARKDOWN_MARK = "<!-- generator: growlm -->"


def mark_folder(path: str | Path, kind: str, entries: Iterable[str] | None = None) -> None:
    """Record that growlm made `path` as a `kind` and which names it may hold (default: what it holds now)."""
    path = Path(path)
    names = set(entries) if entries is not None else {p.name for p in path.iterdir() if not is_leftover(p)}
    atomic_write_json(path / MARK_FILE, {"format": MARK_FORMAT, "kind": kind, "entries": sorted(names - {MARK_FILE})})


def claim_folder(path: str | Path, kind: str, entries: Iterable[str]) -> None:
    """Mark a folder its owner is (re)opening (a run, a study): the names the owner writes, plus what the folder
    holds and what an earlier mark listed (files other writers added, or a folder from before marks)."""
    path, old = Path(path), folder_mark(path)
    held = {p.name for p in path.iterdir() if not is_leftover(p)}
    mark_folder(path, kind, {*entries, *held, *(old["entries"] if old else ())})


def add_entries(path: str | Path, names: Iterable[str]) -> None:
    """A writer putting its own files into a folder growlm marked (eval results into a run, a report into a run
    or study) records their names there; an unmarked folder is left as it is."""
    mark = folder_mark(path)
    if mark is not None and not set(names) <= set(mark["entries"]):
        mark_folder(path, mark["kind"], {*mark["entries"], *names})


def folder_mark(path: str | Path) -> dict | None:
    """The folder's mark, or None when it has none or a damaged one (which marks nothing)."""
    data = _json_or_none(Path(path) / MARK_FILE)
    valid = (
        isinstance(data, dict)
        and data.get("format") == MARK_FORMAT
        and isinstance(data.get("kind"), str)
        and isinstance(data.get("entries"), list)
    )
    return data if valid else None


def growlm_kind(path: str | Path) -> str | None:
    """What growlm made at `path` ('run directory', 'model folder', ...), or None when it cannot tell: a folder
    is growlm's when its mark says so and it holds nothing but the names the mark lists (a user's file added to
    it makes it theirs). Folders of growlm versions that did not mark them are recognised by their names."""
    path = Path(path)
    if not path.is_dir():
        return None
    names = {p.name for p in path.iterdir() if not is_leftover(p)} - {MARK_FILE}
    mark = folder_mark(path)
    if mark is not None:
        return mark["kind"] if names <= set(mark["entries"]) else None
    return legacy_kind(path, names, growlm_kind, is_leftover, _json_or_none)


def folder_entries(path: Path) -> set[str]:
    """The names growlm may put in the folder it made at `path` (empty when it did not make it)."""
    kind = growlm_kind(path)
    if kind is None:
        return set()
    mark = folder_mark(path)
    return set(mark["entries"]) if mark is not None else legacy_entries(kind)


def growlm_file(path: Path) -> bool:
    """Whether an existing file is one growlm wrote: one of growlm's own names inside a folder growlm made, a JSON
    whose "format" is growlm's, or a PNG, HTML or Markdown file carrying growlm's mark."""
    if path.name in folder_entries(path.parent):
        return True
    if path.suffix == ".json":
        data = _json_or_none(path)
        return isinstance(data, dict) and str(data.get("format")).startswith("growlm-")
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    marks = {".png": b"tEXtSoftware\x00growlm", ".html": HTML_MARK.encode(), ".md": MARKDOWN_MARK.encode()}
    return path.suffix in marks and marks[path.suffix] in head


def _json_or_none(file: Path) -> Any:
    """A file read only to recognise it: missing or damaged is simply not growlm's."""
    try:
        return read_json(file)
    except GrowlmError:
        return None
