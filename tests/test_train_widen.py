"""Training through a widening stage (growth.stages.K.widen, growlm.model.widen, growlm.train.slices).

The tiny config's second stage widens d_model 32 -> 64 (heads 2 -> 4, head size 16; MLP 128 -> 192) before it
stacks a new block. Frozen-slices arm (train_old_blocks false, operator random: the old region holds the old
weights bit for bit): block 1's old rows and columns stay bit-identical while its new ones, the new block and the
head train. Training arm (operator zero, nothing stacked): the widened model starts at the old validation loss
and its old weights move. Both export plain HF folders, resume mid-stage bit for bit, and train under FSDP x 2
as in one process.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import growlm.faults
from conftest import TINY_CONFIG
from growlm.cli import main
from growlm.model.widen import old_slices, widen
from growlm.train.metrics import read_metrics
from growlm.train.records import TrainRow

pytestmark = pytest.mark.slow

WIDE = "\n[growth.stages.widen]\nd_model = 64\nn_heads = 4\nd_ff = 192\n"
FROZEN = '\n[growth]\nwidth_init = "random"\n'
SEED_OF_STAGE_2 = 1  # Trainer.widened: train.seed x 1000 + stage index


def tiny_text(corpus_inputs, second_stage: str, growth: str = "") -> str:
    """TINY_CONFIG with its second stage given `second_stage` (TOML lines) and `growth` settings."""
    text = TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()})
    head, sep, tail = text.rpartition("[[growth.stages]]\nadd_blocks = 1\ntokens = 512\n")
    assert sep
    stage = sep.replace("add_blocks = 1\n", "") + second_stage + WIDE
    return head.replace("[[growth.stages]]", growth.strip() + "\n[[growth.stages]]", 1) + stage + tail


@pytest.fixture(scope="module")
def frozen_config(module_tmp, corpus_inputs) -> Path:
    path = module_tmp("widen-cfg") / "frozen.toml"
    path.write_text(tiny_text(corpus_inputs, "add_blocks = 1\n", FROZEN))
    return path


@pytest.fixture(scope="module")
def frozen_run(frozen_config, module_tmp) -> Path:
    run = module_tmp("widen-frozen") / "run"
    assert main(["grow", str(frozen_config), "--out", str(run), "--set", "train.precision='fp32'"]) == 0
    return run


@pytest.fixture(scope="module")
def training_run(module_tmp, corpus_inputs) -> Path:
    path = module_tmp("widen-cfg2") / "training.toml"
    path.write_text(tiny_text(corpus_inputs, "add_blocks = 0\ntrain_old_blocks = true\n"))
    run = module_tmp("widen-training") / "run"
    assert main(["grow", str(path), "--out", str(run), "--set", "train.precision='fp32'"]) == 0
    return run


def stage_tensors(run: Path, stage: int) -> dict[str, torch.Tensor]:
    return load_file(run / "stages" / str(stage) / "model" / "model.safetensors")


def widened_start(run: Path, operator: str):
    """The model stage 2 started from: stage 1's export widened as the trainer widens it."""
    from transformers import AutoModelForCausalLM

    small = AutoModelForCausalLM.from_pretrained(run / "stages/1/model", local_files_only=True)
    return small.config, widen(small, 64, 4, 192, operator, seed=SEED_OF_STAGE_2)


def test_frozen_old_slices_stay_bit_identical_while_the_rest_trains(frozen_run):
    old_config, start = widened_start(frozen_run, "random")
    regions = old_slices(old_config, start.config)
    small, wide = stage_tensors(frozen_run, 1), stage_tensors(frozen_run, 2)
    init = dict(start.named_parameters())
    block0 = [name for name in small if name.startswith("model.layers.0.")]
    assert len(block0) == 9
    for name in block0:
        assert torch.equal(wide[name][regions[name]], small[name]), f"{name}: an old slice changed"
        if name.endswith("input_layernorm.weight"):  # it reads the embedding's new channels: zero, no gradient
            continue
        assert not torch.equal(wide[name], init[name].detach()), f"{name}: its new rows/columns did not train"
    # the substrate: old columns bit-identical, new columns zero, never trained
    embedding = wide["model.embed_tokens.weight"]
    assert torch.equal(embedding[:, :32], small["model.embed_tokens.weight"]) and not embedding[:, 32:].any()
    # the head and the new block train whole
    assert not torch.equal(wide["lm_head.weight"][:, :32], small["lm_head.weight"])
    assert any(name.startswith("model.layers.1.") for name in wide)
    recorded = json.loads((frozen_run / "stages/2/frozen_hashes.json").read_text())
    assert {name for name in recorded if name.endswith("[old]")} == {f"{name}[old]" for name in block0}
    summary = json.loads((frozen_run / "stages/summary.json").read_text())
    assert [s["d_model"] for s in summary] == [32, 64]
    trained = sum(t.numel() for n, t in wide.items() if n != "model.embed_tokens.weight")
    assert summary[1]["trainable_params"] == trained - sum(small[n].numel() for n in block0)


