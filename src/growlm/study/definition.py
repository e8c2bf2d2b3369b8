"""What a study is (`Study`: its scales, typed options, the check that derives every run's config, and `run`) and
how one runs (`run_study`). The list of studies is study/registry.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from growlm.errors import GrowlmError
from growlm.study.options import StudyOptions, prepare_root
from growlm.study.scales import StudyScale


@dataclass(frozen=True)
class Study:
    name: str
    scales: Mapping[str, StudyScale]  # the first is the default
    check: Callable[[StudyOptions], object]  # derives every run's config; raises GrowlmError on a bad option
    run: Callable[[StudyOptions], Path]  # -> the report
    options: type[StudyOptions] = StudyOptions  # a subclass adds the study's own options
    default_seeds: Callable[[StudyOptions], int] | None = None  # None: the scale's `seeds`

    def seeds(self, opts: StudyOptions) -> int:
        return self.default_seeds(opts) if self.default_seeds else self.scales[opts.scale].seeds

    def own_options(self) -> list[dataclasses.Field]:
        """The fields the study adds to the common ones (root, scale, seeds, sets)."""
        common = {f.name for f in dataclasses.fields(StudyOptions)}
        return [f for f in dataclasses.fields(self.options) if f.name not in common]


def run_study(study: Study, opts: StudyOptions, force: bool = False) -> Path:
    """Check every run's config, then prepare the study folder (`force`: an earlier study there is deleted) and
    run the study; a bad option costs no earlier study. Returns the report's path."""
    if opts.scale not in study.scales:
        raise GrowlmError(f"`scale` {opts.scale!r}: {study.name} has the scales {', '.join(study.scales)}")
    opts = dataclasses.replace(opts, seeds=opts.seeds or study.seeds(opts))
    study.check(opts)
    prepare_root(opts.root, force)
    return study.run(opts)
