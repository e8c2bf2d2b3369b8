"""A study plugs in through the registry alone: a module defining STUDY plus one entry, no change to commands/."""

import sys
import textwrap

import pytest

import growlm
from growlm.cli import main
from growlm.errors import GrowlmError
from growlm.study import registry

THROWAWAY = """
from dataclasses import dataclass
from pathlib import Path

from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_text
from growlm.study.options import StudyOptions, option
from growlm.study.definition import Study
from growlm.study.scales import StudyScale


@dataclass(frozen=True, kw_only=True)
class Options(StudyOptions):
    greeting: str = option("hello", "what the report says")
    counts: tuple[int, ...] = option((1,), "numbers", parse=lambda t: tuple(int(x) for x in t.split(",")))


def check(opts):
    if not opts.greeting.isalpha():
        raise GrowlmError(f"`greeting` {opts.greeting!r}: letters only")


def run(opts):
    report = opts.root / "report.txt"
    atomic_write_text(report, f"{opts.greeting} {opts.scale} seeds={opts.seeds} counts={opts.counts} {opts.sets}")
    return report


SCALES = {"tiny": StudyScale(patch={}, about="instant", seeds=3), "big": StudyScale(patch={}, about="never", seeds=7)}
STUDY = Study("throwaway", SCALES, check, run, options=Options)
"""


@pytest.fixture
def throwaway(tmp_path, monkeypatch):
    (tmp_path / "throwaway_study.py").write_text(textwrap.dedent(THROWAWAY), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.ENTRIES, "throwaway", registry.Entry("throwaway", "a test", "throwaway_study"))
    yield tmp_path
    sys.modules.pop("throwaway_study", None)


def test_a_registered_study_runs_from_the_command_line(throwaway, capsys):
    out = throwaway / "study"
    args = ["study", "throwaway", "--out", str(out), "--greeting", "hi", "--counts", "2,3", "--set", "train.lr=1"]
    assert main(args) == 0
    assert (out / "report.txt").read_text() == "hi tiny seeds=3 counts=(2, 3) ('train.lr=1',)"


def test_its_help_lists_its_scales_and_options(throwaway, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["study", "throwaway", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "--greeting" in help_text and "tiny: instant" in help_text and "big: never" in help_text


def test_its_errors_name_its_flags_and_write_nothing(throwaway, capsys):
    out = throwaway / "study"
    assert main(["study", "throwaway", "--out", str(out), "--greeting", "h1"]) == 2
    assert "--greeting 'h1': letters only" in capsys.readouterr().err
    assert not out.exists()
    assert main(["study", "throwaway", "--out", str(out), "--budgets", "1"]) == 2
    assert "unrecognized arguments: --budgets" in capsys.readouterr().err


def test_the_api_runs_it_with_typed_options(throwaway):
    report = growlm.run_study("throwaway", scale="big", out=throwaway / "s", seeds=2, counts=(5,))
    assert report.read_text() == "hello big seeds=2 counts=(5,) ()"
    with pytest.raises(GrowlmError, match="takes no option budgets"):
        growlm.run_study("throwaway", scale="big", out=throwaway / "s", budgets=(1.0,))
    with pytest.raises(GrowlmError, match="no study 'nope'"):
        growlm.study_definition("nope")
