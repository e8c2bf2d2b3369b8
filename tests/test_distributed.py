import subprocess
import sys

from safetensors.torch import load_file


def test_two_processes_match_one_with_the_same_global_batch(tiny_config, tmp_path):
    cfg = str(tiny_config())
    common = ["--set", "train.precision='fp32'", "--set", "train.threads=1"]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(
        [sys.executable, "-m", "growlm", "grow", cfg, "--out", str(one), *common], check=True, capture_output=True
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            "-m",
            "growlm",
            "grow",
            cfg,
            "--out",
            str(two),
            *common,
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    a = load_file(one / "stages" / "2" / "model" / "model.safetensors")
    b = load_file(two / "stages" / "2" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, f"largest weight difference {worst}"
    changed = max(
        (a[k] - load_file(one / "stages" / "1" / "model" / "model.safetensors")[k]).abs().max().item()
        for k in a
        if k.startswith("lm_head")
    )
    assert changed > 1e-3, "training moved the weights far more than the two runs differ"
