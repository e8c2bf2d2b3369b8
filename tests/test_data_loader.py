import numpy as np
import pytest
import torch

from growlm.data.loader import TokenWindows
from growlm.data.prepare import prepare
from growlm.data.shards import ShardSet
from growlm.errors import GrowlmError
from growlm.tokenizer import build_tokenizer, default_tokenizer


@pytest.fixture(scope="module")
def shards(module_tmp):
    """Two sources in disjoint alphabets (Latin lowercase, Cyrillic) of very different sizes."""
    root = module_tmp("loader")
    rng = np.random.default_rng(0)
    for name, alphabet, n_docs in (("latin", "abcdefghij", 200), ("cyrillic", "абвгдежзий", 40)):
        folder = root / name
        folder.mkdir()
        for i in range(n_docs):
            text = "".join(rng.choice(list(alphabet), size=int(rng.integers(50, 400))))
            (folder / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    tok = default_tokenizer()
    plain = prepare([(str(root / "latin"), None), (str(root / "cyrillic"), None)], tok, root / "plain", progress=False)
    mixed = prepare([(str(root / "latin"), 0.3), (str(root / "cyrillic"), 0.7)], tok, root / "mixed", progress=False)
    return plain, mixed


def test_batches_are_deterministic_across_a_simulated_resume(shards):
    plain, _ = shards
    first = TokenWindows(plain, "train", seq_len=32, batch_size=4, seed=7)
    run = [first.batch(step) for step in range(10)]
    resumed = TokenWindows(plain, "train", seq_len=32, batch_size=4, seed=7)
    assert all(torch.equal(run[s], resumed.batch(s)) for s in range(5, 10))
    assert run[0].shape == (4, 33) and run[0].dtype == torch.long
    assert not torch.equal(run[0], run[1])
    other_seed = TokenWindows(plain, "train", seq_len=32, batch_size=4, seed=8)
    assert not torch.equal(run[3], other_seed.batch(3))


def test_ranks_take_disjoint_slices_of_the_global_batch(shards):
    plain, _ = shards
    whole = TokenWindows(plain, seq_len=16, batch_size=12, seed=1).batch(5)
    parts = [TokenWindows(plain, seq_len=16, batch_size=4, seed=1, rank=r, world_size=3).batch(5) for r in range(3)]
    assert torch.equal(torch.cat(parts), whole)
    with pytest.raises(GrowlmError, match="rank 3"):
        TokenWindows(plain, seq_len=16, batch_size=4, rank=3, world_size=3)


def test_windows_are_contiguous_slices_of_a_shard(shards):
    plain, _ = shards
    loader = TokenWindows(plain, seq_len=20, batch_size=8, seed=2)
    flat = [np.asarray(part.tokens) for part in ShardSet(plain).splits("train")]
    for row in loader.batch(0).numpy():
        assert any(np.any(np.all(np.lib.stride_tricks.sliding_window_view(f, row.size) == row, axis=1)) for f in flat)


def test_validation_batches_are_fixed(shards):
    plain, _ = shards
    a = TokenWindows(plain, "val", seq_len=16, batch_size=4, seed=0).val_batches(3)
    b = TokenWindows(plain, "val", seq_len=16, batch_size=4, seed=99).val_batches(3)
    assert len(a) == 3 and all(torch.equal(x, y) for x, y in zip(a, b))
    val_tokens = TokenWindows(plain, "val", seq_len=16, batch_size=4).num_tokens
    train_tokens = TokenWindows(plain, "train", seq_len=16, batch_size=4).num_tokens
    assert 0 < val_tokens < train_tokens / 5


def _cyrillic_share(loader, steps):
    tokens = torch.cat([loader.batch(s).flatten() for s in range(steps)])
    return ((tokens >= ord("а")) & (tokens <= ord("я"))).sum().item() / tokens.numel()


def test_mixture_weights_are_honoured(shards):
    plain, mixed = shards
    natural = TokenWindows(plain, seq_len=64, batch_size=16, seed=0)
    share = natural.manifest["sources"][1]["weight"]
    assert share < 0.25  # the Cyrillic source is the small one
    assert _cyrillic_share(natural, 60) == pytest.approx(share, abs=0.04)
    weighted = TokenWindows(mixed, seq_len=64, batch_size=16, seed=0)
    assert weighted.weights == pytest.approx(
        {weighted.manifest["sources"][0]["name"]: 0.3, weighted.manifest["sources"][1]["name"]: 0.7}
    )
    assert _cyrillic_share(weighted, 60) == pytest.approx(0.7, abs=0.04)


def test_shards_made_with_another_tokenizer_are_refused(shards):
    plain, _ = shards
    other = build_tokenizer(["abab abab abab"] * 5, 3)
    with pytest.raises(GrowlmError, match="made with tokenizer"):
        TokenWindows(plain, seq_len=16, batch_size=2, tokenizer=other)
    assert (
        TokenWindows(plain, seq_len=16, batch_size=2, tokenizer=default_tokenizer()).tokenizer_sha256
        == default_tokenizer().sha256
    )


def test_windows_longer_than_a_source_are_refused(shards):
    plain, _ = shards
    with pytest.raises(GrowlmError, match="fewer than one window"):
        TokenWindows(plain, seq_len=10**7, batch_size=2)


def test_a_reweighted_stage_draws_only_the_sources_it_names(shards):
    plain, _ = shards
    windows = TokenWindows(plain, seq_len=64, batch_size=16, seed=0)
    latin, cyrillic = (s["name"] for s in windows.manifest["sources"])
    only = windows.reweighted({cyrillic: 1.0}, "growth.stages.1.data")
    assert only.weights == {latin: 0.0, cyrillic: 1.0} and _cyrillic_share(only, 20) == pytest.approx(1.0, abs=0.01)
    assert _cyrillic_share(windows.reweighted({latin: 0.9, cyrillic: 0.1}, "x"), 60) == pytest.approx(0.1, abs=0.04)
    assert torch.equal(
        windows.reweighted({latin: 3, cyrillic: 0}, "x").batch(5), windows.reweighted({latin: 1}, "x").batch(5)
    )
    assert windows.weights[cyrillic] < 0.25  # the original is left as it was
    with pytest.raises(GrowlmError, match=r"growth.stages.1.data: source 'greek' is not in the run's data"):
        windows.reweighted({"greek": 1.0}, "growth.stages.1.data")
