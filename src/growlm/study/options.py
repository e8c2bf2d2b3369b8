"""What `growlm study` was asked for, and the study folder it works in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from growlm.analysis.runs import STUDY_FILE
from growlm.errors import GrowlmError
from growlm.io import check_replaceable, claim_folder, clear_folder, growlm_kind

KIND = "study folder"
# What the studies write at the top of their folder (a report adds its own names: io.add_entries).
ENTRIES = {STUDY_FILE, *"inputs inputs-binary heldout runs configs composed tables tables.md plots".split()}


@dataclass(frozen=True)
class StudyOptions:
    root: Path
    scale: str
    seeds: int
    sets: list[str] = field(default_factory=list)  # --set KEY=VALUE for every run
    substrate: str = "visual"  # --substrate, for the studies that take it
    budgets: tuple[float, ...] = (1.0,)  # --budgets, multiples of the scale's base budget (growth-operators)
    arms: tuple[str, ...] = ()  # --arms, a subset of the study's arms (growth-operators; empty: its default)
    base_sources: tuple[str, ...] = ()  # --base-source, the first domain (continual; empty: its default)
    new_sources: tuple[str, ...] = ()  # --new-source, the domain added (continual; empty: its default)

    @property
    def seed_list(self) -> range:
        return range(self.seeds)


def prepare_root(root: Path, force: bool) -> None:
    """Create the study folder; with force, delete an earlier study there first (and nothing growlm did not make:
    io.check_replaceable holds the rule). Without force an existing study is continued."""
    if root.exists() and not root.is_dir():
        raise GrowlmError(f"--out {root} is a file; give a folder")
    if force:
        check_replaceable(root, force)
        if root.is_dir():
            clear_folder(root, keep=())
    elif root.is_dir() and any(root.iterdir()) and growlm_kind(root) != KIND:
        raise GrowlmError(f"--out {root} exists and is not a study folder; choose another --out")
    root.mkdir(parents=True, exist_ok=True)
    claim_folder(root, KIND, ENTRIES)
