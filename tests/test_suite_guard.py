"""The suite's own guard (conftest): it refuses, in one line, to start where the temp folder lacks room."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

import conftest


def session(basetemp):
    return SimpleNamespace(config=SimpleNamespace(option=SimpleNamespace(basetemp=basetemp)))


def test_the_suite_refuses_to_start_without_room_and_starts_with_it(tmp_path, monkeypatch):
    monkeypatch.delenv("GROWLM_TESTS_IGNORE_DISK", raising=False)
    gib = 2**30
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(free=int(0.5 * gib)))
    with pytest.raises(pytest.exit.Exception, match=r"0\.5 GiB free, the suite needs about 4\.0 GiB") as stop:
        conftest.pytest_sessionstart(session(str(tmp_path)))
    assert stop.value.returncode == 2 and str(tmp_path) in str(stop.value)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(free=int(conftest.PEAK_DISK_GB * gib)))
    conftest.pytest_sessionstart(session(str(tmp_path)))  # exactly enough: starts
