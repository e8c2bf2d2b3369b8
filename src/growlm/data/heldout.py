"""Pages held out of training so that translation pairs built from them are unseen text.

LibreOffice help and the Debian Administrator's Handbook exist in English, Russian and Chinese with the same page
structure. The evaluation builds en-ru and en-zh translation pairs from them (LibreOffice paragraphs aligned by
their id attribute, handbook paragraphs by position) and takes pairs only from held-out pages; the training
sources libreoffice-help-* and debian-handbook-* skip those pages in every language.

A page is identified by its language-independent path: the path below the language folder, with "/" separators
(help/en-US/text/shared/main.html and help/ru/text/shared/main.html are both "text/shared/main.html"; the
handbook's html/en-US/sect.apt-get.html is "sect.apt-get.html"). It is held out when the first 8 bytes of the
sha256 of that path, read as a big-endian integer, are 0 modulo 10: about 1 page in 10, the same set on every
machine and in every language.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HELDOUT_MODULUS = 10


def is_heldout_page(relpath: str) -> bool:
    digest = hashlib.sha256(relpath.replace("\\", "/").encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % HELDOUT_MODULUS == 0


def page_relpath(page: Path, language_dir: Path) -> str:
    """The language-independent path of a page inside a language folder (e.g. help/ru -> 'text/...')."""
    return page.relative_to(language_dir).as_posix()
