"""What `growlm study` was asked for, and the study folder it works in."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from growlm.errors import GrowlmError

STUDY_MARKERS = ("study.json", "inputs", "runs", "configs")


@dataclass(frozen=True)
class StudyOptions:
    root: Path
    scale: str
    seeds: int
    sets: list[str] = field(default_factory=list)  # --set KEY=VALUE for every run

    @property
    def seed_list(self) -> range:
        return range(self.seeds)


def prepare_root(root: Path, force: bool) -> None:
    """Create the study folder; with force, delete an earlier study there first (and nothing that is not one)."""
    if force and root.exists():
        if root.is_file() or (any(root.iterdir()) and not any((root / m).exists() for m in STUDY_MARKERS)):
            raise GrowlmError(f"{root} is not a study folder (none of {', '.join(STUDY_MARKERS)}); refusing to "
                              "delete it with --force; choose another --out")
        shutil.rmtree(root)
    if root.is_file():
        raise GrowlmError(f"{root} is a file; give --out a folder")
    root.mkdir(parents=True, exist_ok=True)
