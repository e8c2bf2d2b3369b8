"""The studies `growlm study` offers: adding one is a module that defines `STUDY = Study(...)` plus one entry here.

An entry names the study, says in one line what it answers, and points at its module; the module is imported only
when that study is asked for (studies import torch, matplotlib and the trainer; `growlm --help` must not). The
module's `Study` (study/definition.py) brings everything else: its typed options, scales, config check and `run`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from growlm.errors import GrowlmError

if TYPE_CHECKING:
    from growlm.study.definition import Study


@dataclass(frozen=True)
class Entry:
    name: str
    summary: str  # what the study answers, one line
    module: str  # defines STUDY


ENTRIES: dict[str, Entry] = {}


def register(name: str, summary: str, module: str) -> None:
    ENTRIES[name] = Entry(name, summary, module)


register("depth", "the growth series by depth, every stage evaluated", "growlm.study.depth")
register("nine-layer", "constructive vs monolithic (frozen / trainable embedding)", "growlm.study.nine_layer")
register(
    "compose",
    "two experts and their compositions (logit/probability averaging, posterior, fixed-share)",
    "growlm.study.compose",
)
register(
    "growth-operators",
    "ways to grow to nine blocks against monolithic at equal FLOPs, over a budget ladder",
    "growlm.study.growth_operators",
)
register(
    "width-growth",
    "growth in width (zero, copy, random; old weights training or frozen) against depth and monolithic at equal FLOPs",
    "growlm.study.width_growth",
)
register(
    "continual",
    "add a language to a trained model (growth, fine-tuning, replay, composition) at equal FLOPs",
    "growlm.study.continual",
)


def load(name: str) -> Study:
    """The study's definition, importing its module now."""
    from growlm.study.definition import Study

    if name not in ENTRIES:
        raise GrowlmError(f"no study {name!r}; studies: {', '.join(ENTRIES)}")
    study = importlib.import_module(ENTRIES[name].module).STUDY
    if not isinstance(study, Study) or study.name != name:
        raise GrowlmError(f"{ENTRIES[name].module}.STUDY is not the Study {name!r}; fix the registry entry")
    return study
