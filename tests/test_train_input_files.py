"""A resume reads exactly the token files the run started with (growlm.train.input_files)."""

import json
import os
import shutil

import pytest

import growlm.faults
from conftest import TINY_CONFIG
from growlm.cli import main
from growlm.data.shards import ShardSet
from growlm.io.hashing import sha256_file
from growlm.io.temporaries import LOCK_FILE

pytestmark = pytest.mark.slow


def snapshot(run):
    """Every file of the run directory (but the writer's lock) with its sha256."""
    return {
        str(p.relative_to(run)): sha256_file(p) for p in sorted(run.rglob("*")) if p.is_file() and p.name != LOCK_FILE
    }


@pytest.fixture
def stopped_run(corpus_inputs, tmp_path, monkeypatch):
    """The tiny config on its own copy of the shards, interrupted in its second stage."""
    shards = tmp_path / "shards"
    shutil.copytree(corpus_inputs["shards"], shards)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_CONFIG.format(**{**{k: str(v) for k, v in corpus_inputs.items()}, "shards": str(shards)}))
    run = tmp_path / "run"
    monkeypatch.setattr(growlm.faults, "_HITS", {})
    monkeypatch.setenv("GROWLM_FAULT", "step:6:interrupt")
    assert main(["grow", str(config), "--out", str(run)]) == 130
    monkeypatch.delenv("GROWLM_FAULT")
    return run, shards


def test_the_shards_record_every_file_and_the_run_stamps_them(stopped_run):
    run, shards = stopped_run
    files = ShardSet(shards).files()
    assert files and all(sha256_file(shards / name) == sha for name, sha in files.items())
    stamps = json.loads((run / "manifest.json").read_text())["token_files"]
    assert stamps.keys() == files.keys() and all(stamps[n]["sha256"] == files[n] for n in files)


def test_one_changed_byte_refuses_the_resume_naming_the_file(stopped_run, capsys):
    run, shards = stopped_run
    victim = next(name for name in ShardSet(shards).files() if name.endswith(".train.tokens.bin"))
    data = bytearray((shards / victim).read_bytes())
    data[len(data) // 2] ^= 1
    (shards / victim).write_bytes(bytes(data))
    before = snapshot(run)
    assert main(["grow", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and victim in err[0] and "changed since the run started" in err[0], err
    assert snapshot(run) == before  # nothing of the run changed


def test_a_touched_but_unchanged_file_resumes(stopped_run):
    run, shards = stopped_run
    name = next(iter(ShardSet(shards).files()))
    stat = os.stat(shards / name)
    os.utime(shards / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # hashed again, and the same bytes
    assert main(["grow", "--resume", "--out", str(run)]) == 0
