"""What `growlm study` was asked for, and the study folder it works in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from growlm.analysis.runs import STUDY_FILE
from growlm.errors import GrowlmError
from growlm.io.outputs import check_replaceable, clear_folder
from growlm.io.ownership import claim_folder, growlm_kind

KIND = "study folder"
# What the studies write at the top of their folder (a report adds its own names: io.ownership.add_entries).
ENTRIES = {STUDY_FILE, *"inputs inputs-binary heldout runs configs composed tables tables.md plots".split()}


@dataclass(frozen=True)
class StudyOptions:
    """What every study is asked for; a study with options of its own subclasses it (frozen, keyword-only), each
    added field with metadata {"help": ...} and, where the command line needs them, "flag", "parse" (text ->
    value), "choices", "metavar" or "repeat" (a repeatable flag collecting a tuple)."""

    root: Path
    scale: str
    seeds: int = 0  # 0: the study's default for the scale
    sets: tuple[str, ...] = ()  # KEY=VALUE config overrides for every run

    @property
    def seed_list(self) -> range:
        return range(self.seeds)


def option(default: object, help: str, **cli: object):
    """A study option: a dataclass field with its help and how the command line reads it."""
    return field(default=default, metadata={"help": help, **cli})


def prepare_root(root: Path, force: bool) -> None:
    """Create the study folder; with force, delete an earlier study there first (and nothing growlm did not make:
    io.outputs.check_replaceable holds the rule). Without force an existing study is continued."""
    if root.exists() and not root.is_dir():
        raise GrowlmError(f"`out` {root} is a file; give a folder")
    if force:
        check_replaceable(root, force)
        if root.is_dir():
            clear_folder(root, keep=())
    elif root.is_dir() and any(root.iterdir()) and growlm_kind(root) != KIND:
        raise GrowlmError(f"`out` {root} exists and is not a study folder; choose another `out`")
    root.mkdir(parents=True, exist_ok=True)
    claim_folder(root, KIND, ENTRIES)
