"""Word groups for the t-SNE analysis: concepts (numbers, animals, ...) with words in one or more languages.

A groups file is JSON: {"groups": {GROUP: {LANG: [word, ...]} | [word, ...]}}. The packaged default
(growlm/assets/word_groups.json) has six concepts with the same ten words in English, Russian and Chinese.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from growlm.errors import GrowlmError

NO_LANGUAGE = ""


@dataclass(frozen=True)
class Word:
    text: str
    group: str
    language: str


def default_groups_path() -> Path:
    return Path(str(resources.files("growlm") / "assets" / "word_groups.json"))


def load_word_groups(path: str | Path | None = None) -> list[Word]:
    """The words of a groups file (the packaged default when path is None), in file order."""
    path = Path(path) if path is not None else default_groups_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrowlmError(
            f"word groups file {path} does not exist; give an existing file as `groups_path`, or omit it for "
            "the default"
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GrowlmError(f"word groups file {path} is not valid JSON: {err}") from None
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, dict):
        raise GrowlmError(f'{path}: expected {{"groups": {{GROUP: {{LANG: [words]}} or [words]}}}}')
    words = [w for name, body in groups.items() for w in _group_words(path, name, body)]
    _check(path, words)
    return words


def _group_words(path: Path, name: str, body: object) -> list[Word]:
    by_language = body if isinstance(body, dict) else {NO_LANGUAGE: body}
    words = []
    for language, texts in by_language.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise GrowlmError(f"{path}: group {name!r} language {language!r} must be a list of non-empty strings")
        words += [Word(t, name, language) for t in texts]
    return words


def _check(path: Path, words: list[Word]) -> None:
    seen: dict[str, str] = {}
    for w in words:
        if seen.setdefault(w.text, w.group) != w.group:
            raise GrowlmError(f"{path}: word {w.text!r} is in both {seen[w.text]!r} and {w.group!r}; keep it in one")
    sizes = {g: sum(w.group == g for w in words) for g in dict.fromkeys(w.group for w in words)}
    if len(sizes) < 2 or min(sizes.values()) < 2:
        raise GrowlmError(f"{path}: need at least 2 groups with at least 2 words each (got {sizes})")