def test_zero_widening_keeps_the_loss_and_trains_the_old_weights(training_run):
    summary = json.loads((training_run / "stages/summary.json").read_text())
    before, at_start = summary[0]["val_loss"], summary[1]["val_loss_at_start"]
    assert abs(at_start - before) < 1e-5 * before  # function-preserving: the same validation loss after widening
    assert summary[1]["val_loss"] < at_start
    small, wide = stage_tensors(training_run, 1), stage_tensors(training_run, 2)
    name = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(wide[name][:32, :128], small[name])  # old weights train in this arm


@pytest.mark.parametrize("run_name", ["frozen_run", "training_run"])
def test_widened_stage_exports_a_plain_llama_folder_with_growlms_logits(run_name, request):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    from growlm.train import checkpoint as ckpt

    run = request.getfixturevalue(run_name)
    folder = AutoModelForCausalLM.from_pretrained(
        run / "stages/2/model", local_files_only=True, trust_remote_code=False
    )
    assert type(folder) is LlamaForCausalLM and folder.config.hidden_size == 64
    last = ckpt.latest_checkpoint(run / "checkpoints")
    assert last.name.endswith("-stage-end")
    from growlm.train.rundir import RunDir

    trained, _ = ckpt.restore(RunDir(run).read_config(), last)
    ids = torch.randint(0, 65536, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(folder.eval()(ids).logits, trained.model.eval()(ids).logits)


def test_resume_in_the_middle_of_a_widened_stage_is_bit_identical(frozen_config, frozen_run, monkeypatch, tmp_path):
    run = tmp_path / "run"
    monkeypatch.setattr(growlm.faults, "_HITS", {})
    monkeypatch.setenv("GROWLM_FAULT", "step:7:interrupt")  # stage 2's third step, after its checkpoint at step 2
    assert main(["grow", str(frozen_config), "--out", str(run), "--set", "train.precision='fp32'"]) == 130
    assert not (run / "stages/2/model").exists()
    monkeypatch.delenv("GROWLM_FAULT")
    assert main(["grow", "--resume", "--out", str(run)]) == 0
    a, b = stage_tensors(frozen_run, 2), stage_tensors(run, 2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fsdp_over_two_processes_trains_a_widening_stage_as_one_process(frozen_config, frozen_run, tmp_path):
    out = tmp_path / "fsdp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m", "growlm"]
    command += ["grow", str(frozen_config), "--out", str(out), "--set", "train.precision='fp32'"]
    command += ["--set", "train.parallel='fsdp'", "--set", "train.threads=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    def losses(run):
        return {r.progress.step: r.loss for r in read_metrics(run / "metrics.jsonl") if isinstance(r, TrainRow)}

    one, two = losses(frozen_run), losses(out)
    assert one.keys() == two.keys() and len(one) == 8
    assert max(abs(one[s] - two[s]) for s in one) < 1e-5
    # each process masked its own shard: the old slices are the run's own stage-1 weights, bit for bit (not the
    # one-process run's: stage 1 reduced its gradients in another order)
    hashes = [json.loads((r / "stages/2/frozen_hashes.json").read_text()) for r in (frozen_run, out)]
    assert hashes[0].keys() == hashes[1].keys()
    old_config, start = widened_start(out, "random")
    regions = old_slices(old_config, start.config)
    small, wide = stage_tensors(out, 1), stage_tensors(out, 2)
    block0 = [name for name in small if name.startswith("model.layers.0.")]
    assert all(torch.equal(wide[name][regions[name]], small[name]) for name in block0)


@pytest.mark.parametrize(
    "stage,growth,said",
    [
        ("add_blocks = 1\n", "", None),  # the control: a valid widening
        ("add_blocks = 1\nlora = true\n", "", "drop lora and old_blocks_lr_scale"),
        ("add_blocks = 1\n", '[growth]\nwidth_init = "copy"\n', None),
        ("add_blocks = 1\n", '[growth]\nwidth_init = "net2net"\n', "growth.width_init must be one of zero, copy"),
    ],
)
def test_widening_configs_are_checked_when_loaded(corpus_inputs, tmp_path, stage, growth, said, capsys):
    from growlm.config import load_config
    from growlm.errors import GrowlmError

    path = tmp_path / "c.toml"
    path.write_text(tiny_text(corpus_inputs, stage, growth))
    if said is None:
        assert [m.d_model for m in load_config(path).stage_models()] == [32, 64]
        return
    with pytest.raises(GrowlmError) as caught:
        load_config(path)
    assert said in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides,said",
    [
        (["growth.stages.0.widen.d_model=64"], "growth.stages.0.widen must be unset"),
        (["growth.stages.1.widen.d_model=16"], "growth.stages.1.widen: widening cannot shrink"),
        (["growth.stages.1.widen.d_model=40"], "d_model 40 must be n_heads x head size"),
        (["growth.width_init='copy'", "growth.stages.1.widen.d_model=48"], "whole multiples of 32"),
    ],
)
def test_bad_widening_is_one_line_and_exit_2(tiny_config, tmp_path, overrides, said, capsys):
    args = ["grow", str(tiny_config()), "--out", str(tmp_path / "run")]
    for assignment in overrides:
        args += ["--set", assignment]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
    assert not (tmp_path / "run").exists()


def test_plan_shows_the_widening_stage(frozen_config, capsys):
    assert main(["plan", str(frozen_config)]) == 0
    out = capsys.readouterr().out
    assert "widened to 64" in out and "d_model" in out
