"""growlm.io: atomic writes with the user's umask, the one JSON reader, temporaries, folder marks and what `force`
may replace."""

import json
import os
import stat
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from growlm.errors import GrowlmError
from growlm.io import temporaries
from growlm.io.atomic import atomic_write_text, read_json
from growlm.io.outputs import atomic_dir, check_not_input, check_output_file, check_replaceable
from growlm.io.ownership import MARK_FILE, add_entries, growlm_file, growlm_kind


def make(root, files: dict[str, str]):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "files, kind",
    [
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
        (
            {
                "state.json": json.dumps({"stage": 0, "stage_step": 1, "global_step": 1, "sha256": {}}),
                "model.safetensors": "",
            },
            "checkpoint",
        ),
        ({"state.json": '{"theme": "dark"}', "notes.txt": "mine"}, None),  # common marker names need growlm's content
        (
            {"state.json": json.dumps({"stage": 0, "stage_step": 1, "global_step": 1, "sha256": {}}), "notes.txt": ""},
            None,
        ),  # ... and a folder holding nothing else
        (
            {"state.json": json.dumps({"_data_files": []}), "dataset_info.json": "{}", "data-00000-of-00001.arrow": ""},
            None,
        ),  # what datasets.Dataset.save_to_disk writes
        ({"study.json": "{}", "thesis.tex": "mine"}, None),
        ({"study.json": "{}", "runs/a/metrics.jsonl": "", "report.html": "", "report.md": ""}, "study folder"),
        ({"config.resolved.toml": "", "metrics.jsonl": "", "report.html": "", "report.md": ""}, "run directory"),
        ({"tsne.json": "{}", "tsne.png": "", "scores.md": ""}, "t-SNE report"),
        ({"substrate.json": "{}", "paper.pdf": ""}, None),
    ],
)
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


def test_a_users_dot_files_are_not_taken_for_leftovers(tmp_path):
    """Only growlm's own temp names (.NAME.RANDOM.tmp, an .NAME.old folder) make a folder count as empty."""
    dots = make(tmp_path / "dots", {".draft.tmp": "my draft", ".backup.old": "my backup"})
    for force in (False, True):
        with pytest.raises(GrowlmError, match="not something growlm made"):
            check_replaceable(dots, force=force)
    left = make(tmp_path / "left", {".model.123_ab12cd.tmp/x": "", ".model.old/y": "", ".growlm.lock": ""})
    assert check_replaceable(left, force=False) == left


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = temporaries._host_tag()
    stale = make(
        tmp_path,
        {
            f".out.{dead.pid}h{here}_k1ll3d.tmp/model.safetensors": "half",
            ".out.old/x": "",
            f".r.json.{dead.pid}h{here}_x.tmp": "",
            f".out.{os.getpid()}h{here}_live.tmp/x": "",
            f".out.{dead.pid}hffffff_other.tmp/x": "",
            ".out.abcdefgh.tmp/x": "",
        },
    )
    with atomic_dir(stale / "out") as tmp:
        (tmp / "a").write_text("new")
        assert tmp.name.startswith(f".out.{os.getpid()}h{here}_")
    atomic_write_text(stale / "r.json", "{}")
    assert sorted(p.name for p in stale.iterdir()) == sorted(
        [  # live, other machines' and unknown ones stay
            f".out.{os.getpid()}h{here}_live.tmp",
            f".out.{dead.pid}hffffff_other.tmp",
            ".out.abcdefgh.tmp",
            "out",
            "r.json",
        ]
    )


def test_an_output_may_not_be_or_hold_an_input(tmp_path):
    model = tmp_path / "run" / "checkpoints" / "step-1"
    for out in (model, tmp_path / "run", tmp_path / "run" / "checkpoints" / ".." / "checkpoints"):
        with pytest.raises(GrowlmError, match="would overwrite the input"):
            check_not_input(out, [None, "", model])
    check_not_input(model / "exported", [model])  # inside an input is the caller's business
    check_not_input(tmp_path / "step-1", [model])


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


def test_a_folder_is_growlms_by_its_owners_mark(tmp_path):
    with atomic_dir(tmp_path / "model", kind="model folder") as tmp:
        (tmp / "weights.bin").write_text("w")
    model = tmp_path / "model"
    assert growlm_kind(model) == "model folder"
    assert json.loads((model / MARK_FILE).read_text())["entries"] == ["weights.bin"]
    add_entries(model, ["extra.json"])
    (model / "extra.json").write_text("{}")
    assert growlm_kind(model) == "model folder" and growlm_file(model / "extra.json")
    (model / "thesis.tex").write_text("mine")  # a user's file makes the folder the user's
    assert growlm_kind(model) is None
    with pytest.raises(GrowlmError, match="not something growlm made"):
        check_replaceable(model, force=True)


def test_a_damaged_mark_marks_nothing(tmp_path):
    folder = make(tmp_path / "f", {MARK_FILE: '{"kind": "model folder"}', "a.txt": ""})
    assert growlm_kind(folder) is None


@pytest.mark.parametrize(
    "content, expect, problem",
    [
        (None, None, "is missing"),
        ("{not json", None, "is damaged (not valid JSON: "),
        (b"\xff\xfe", None, "is damaged (not valid JSON: "),
        ("[1, 2]", dict, "is damaged (not a JSON object)"),
        ("{}", list, "is damaged (not a JSON array)"),
    ],
)
def test_the_json_reader_says_what_is_wrong_in_one_line(tmp_path, content, expect, problem):
    file = tmp_path / "x.json"
    if content is not None:
        file.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(GrowlmError) as err:
        read_json(file, "rewrite it", expect)
    assert str(err.value).startswith(f"{file} {problem}") and str(err.value).endswith("; rewrite it")
    assert "\n" not in str(err.value)
    file.write_text('{"a": [1]}')
    assert read_json(file, "rewrite it", dict) == {"a": [1]} == read_json(file)


def test_library_messages_name_parameters_not_flags(tmp_path):
    """The CLI renders `out` and `force` as the verb's flags (growlm.errors); the library never spells a flag."""
    mine = make(tmp_path / "mine", {"notes.txt": "precious"})
    with pytest.raises(GrowlmError, match="choose another `out` .`force` replaces only"):
        check_replaceable(mine, force=False)
    with pytest.raises(GrowlmError, match="^`png` .* is a folder"):
        check_output_file(mine, force=True, param="png")
    with pytest.raises(GrowlmError, match="^`report` .* would overwrite the input"):
        check_not_input(mine, [mine], param="report")
