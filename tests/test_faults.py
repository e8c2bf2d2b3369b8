"""growlm.faults: the test-only crash points (GROWLM_FAULT)."""

import pytest

import growlm.faults
from growlm.faults import crash_point


def test_a_crash_point_fires_on_the_nth_call_only(monkeypatch):
    monkeypatch.setattr(growlm.faults, "_HITS", {})
    monkeypatch.delenv("GROWLM_FAULT", raising=False)
    crash_point("step")  # unarmed: nothing
    monkeypatch.setenv("GROWLM_FAULT", "step:2:interrupt")
    crash_point("export")
    crash_point("step")
    with pytest.raises(KeyboardInterrupt):
        crash_point("step")
    crash_point("step")
    monkeypatch.setenv("GROWLM_FAULT", "export:1:enospc")
    with pytest.raises(OSError, match="No space left"):
        crash_point("export")


def test_a_crash_point_armed_for_another_rank_does_nothing(monkeypatch):
    monkeypatch.setattr(growlm.faults, "_HITS", {})
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("GROWLM_FAULT_RANK", "1")
    monkeypatch.setenv("GROWLM_FAULT", "step:1:interrupt")
    crash_point("step")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(KeyboardInterrupt):
        crash_point("step")
