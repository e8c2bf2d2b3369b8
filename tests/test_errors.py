"""Bad input ends in one line and exit 2, never a traceback; the table below is docs/ERRORS.md.

Each case runs the CLI in a prepared folder ({user} is a folder the user owns: it must survive every case).
Regenerate the catalogue after changing the table: GROWLM_REGENERATE_ERRORS=1 pytest tests/test_errors.py
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import TINY_CONFIG, tiny_llama
from growlm.cli import main

CATALOGUE = Path(__file__).parent.parent / "docs" / "ERRORS.md"

# (situation, argv with {placeholders}, message fragment, extra environment)
CASES = [
    ("config file is not UTF-8", "grow {latin1}", "is not UTF-8 text", {}),
    ("--set through a single value", "grow {config} --set train.lr.x=5", "train.lr is a single value, not a table", {}),
    (
        "--set of an unknown key",
        "grow {config} --set train.learning_rate=1e-3",
        "unknown key 'train.learning_rate'; did you mean train.lr? (growlm config explain lists every key)",
        {},
    ),
    ("--out is a file", "grow {config} --out {afile}", "is a file; give a folder path", {}),
    (
        "--out is a folder growlm did not make",
        "grow {config} --out {user}",
        "already exists and is not something growlm made",
        {},
    ),
    (
        "--out is an existing run",
        "grow {config} --out {header}",
        "pass --resume to continue it, --force to replace it",
        {},
    ),
    (
        "grow --force over a folder growlm did not make",
        "grow {config} --out {user} --force",
        "is not something growlm made",
        {},
    ),
    (
        "export --force over a folder growlm did not make",
        "export {ckpt} --out {user} --force",
        "is not something growlm made",
        {},
    ),
    (
        "compose --force over a folder growlm did not make",
        "compose {model} {model2} --out {user} --force",
        "is not something growlm made",
        {},
    ),
    (
        "compose --out is one of its experts",
        "compose {model} {model2} --out {model} --force",
        "would overwrite the expert",
        {},
    ),
    (
        "study --force over a folder growlm did not make",
        "study depth --scale smoke --out {user} --force",
        "is not something growlm made",
        {},
    ),
    (
        "data prepare --force over a folder growlm did not make",
        "data prepare --source {text} --out {user} --force",
        "is not something growlm made",
        {},
    ),
    (
        "tokenizer build --force over a folder growlm did not make",
        "tokenizer build --out {user} --force",
        "is not something growlm made",
        {},
    ),
    (
        "substrate build --force over a folder growlm did not make",
        "substrate build --kind random --out {user} --force",
        "is not something growlm made",
        {},
    ),
    ("a second writer of one run directory", "grow {config} --out {locked}", "is being written by pid", {}),
    ("--resume of a run killed before its header", "grow --resume --out {noheader}", "start it over with --force", {}),
    (
        "--resume --set of a training setting",
        "grow --resume --out {header} --set train.lr=1e-2",
        "train.lr cannot change",
        {},
    ),
    (
        "a model far too large for memory",
        "grow {config} --out {tmp}/big --set model.d_model=16384 --set growth.stages.0.add_blocks=64",
        "or turn this check off (--ignore-memory-check)",
        {},
    ),
    (
        "disk full while training (ENOSPC)",
        "grow {config} --out {tmp}/full",
        "no space left on the device",
        {"GROWLM_FAULT": "checkpoint:1:enospc"},
    ),
    ("damaged checkpoint", "export {damaged_ckpt} --out {tmp}/exported", "is damaged (model.safetensors", {}),
    ("truncated model weights", "generate {truncated} --prompt hi", "cannot load the model", {}),
    ("model folder asking for custom code", "generate {remote} --prompt hi", "asks for custom code", {}),
    (
        "eval --force over a file growlm did not write",
        "eval {model} --tasks perplexity --out {afile} --force",
        "is not a file growlm wrote",
        {},
    ),
    (
        "compose an expert asking for custom code",
        "compose {remote} {model2} --out {tmp}/composed_remote",
        "asks for custom code",
        {},
    ),
    (
        "compose a truncated expert",
        "compose {truncated} {model2} --out {tmp}/composed_truncated",
        "is damaged or truncated",
        {},
    ),
    (
        "a non-finite config value",
        "grow {config} --out {tmp}/inf --set train.weight_decay=inf",
        "Input should be a finite number",
        {},
    ),
    ("truncated composition.json", "generate {badcomp} --prompt hi", "composition.json is not valid JSON", {}),
    ("truncated tokenizer files", "tokenizer encode hi --tokenizer {badtok}", "does not match", {}),
    ("a prompt that is not valid UTF-8", "generate {model} --prompt ab\udcffc", "--prompt is not valid UTF-8", {}),
    ("a text to encode that is not valid UTF-8", "tokenizer encode ab\udcffc", "is not valid UTF-8", {}),
    (
        "--force over a user folder holding a state.json",
        "substrate build --kind random --out {userstate} --force",
        "is not something growlm made",
        {},
    ),
    (
        "--out is a user folder holding only dot-files",
        "grow {config} --out {dotfiles}",
        "already exists and is not something growlm made",
        {},
    ),
    (
        "export --out is the run holding the checkpoint",
        "export {ckpt} --out {run} --force",
        "would overwrite the input",
        {},
    ),
    (
        "substrate build --out is its --tokenizer",
        "substrate build --kind visual --tokenizer {tok} --out {tok} --force",
        "would overwrite the input",
        {},
    ),
    (
        "grow --out is the config's data.shards",
        "grow {ownshards_config} --out {ownshards} --force",
        "would overwrite the input",
        {},
    ),
    (
        "eval --out is a file the model loads",
        "eval {victim} --tasks perplexity --out {victim}/config.json --force",
        "would overwrite the input",
        {},
    ),
    (
        "report --out is another file of the run",
        "report {header} --out {header}/config.resolved.toml --force",
        "a file of",
        {},
    ),
    ("config file is empty", "grow {empty}", "is empty (it sets no key)", {}),
    ("token id outside the vocabulary", "tokenizer decode 104 70000", "outside the vocabulary", {}),
    ("model config.json with a negative size", "generate {negsize} --prompt hi", "is not a positive integer", {}),
    ("truncated shard tokens", "grow {short_config} --out {tmp}/short", "tokens the manifest records", {}),
    (
        "a fixed learning rate for a study that sweeps it",
        "study growth-operators --scale smoke --out {tmp}/g --set train.lr=1e-3",
        "chooses each arm's learning rate",
        {},
    ),
    (
        "--substrate for a study that sets its own",
        "study nine-layer --scale smoke --out {tmp}/n --substrate binary",
        "unrecognized arguments: --substrate binary; see growlm study nine-layer --help",
        {},
    ),
]
# user-owned folders that no case may change: {user}, and two that look a little like growlm's
DECOYS = {
    "user": {"notes.txt": "precious"},
    "userstate": {"notes.txt": "mine", "state.json": '{"theme": "dark"}'},
    "dotfiles": {".draft.tmp": "my draft", ".backup.old": "my backup"},
}


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def world(module_tmp, corpus_inputs):
    from growlm.config import load_config, to_toml
    from growlm.model.folder import write_model
    from growlm.tokenizer import default_tokenizer
    from growlm.train.rundir import RunDir

    root = module_tmp("world")
    w = {
        "tmp": root,
        "user": root / "user",
        "afile": root / "afile",
        "latin1": root / "latin1.toml",
        "config": root / "tiny.toml",
        "text": root / "text.txt",
    }
    for name, files in DECOYS.items():
        w[name] = root / name
        w[name].mkdir()
        for file, text in files.items():
            (w[name] / file).write_text(text)
    w["empty"] = root / "empty.toml"
    w["empty"].write_text("")
    w["afile"].write_text("a file")
    w["latin1"].write_bytes('name = "café"\n'.encode("latin-1"))
    w["config"].write_text(TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()}))
    w["text"].write_text("Some text to prepare. " * 50)
    tok, meta = default_tokenizer(), {"substrate": {"kind": "visual", "sha256": "0" * 64}}
    for name, seed in (("model", 0), ("model2", 1)):
        w[name] = write_model(tiny_llama(seed), tok, root / name, meta)
    w["truncated"] = Path(shutil.copytree(w["model"], root / "truncated"))
    truncate(w["truncated"] / "model.safetensors")
    w["remote"] = Path(shutil.copytree(w["model"], root / "remote"))
    config = json.loads((w["remote"] / "config.json").read_text())
    (w["remote"] / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    w["badcomp"] = Path(shutil.copytree(w["model"], root / "badcomp"))
    (w["badcomp"] / "composition.json").write_text('{"format": "growlm-composition-v1", "exp')
    w["badtok"] = root / "badtok"
    tok.save(w["badtok"])
    truncate(w["badtok"] / "tokenizer.json")
    for name in ("ckpt", "damaged_ckpt"):
        w[name] = root / "run" / "checkpoints" / name
        w[name].mkdir(parents=True)
        (w[name] / "model.safetensors").write_bytes(b"not weights")
        (w[name] / "state.json").write_text(
            json.dumps({"stage": 0, "stage_step": 1, "global_step": 1, "sha256": {"model.safetensors": "0" * 64}})
        )
    w["noheader"] = root / "noheader"
    shutil.copytree(corpus_inputs["tokenizer"], w["noheader"] / "tokenizer")
    w["run"] = root / "run"
    w["tok"] = Path(shutil.copytree(corpus_inputs["tokenizer"], root / "tok"))
    w["victim"] = Path(shutil.copytree(w["model"], root / "victim"))
    w["negsize"] = Path(shutil.copytree(w["model"], root / "negsize"))
    (w["negsize"] / "config.json").write_text(json.dumps({**config, "num_hidden_layers": -3}))
    for name in ("ownshards", "short"):
        w[name] = Path(shutil.copytree(corpus_inputs["shards"], root / f"{name}_shards"))
        w[f"{name}_config"] = root / f"{name}.toml"
        w[f"{name}_config"].write_text(w["config"].read_text().replace(str(corpus_inputs["shards"]), str(w[name])))
    truncate(next(w["short"].glob("*.train.tokens.bin")))
    w["header"] = root / "header"
    w["header"].mkdir()
    (w["header"] / "config.resolved.toml").write_text(to_toml(load_config(w["config"])))
    w["locked"] = root / "locked"
    lock = RunDir(w["locked"]).acquire()
    yield w
    lock.close()


@pytest.mark.parametrize("situation, argv, fragment, env", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(world, situation, argv, fragment, env, monkeypatch, capsys):
    import growlm.faults

    monkeypatch.setattr(growlm.faults, "_HITS", {})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = [a.format(**world) for a in argv.split()]
    assert main(args) == 2
    said = [
        line[line.index("growlm ") :]
        for line in capsys.readouterr().err.splitlines()
        if "error:" in line and "growlm " in line
    ]
    assert len(said) == 1 and fragment in said[0], said
    assert said[0].startswith(f"growlm {args[0]}: error: ")
    for name, files in DECOYS.items():
        assert {p.name: p.read_text() for p in world[name].iterdir()} == files, f"{name} changed"


def render() -> str:
    rows = "".join(
        f"| {situation} | `{' '.join(f'{k}={v}' for k, v in env.items())}{' ' if env else ''}growlm "
        f"{argv.replace(chr(0xDCFF), '<byte 0xff>')}` | {fragment} |\n"
        for situation, argv, fragment, env in CASES
    )
    return (
        "# Error catalogue\n\n"
        "Bad input ends in one line on stderr, `growlm VERB: error: what, where, how to fix`, and exit status 2\n"
        "(3 when training diverges, 130 when interrupted). Each row is a case of `tests/test_errors.py`, which\n"
        "checks the message and writes this file (`GROWLM_REGENERATE_ERRORS=1 .venv/bin/python -m pytest\n"
        "tests/test_errors.py`). Placeholders: `{user}` a folder the user owns (no case may touch it), "
        "`{config}`\na tiny valid config, `{model}` an exported model, `{ckpt}` a checkpoint, `{locked}` a run "
        "another process\nwrites, the rest a file or folder damaged as the row says. "
        "`scripts/hostile_probe.py` runs a further 90 hostile\ncases (kills at every moment, hostile model "
        "folders, --force against the user's files) outside the test suite.\n\n"
        "| situation | command | the message says |\n|---|---|---|\n" + rows
    )


def test_catalogue_is_current():
    if os.environ.get("GROWLM_REGENERATE_ERRORS"):
        CATALOGUE.write_text(render(), encoding="utf-8")
    assert CATALOGUE.read_text(encoding="utf-8") == render(), "regenerate docs/ERRORS.md (see the module docstring)"


def test_a_full_disk_inside_safetensors_is_one_line(monkeypatch, capsys):
    from safetensors import SafetensorError

    import growlm.commands.substrate as substrate_command

    def full(args):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(substrate_command, "run_build", full)
    assert main(["substrate", "build", "--kind", "random", "--out", "x"]) == 2
    assert "no space left on the device" in capsys.readouterr().err
