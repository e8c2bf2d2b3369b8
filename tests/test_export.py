import json

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from growlm.cli import main


def test_export_checkpoints_of_a_lora_run(tiny_config, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "grow",
                str(tiny_config()),
                "--out",
                str(run),
                "--set",
                "growth.stages.1.lora=true",
                "--set",
                "growth.budget_factor=1.05",
            ]
        )
        == 0
    )
    summary = json.loads((run / "stages" / "summary.json").read_text())
    assert summary[1]["lora_rank"] > 0
    assert summary[1]["trainable_params"] <= 1.05 * summary[0]["trainable_params"]

    ckpts = sorted((run / "checkpoints").iterdir())
    mid = next(
        p
        for p in ckpts
        if p.is_dir()
        and json.loads((p / "state.json").read_text())["stage"] == 1
        and not json.loads((p / "state.json").read_text())["stage_complete"]
    )
    from torch.distributed.checkpoint import FileSystemReader

    saved = FileSystemReader(mid / "shards").read_metadata().state_dict_metadata  # a sharded mid-stage checkpoint
    assert any(k.startswith("model.") and "lora" in k for k in saved) and any(k.startswith("optimizer.") for k in saved)
    out = tmp_path / "mid"
    assert main(["export", str(mid), "--out", str(out)]) == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2
    assert not any("lora" in k for k in load_file(out / "model.safetensors"))
    assert torch.isfinite(model(torch.tensor([[72, 105]])).logits).all()

    end = next(p for p in ckpts if p.name.endswith("stage-end") and "00000008" in p.name)
    assert main(["export", str(end), "--out", str(tmp_path / "end")]) == 0
    a, b = (
        load_file(tmp_path / "end" / "model.safetensors"),
        load_file(run / "stages" / "2" / "model" / "model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in b)  # exact: the same tensors written twice, no arithmetic
    assert main(["export", str(end), "--out", str(tmp_path / "end")]) == 2  # exists, no --force
