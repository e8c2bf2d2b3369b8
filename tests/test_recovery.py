"""A run stopped at any moment resumes to the run an uninterrupted one makes, bit for bit (growlm.faults).

Each moment is hit with the test-only GROWLM_FAULT hook: in process as Ctrl-C (KeyboardInterrupt) or a full disk
(ENOSPC), and in a subprocess as SIGKILL (nothing cleans up; the lock dies with the process).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import growlm.faults
from conftest import TINY_CONFIG
from growlm.cli import main
from growlm.io.ownership import MARK_FILE
from growlm.io.temporaries import LOCK_FILE
from growlm.train.rundir import RunDir


@pytest.fixture(scope="module")
def config(module_tmp, corpus_inputs) -> Path:
    """tiny_config made smaller still: 3 steps a stage of 2 x 16 tokens, a checkpoint every 2 steps."""
    path = module_tmp("cfg") / "tiny.toml"
    text = TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()})
    for old, new in (
        ("batch_size = 4", "batch_size = 2"),
        ("context = 32", "context = 16"),
        ("tokens = 512", "tokens = 96"),
        ("eval_batches = 2", "eval_batches = 1"),
    ):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def reference(config, module_tmp) -> Path:
    run = module_tmp("ref") / "run"
    assert main(["grow", str(config), "--out", str(run)]) == 0
    return run


@pytest.fixture
def fault(monkeypatch):
    """Arm GROWLM_FAULT for the next in-process call; disarm with fault(None)."""

    def arm(spec: str | None) -> None:
        monkeypatch.setattr(growlm.faults, "_HITS", {})
        if spec:
            monkeypatch.setenv("GROWLM_FAULT", spec)
        else:
            monkeypatch.delenv("GROWLM_FAULT", raising=False)

    return arm


def assert_same_run(run: Path, reference: Path) -> None:
    for stage in (1, 2):
        a = load_file(reference / "stages" / str(stage) / "model" / "model.safetensors")
        b = load_file(run / "stages" / str(stage) / "model" / "model.safetensors")
        # Exact: deterministic CPU training, the same config and process settings as the reference.
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"stage {stage} differs"
    summaries = json.loads((run / "stages" / "summary.json").read_text())
    assert [s["stage"] for s in summaries] == [1, 2]
    ref = json.loads((reference / "stages" / "summary.json").read_text())
    assert [s["val_loss"] for s in summaries] == [s["val_loss"] for s in ref]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert steps == sorted(set(steps)), "a step was logged twice"
    assert sum(r["kind"] == "stage_end" for r in rows) == 2
    assert sum(bool(r.get("at_stage_start")) for r in rows) == 1
    left = temporaries(run)
    assert not left, f"temporaries left: {left}"


def temporaries(run: Path) -> list[Path]:
    """Dot-files in the run but the lock, the folder marks and sharded checkpoints' index (DCP's .metadata)."""
    index = set(run.glob("checkpoints/*/shards/.metadata"))
    return [p for p in run.rglob(".*") if p.name not in (LOCK_FILE, MARK_FILE) and p not in index]


@pytest.mark.parametrize(
    "spec",
    ["step:3:interrupt", "checkpoint:2:interrupt", "export:1:interrupt", "stage:1:interrupt", "checkpoint:3:enospc"],
)
def test_interrupted_run_resumes_bit_identical(spec, config, reference, fault, tmp_path, capsys):
    run = tmp_path / "run"
    fault(spec)
    code = main(["grow", str(config), "--out", str(run)])
    said = [
        line[line.index("growlm grow:") :] for line in capsys.readouterr().err.splitlines() if "growlm grow:" in line
    ]
    assert len(said) == 1 and "--resume" in said[0]
    if spec.endswith("enospc"):
        assert code == 2 and "no space left" in said[0]
    else:
        assert code == 130 and "interrupted" in said[0]
    assert not (run / "stages" / "2" / "model").exists()
    fault(None)
    assert main(["grow", "--resume", "--out", str(run)]) == 0
    assert_same_run(run, reference)
    resumes = [json.loads(x) for x in (run / "resumes.jsonl").read_text().splitlines()]
    assert len(resumes) == 1 and resumes[0]["overrides"] == []


def test_sigkill_while_a_stage_is_exported_loses_nothing(config, reference, tmp_path):
    """The old order recorded the stage-end checkpoint before the export: a kill there lost stage 1 for good."""
    run = tmp_path / "run"
    env = {**os.environ, "GROWLM_FAULT": "export:1"}
    out = subprocess.run(
        [sys.executable, "-m", "growlm", "grow", str(config), "--out", str(run)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == -9, out.stderr[-2000:]
    assert list((run / "stages" / "1").glob(".model.*.tmp")), "the kill came while the export was written"
    assert main(["grow", "--resume", "--out", str(run)]) == 0  # the dead process's lock does not block
    assert_same_run(run, reference)


def test_damaged_checkpoints_fall_back_to_an_intact_one(config, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "grow",
                str(config),
                "--out",
                str(run),
                "--set",
                "growth.stages.1.tokens=32",
                "--set",
                "train.keep_checkpoints=1",
            ]
        )
        == 0
    )
    kept = sorted((run / "checkpoints").glob("step-*"))
    assert len(kept) == 2, "at least two checkpoints are kept"
    assert set(json.loads((kept[-1] / "state.json").read_text())["sha256"]) == {"model.safetensors", "rng.pt"}
    data = (kept[-1] / "model.safetensors").read_bytes()
    (kept[-1] / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert main(["grow", "--resume", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"checkpoint {kept[-1]} is damaged" in err and f"using {kept[0].name} instead" in err
    for ckpt in (run / "checkpoints").glob("step-*"):
        (ckpt / "state.json").write_text('{"stage": 0, "glob')
    assert main(["grow", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no intact checkpoint" in err and len(err.splitlines()) == 1


def test_one_writer_per_run_directory(config, tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    lock = run.acquire()
    try:
        assert main(["grow", str(config), "--out", str(run.path)]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()} on host" in err and "since" in err
        assert main(["grow", "--resume", "--out", str(run.path)]) == 2
    finally:
        lock.close()
    assert not (run.path / "config.resolved.toml").exists()


def test_resume_refuses_training_overrides_and_records_the_rest(reference, tmp_path, capsys):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(reference, run)
    assert main(["grow", "--resume", "--out", str(run), "--set", "train.lr=1e-2"]) == 2
    err = capsys.readouterr().err
    assert "train.lr cannot change" in err and "train.log_every" in err
    assert not (run / "resumes.jsonl").exists()
    assert main(["grow", "--resume", "--out", str(run), "--set", "train.log_every=3", "--set", "train.threads=1"]) == 0
    rows = [json.loads(x) for x in (run / "resumes.jsonl").read_text().splitlines()]
    assert rows[-1]["overrides"] == ["train.log_every=3", "train.threads=1"]
    assert rows[-1]["checkpoint"].endswith("-stage-end")


def test_killed_before_the_header_does_not_send_the_user_in_a_circle(config, corpus_inputs, tmp_path, capsys):
    import shutil

    from growlm.train.recipe import fresh_run_dir

    run = tmp_path / "run"
    shutil.copytree(corpus_inputs["tokenizer"], run / "tokenizer")  # built, then killed: no header yet
    (run / ".growlm.lock").write_text("pid 1 on host gone since then\n")
    assert main(["grow", "--resume", "--out", str(run)]) == 2
    assert "start it over with --force" in capsys.readouterr().err
    assert main(["grow", str(config), "--out", str(run)]) == 2
    assert "--force" in capsys.readouterr().err
    fresh_run_dir(RunDir(run), force=True)  # what --force checks first: accepted


def test_eval_run_stopped_while_writing_results_completes_on_rerun(reference, fault, tmp_path, capsys):
    import shutil

    arc = tmp_path / "arc.jsonl"
    arc.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"q{i}",
                    "question": f"Which one is {i}?",
                    "answerKey": "A",
                    "choices": {"text": ["alpha", "beta"], "label": ["A", "B"]},
                }
            )
            + "\n"
            for i in range(3)
        )
    )
    runs = {name: shutil.copytree(reference, tmp_path / name) for name in ("whole", "stopped")}
    args = ["--tasks", "arc_easy", "--no-progress", "--task-file", f"arc_easy={arc}"]
    assert main(["eval-run", str(runs["whole"]), *args]) == 0
    fault("write eval_by_depth.csv:1:interrupt")
    assert main(["eval-run", str(runs["stopped"]), *args]) == 130
    assert not (runs["stopped"] / "eval_by_depth.csv").exists()
    fault(None)
    assert main(["eval-run", str(runs["stopped"]), *args, "--force"]) == 0
    for name in ("eval_by_depth.csv", "eval_by_depth.json"):
        assert (runs["stopped"] / name).read_text() == (runs["whole"] / name).read_text()
    assert not temporaries(runs["stopped"])


def test_a_resume_stopped_while_it_trims_the_metrics_keeps_them_whole(config, reference, fault, tmp_path, capsys):
    """A resume first drops the rows logged after its checkpoint; that rewrite is atomic, so stopping it there
    leaves the old metrics.jsonl whole, and the next resume still ends as the uninterrupted run."""
    run = tmp_path / "run"
    fault("step:5:interrupt")  # stage 2, after the step-4 checkpoint: step 5's rows are logged again on resume
    assert main(["grow", str(config), "--out", str(run)]) == 130
    before = (run / "metrics.jsonl").read_bytes()
    fault("write metrics.jsonl:1:interrupt")  # the trimmed copy is written, not yet renamed into place
    assert main(["grow", "--resume", "--out", str(run)]) == 130
    assert (run / "metrics.jsonl").read_bytes() == before
    fault(None)
    assert main(["grow", "--resume", "--out", str(run)]) == 0
    assert_same_run(run, reference)
    capsys.readouterr()
