"""growlm.train.memory: a run that cannot fit is refused, with the numbers, before anything is allocated."""

import pytest

from growlm.cli import main
from growlm.config import load_config
from growlm.errors import GrowlmError
from growlm.train import memory
from growlm.train.dist import Dist


def test_estimate_grows_with_width_depth_and_batch():
    small = memory.estimate(load_config(None, ["model.d_model=64", "model.n_heads=2"]))
    wide = memory.estimate(load_config(None, ["model.d_model=128", "model.n_heads=2"]))
    deep = memory.estimate(load_config(None, ["model.d_model=64", "model.n_heads=2", "growth.stages.0.add_blocks=4"]))
    batch = memory.estimate(load_config(None, ["model.d_model=64", "model.n_heads=2", "train.batch_size=64"]))
    assert small.total < wide.total and small.total < deep.total and small.activations < batch.activations
    # 16384 wide, 8 blocks: about 26 billion parameters, 16 bytes each with AdamW
    huge = memory.estimate(load_config(None, ["model.d_model=16384", "growth.stages.0.add_blocks=8"]))
    assert huge.params > 25e9 and huge.total > 16 * 25e9


def test_check_fits_refuses_with_the_numbers(monkeypatch):
    cfg = load_config(None, ["model.d_model=64", "model.n_heads=2"])
    monkeypatch.setattr(memory, "available_bytes", lambda device: (1 << 20, "available RAM"))
    with pytest.raises(GrowlmError, match=r"needs about .* GiB .* only 0.0 GiB is available RAM.*`check_memory`"):
        memory.check_fits(cfg, Dist())
    monkeypatch.setattr(memory, "available_bytes", lambda device: (1 << 40, "available RAM"))
    memory.check_fits(cfg, Dist())


def test_sharding_divides_weights_and_optimizer_not_activations():
    cfg = load_config(None, ["model.d_model=1024", "model.n_heads=8", "growth.stages.0.add_blocks=8"])
    replica, shard = memory.estimate(cfg, 8), memory.estimate(cfg, 8, sharded=True)
    assert shard.optimizer * 8 == replica.optimizer and shard.activations == replica.activations
    wider = memory.estimate(cfg, 64, sharded=True)
    gathered = shard.weights - replica.weights // 8  # the LM head with its gradient and two blocks, whole
    assert 0 < gathered < replica.weights and wider.weights - replica.weights // 64 == gathered
    assert wider.total < shard.total < replica.total


def test_auto_parallel_shards_only_what_does_not_fit(monkeypatch):
    from growlm.train.parallel import choose

    cfg = load_config(None, ["model.d_model=64", "model.n_heads=2"])
    two = Dist(0, 2)
    monkeypatch.setattr(Dist, "from_main", lambda self, obj: obj)  # one process stands for rank 0
    assert choose(cfg, Dist())[0] == "single"
    monkeypatch.setattr(memory, "available_bytes", lambda device: (1 << 40, "available RAM"))
    assert choose(cfg, two)[0] == "ddp"
    monkeypatch.setattr(memory, "available_bytes", lambda device: (1 << 20, "available RAM"))
    mode, why = choose(cfg, two)
    assert mode == "fsdp" and "does not fit" in why
    assert choose(load_config(None, ["model.d_model=64", "model.n_heads=2", "train.parallel='ddp'"]), two)[0] == "ddp"
    with pytest.raises(GrowlmError, match="shard the model: train.parallel = 'fsdp'"):
        memory.check_fits(cfg, two)


def test_available_memory_is_read():
    free, where = memory.available_bytes(Dist().device)
    assert free is None or free > 0


def test_grow_refuses_a_model_far_too_large_at_once(tiny_config, tmp_path, capsys):
    cfg = tiny_config()
    out = tmp_path / "run"
    assert (
        main(
            [
                "grow",
                str(cfg),
                "--out",
                str(out),
                "--set",
                "model.d_model=16384",
                "--set",
                "growth.stages.0.add_blocks=64",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "GiB" in err and "--ignore-memory-check" in err and len(err.strip().splitlines()) == 1
    assert not out.exists(), "refused before the run directory was made"


def test_ignore_memory_check_trains_anyway(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: (1 << 20, "available RAM"))
    cfg = tiny_config()
    assert main(["grow", str(cfg), "--out", str(tmp_path / "a"), "--set", "growth.stages.1.tokens=128"]) == 2
    assert (
        main(
            [
                "grow",
                str(cfg),
                "--out",
                str(tmp_path / "b"),
                "--set",
                "growth.stages.1.tokens=128",
                "--ignore-memory-check",
            ]
        )
        == 0
    )
