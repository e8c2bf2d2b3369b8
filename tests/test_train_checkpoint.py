"""growlm.train.checkpoint: save -> restore gives the model as it was being trained, damage is detected."""

import json

import pytest
import torch

from growlm.config import validate_config
from growlm.errors import GrowlmError
from growlm.model.llama import build_model
from growlm.train import checkpoint as ckpt
from growlm.train.plan import Plan
from growlm.train.records import CheckpointState, Progress
from growlm.train.stage import prepare

CFG = validate_config(
    {
        "model": {"d_model": 32, "n_heads": 2, "context": 16},
        "growth": {"stages": [{"add_blocks": 2}, {"add_blocks": 1, "lora": True}], "budget_factor": 1.2},
    }
)


def trained_lora_stage():
    torch.manual_seed(0)
    prepared = prepare(Plan(CFG), build_model(CFG.model, 3, None), 1)
    with torch.no_grad():
        for p in prepared.model.parameters():
            p.add_(torch.randn_like(p))  # adapters are zero-initialised on one side: make every tensor count
    return prepared


@pytest.mark.parametrize("complete", [False, True])
def test_restore_rebuilds_the_model_as_it_was_trained(tmp_path, complete):
    prepared = trained_lora_stage()
    model = prepared.model.merge_and_unload() if complete else prepared.model
    state = CheckpointState(1, 3, complete, Progress(7, 7 * 64, 1.5e9))
    path = ckpt.save_checkpoint(tmp_path, model.state_dict(), None, state, keep=2)
    assert ckpt.read_state(path) == state and (tmp_path / "latest").read_text().strip() == path.name
    restored, read = ckpt.restore(CFG, path)
    assert read == state and restored.rank == (0 if complete else prepared.rank)
    a, b = model.state_dict(), restored.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # exact: the same tensors, saved


def test_damage_is_found_and_the_newest_intact_one_is_used(tmp_path, capsys):
    model = build_model(CFG.model, 2, None)
    first = ckpt.save_checkpoint(tmp_path, model.state_dict(), None, CheckpointState(0, 1, False, Progress(1)), keep=5)
    second = ckpt.save_checkpoint(tmp_path, model.state_dict(), None, CheckpointState(0, 2, False, Progress(2)), keep=5)
    (second / "model.safetensors").write_bytes(b"torn")
    assert "does not match" in ckpt.damage(second) and ckpt.damage(first) is None
    assert ckpt.latest_checkpoint(tmp_path) == first and "damaged" in capsys.readouterr().err
    (first / ckpt.STATE_FILE).write_text(json.dumps({"stage": 0}))
    with pytest.raises(GrowlmError, match="no intact checkpoint"):
        ckpt.latest_checkpoint(tmp_path)


def test_only_the_newest_are_kept(tmp_path):
    model = build_model(CFG.model, 1, None)
    for step in range(1, 5):
        ckpt.save_checkpoint(
            tmp_path, model.state_dict(), None, CheckpointState(0, step, False, Progress(step)), keep=2
        )
    assert [p.name for p in ckpt.checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]


def adam(prepared, steps: int):
    from growlm.train.step import LossModel

    loss_model = LossModel(prepared.model, prepared.no_grad_blocks, 64, False)
    opt = torch.optim.AdamW([p for p in prepared.model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(steps):
        loss_model(torch.randint(0, 65536, (2, 9), generator=torch.Generator().manual_seed(0))).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return loss_model, opt


def test_optimizer_state_of_an_older_checkpoint_is_translated_to_names(tmp_path):
    """Checkpoints before growlm.train.parallel kept AdamW's state by position; it loads as the same state."""
    from growlm.train.dist import Dist
    from growlm.train.parallel import Parallel

    loss_model, opt = adam(trained_lora_stage(), steps=1)
    path = ckpt.save_checkpoint(tmp_path, {}, None, CheckpointState(1, 1, False, Progress(1)), keep=2)
    torch.save(opt.state_dict(), path / "optimizer.pt")  # the old format: state keyed 0, 1, 2...
    by_name = ckpt.load_optimizer_state(path, loss_model, opt)
    assert all(isinstance(k, str) and k.startswith("lm.") for k in by_name["state"])
    other_model, fresh = adam(trained_lora_stage(), steps=0)  # as a resumed stage's new optimizer
    parallel = Parallel("single", Dist(), False)
    parallel.load_optimizer_state(other_model, fresh, by_name)
    a, b = opt.state_dict()["state"], fresh.state_dict()["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[i][key], b[i][key]) for i in a for key in a[i])
    again = parallel.optimizer_state(other_model, fresh)
    assert again["state"].keys() == by_name["state"].keys()
