"""growlm.io: what --force may replace, the user's umask, and the test-only fault hook."""

import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

import growlm.io
from growlm.errors import GrowlmError
from growlm.io import (
    atomic_dir,
    atomic_write_text,
    check_replaceable,
    fault,
    growlm_kind,
)


def make(root, files: dict[str, str]):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("files, kind", [
    ({"growlm.json": "{}", "config.json": "{}"}, "model folder"),
    ({"composition.json": "{}"}, "composition folder"),
    ({"study.json": "{}", "runs/x": ""}, "study folder"),
    ({"configs/a.toml": ""}, "study folder"),
    ({"growlm_tokenizer.json": "{}", "tokenizer.json": "{}"}, "tokenizer folder"),
    ({"manifest.json": json.dumps({"format": "growlm-shards-v1"}), "train.bin": ""}, "shards folder"),
    ({"manifest.json": json.dumps({"format": "growlm-substrate-v1"})}, "substrate folder"),
    ({"config.resolved.toml": "", "metrics.jsonl": "", "checkpoints/latest": ""}, "run directory"),
    ({"tokenizer/growlm_tokenizer.json": "{}", ".growlm.lock": ""}, "run directory"),  # killed before its header
    ({"notes.txt": "mine"}, None),
    ({"data/thesis.tex": "mine"}, None),  # a run's entry name, but not growlm's content
    ({"config.resolved.toml": "", "notes.txt": "mine"}, None),  # a run holding the user's files
    ({"manifest.json": json.dumps({"format": "npm"})}, None),
    ({"inputs/raw.csv": ""}, None),
    ({"inputs/.tokenizer.x1.tmp/a": ""}, "study folder"),  # stopped while building its first input
])
def test_growlm_kind_recognises_only_growlm_outputs(tmp_path, files, kind):
    assert growlm_kind(make(tmp_path / "d", files)) == kind


def test_force_replaces_only_growlm_outputs(tmp_path, monkeypatch):
    mine = make(tmp_path / "mine", {"notes.txt": "precious"})
    with pytest.raises(GrowlmError, match="already exists"):
        check_replaceable(mine, force=False)
    with pytest.raises(GrowlmError, match="not something growlm made"):
        with atomic_dir(mine, force=True):
            pass
    assert (mine / "notes.txt").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(GrowlmError, match="is a file"):
        check_replaceable(tmp_path / "file", force=True)
    monkeypatch.chdir(make(tmp_path / "model", {"growlm.json": "{}"}))
    with pytest.raises(GrowlmError, match="current folder"):
        check_replaceable(tmp_path / "model", force=True)
    monkeypatch.chdir(tmp_path)
    with atomic_dir(tmp_path / "model", force=True) as tmp:
        (tmp / "growlm.json").write_text("{}")
    assert check_replaceable(tmp_path / "empty", force=False) == tmp_path / "empty"


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_the_users_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            save_file({"w": torch.zeros(2)}, tmp / "model.safetensors")  # safetensors writes 0600 itself
            (tmp / "sub").mkdir(mode=0o700)
        atomic_write_text(tmp_path / "out" / "note.txt", "x")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "out") == mode(tmp_path / "out" / "sub") == 0o777 & ~mask
    assert mode(tmp_path / "out" / "model.safetensors") == mode(tmp_path / "out" / "note.txt") == 0o666 & ~mask


def test_fault_hook_fires_on_the_nth_call_only(monkeypatch):
    monkeypatch.setattr(growlm.io, "_FAULT_COUNTS", {})
    fault("step")  # unarmed: nothing
    monkeypatch.setenv("GROWLM_FAULT", "step:2:interrupt")
    fault("export")
    fault("step")
    with pytest.raises(KeyboardInterrupt):
        fault("step")
    fault("step")
    monkeypatch.setenv("GROWLM_FAULT", "export:1:enospc")
    with pytest.raises(OSError, match="No space left"):
        fault("export")
