"""The posterior composition mode: Bayesian model averaging over experts given the prefix, and fixed-share."""

import math
from types import SimpleNamespace

import pytest
import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from conftest import tiny_llama
from growlm.composition import ComposedModel
from growlm.composition.posterior import PosteriorCache
from growlm.errors import GrowlmError


@pytest.fixture(scope="module")
def experts():
    return [tiny_llama(1, layers=1), tiny_llama(2, layers=2), tiny_llama(3, layers=1)]


def sample(model, length, seed, prefix=None):
    """Tokens sampled from `model` (continuing `prefix`), so it explains them far better than another expert."""
    gen = torch.Generator().manual_seed(seed)
    ids = prefix if prefix is not None else torch.randint(0, 65536, (1, 1), generator=gen)
    with torch.no_grad():
        for _ in range(length):
            probs = model(input_ids=ids).logits[0, -1].softmax(-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=gen)[None]], dim=1)
    return ids


def expert_token_lp(model, ids):
    """Log-probabilities of ids[:, 1:] under one model (B x T), float64."""
    with torch.no_grad():
        lp = model(input_ids=ids[:, :-1]).logits.double().log_softmax(-1)
    return lp.gather(-1, ids[:, 1:, None])[..., 0]


def mixture_token_lp(model, ids):
    with torch.no_grad():
        lp = model(input_ids=ids[:, :-1]).logits.double()
    return lp.gather(-1, ids[:, 1:, None])[..., 0]


class Unigram(torch.nn.Module):
    """A context-free expert with a fixed next-token distribution (for closed-form checks)."""

    def __init__(self, probs):
        super().__init__()
        self.register_buffer("logits", torch.log(torch.tensor(probs, dtype=torch.float32)))
        self.config = SimpleNamespace(vocab_size=len(probs), max_position_embeddings=16, num_hidden_layers=0)

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache=False, logits_to_keep=0):
        logits = self.logits.expand(*input_ids.shape, -1)
        return CausalLMOutputWithPast(logits=logits[:, -logits_to_keep:] if logits_to_keep else logits, cache=None)


def test_one_expert_is_that_expert(experts):
    ids = sample(experts[0], 12, seed=0)
    for rate in (0.0, 0.05):
        model = ComposedModel(experts[:1], None, "posterior", rate)
        with torch.no_grad():
            got, want = model(input_ids=ids).logits, experts[0](input_ids=ids).logits.log_softmax(-1)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_identical_experts_equal_each(experts):
    ids = sample(experts[1], 12, seed=1)
    model = ComposedModel([experts[1], experts[1]], [0.3, 0.7], "posterior", 0.1)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        want = experts[1](input_ids=ids).logits.log_softmax(-1)
    torch.testing.assert_close(out.logits, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.cache.weights, torch.tensor([[0.3, 0.7]], dtype=torch.float64))


def test_closed_form_two_unigram_experts():
    a, b = Unigram([0.9, 0.1]), Unigram([0.2, 0.8])
    ids = torch.tensor([[0, 0, 1]])
    bma = ComposedModel([a, b], None, "posterior")(input_ids=ids).logits.exp()[0, :, 0].double()
    # Position 0: the prior; position 1: after token 0 (0.9 vs 0.2); position 2: after token 1 too (0.1 vs 0.8).
    w1 = 0.9 / 1.1
    w2 = 0.9 * 0.1 / (0.9 * 0.1 + 0.2 * 0.8)
    expected = [0.55, w1 * 0.9 + (1 - w1) * 0.2, w2 * 0.9 + (1 - w2) * 0.2]
    torch.testing.assert_close(bma, torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    alpha = 0.2
    shared = ComposedModel([a, b], None, "posterior", alpha)(input_ids=ids).logits.exp()[0, :, 0].double()
    v1 = (1 - alpha) * w1 + alpha / 2
    v2 = (1 - alpha) * (v1 * 0.1 / (v1 * 0.1 + (1 - v1) * 0.8)) + alpha / 2
    expected = [0.55, v1 * 0.9 + (1 - v1) * 0.2, v2 * 0.9 + (1 - v2) * 0.2]
    torch.testing.assert_close(shared, torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_weights_after_a_long_single_source_prefix_go_to_its_expert(experts):
    for k in range(3):
        ids = sample(experts[k], 40, seed=10 + k)
        with torch.no_grad():
            bma = ComposedModel(experts, None, "posterior")(input_ids=ids, use_cache=True).cache.weights[0]
            shared = ComposedModel(experts, None, "posterior", 0.01)(input_ids=ids, use_cache=True).cache.weights[0]
        assert bma[k] > 0.999, bma
        assert shared.argmax() == k and shared.min() >= 0.01 / 3 * 0.99, "fixed-share keeps a floor of rate / K"


@pytest.mark.parametrize("rate", [0.0, 0.02])
def test_cumulative_loss_is_within_the_bound_of_the_best_expert(experts, rate):
    """BMA: loss <= best expert's + log K on every sequence; fixed-share adds (T - 1) log(1 / (1 - rate)).

    With one expert far ahead the BMA bound is nearly tight, so the tolerance is float32 rounding only."""
    model = ComposedModel(experts, None, "posterior", rate)
    sequences = [sample(experts[k], 30, seed=20 + k) for k in range(3)]
    sequences.append(torch.randint(0, 65536, (1, 31), generator=torch.Generator().manual_seed(5)))
    for ids in sequences:
        mixture = -mixture_token_lp(model, ids).sum()
        best = min(-expert_token_lp(e, ids).sum() for e in experts)
        steps = ids.shape[1] - 1
        bound = math.log(3) + (steps - 1) * -math.log1p(-rate)
        assert mixture <= best + bound + 1e-4
        if rate == 0:  # the chain rule: the mixture's total is exactly -log sum_i prior_i exp(-loss_i)
            losses = torch.stack([-expert_token_lp(e, ids).sum() for e in experts])
            assert mixture.item() == pytest.approx(-torch.logsumexp(math.log(1 / 3) - losses, 0).item(), abs=1e-4)
        assert mixture > best - 5, "the bound is not met by a mixture that ignores the data"


def test_fixed_share_follows_the_expert_that_becomes_best_mid_sequence(experts):
    first = sample(experts[0], 30, seed=30)
    ids = sample(experts[1], 30, seed=31, prefix=first)  # the second half comes from expert 1
    per_expert = torch.stack([expert_token_lp(e, ids)[0] for e in experts[:2]])  # 2 x T
    steps = per_expert.shape[1]
    switch_paths = [-(per_expert[0, :s].sum() + per_expert[1, s:].sum()) for s in range(steps + 1)]
    best_path = min(switch_paths)
    rate = 0.05
    shared = -mixture_token_lp(ComposedModel(experts[:2], None, "posterior", rate), ids).sum()
    bma = -mixture_token_lp(ComposedModel(experts[:2], None, "posterior"), ids).sum()
    best_single = (-per_expert.sum(1)).min()
    assert bma >= best_single - 1e-4, "averaging over fixed experts never beats the best one"
    assert shared < bma
    # One switch: log K + log(K / rate) + (T - 2) log(1 / (1 - rate)).
    assert shared <= best_path + math.log(2) + math.log(2 / rate) + (steps - 2) * -math.log1p(-rate) + 1e-4
    assert shared < best_single - 10, "switching beats both experts by a wide margin here"


@pytest.mark.parametrize("rate", [0.0, 0.03])
def test_kv_cached_incremental_decoding_matches_one_full_forward(experts, rate):
    model = ComposedModel(experts, [0.2, 0.5, 0.3], "posterior", rate)
    ids = torch.cat([sample(experts[0], 9, seed=40), sample(experts[2], 9, seed=41)])  # two rows, two sources
    with torch.no_grad():
        full = model(input_ids=ids, use_cache=True)
        out = model(input_ids=ids[:, :4], use_cache=True)
        steps = [out.logits]
        for t in range(4, ids.shape[1]):
            out = model(input_ids=ids[:, t : t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits)
        alone = [model(input_ids=ids[r : r + 1], use_cache=True).cache.weights for r in range(2)]
    # Step-by-step, full-sequence and one-row forwards run float32 matmuls of different shapes, whose last bits
    # vary with shape, thread count and load; the posterior sums ~18 such log-probabilities. A real error (a token
    # counted twice, a row mixed into another) moves the weights by 1e-2 or more.
    torch.testing.assert_close(torch.cat(steps, 1), full.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.cache.weights, full.cache.weights, rtol=0, atol=1e-5)
    torch.testing.assert_close(full.cache.weights, torch.cat(alone), rtol=0, atol=1e-5)
    assert full.cache.weights[0].argmax() == 0 and full.cache.weights[1].argmax() == 2, "each row has its own"


def test_padded_positions_leave_the_posterior_alone(experts):
    model = ComposedModel(experts, None, "posterior", 0.05)
    ids = sample(experts[1], 10, seed=50)
    padded = torch.cat([ids, torch.zeros((1, 4), dtype=torch.long)], 1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros((1, 4), dtype=torch.long)], 1)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        pad = model(input_ids=padded, attention_mask=mask, use_cache=True)
        shifted = model(input_ids=padded, attention_mask=torch.ones_like(padded), use_cache=True)
    # The padded and plain forwards run float32 matmuls of different shapes, so the weights may differ in the last
    # bits (2.9e-9 seen under load); a padded position that updated the posterior moves them by ~0.9 ("shifted").
    torch.testing.assert_close(pad.logits[:, :11], plain.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(pad.cache.weights, plain.cache.weights, rtol=0, atol=1e-6)
    torch.testing.assert_close(pad.cache.pending, plain.cache.pending, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(shifted.cache.weights, plain.cache.weights, atol=1e-6), "unmasked zeros do update"


def test_posterior_cache_row_selection_repeats_rows(experts):
    model = ComposedModel(experts[:2], None, "posterior")
    ids = torch.cat([sample(experts[0], 6, seed=80), sample(experts[1], 6, seed=81)])
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).cache
    before = cache.weights.clone()
    assert isinstance(cache, PosteriorCache)
    cache.batch_select_indices(torch.tensor([1, 1, 0]))
    torch.testing.assert_close(cache.weights, before[[1, 1, 0]])
    assert cache.pending.shape == (3, 2, 65536) and cache.get_seq_length() == 7


def test_bad_switch_rates_and_modes_are_refused(experts):
    for rate in (-0.1, 1.0, float("nan")):
        with pytest.raises(GrowlmError, match="switch rate"):
            ComposedModel(experts[:2], None, "posterior", rate)
    with pytest.raises(GrowlmError, match="posterior mode only"):
        ComposedModel(experts[:2], None, "mean_logits", 0.1)


@pytest.mark.parametrize("mode", ["mean_logits", "mean_probs", "posterior"])
def test_chunked_vocabulary_passes_do_not_change_the_result(experts, monkeypatch, mode):
    from growlm.composition import posterior

    model = ComposedModel(experts[:2], [0.3, 0.7], mode)
    ids = torch.cat([sample(experts[0], 7, seed=90), sample(experts[1], 7, seed=91)])
    results = []
    for elements in (1, 3 * 65536, 1 << 40):  # one position per step, three, everything at once
        monkeypatch.setitem(posterior.CHUNK_ELEMENTS, "cpu", elements)
        with torch.no_grad():
            results.append(model(input_ids=ids).logits)
    # Chunking reorders float32 log-sum-exp reductions over the vocabulary (3.8e-6 seen on log-probabilities of
    # magnitude ~20); a chunk skipped or counted twice would move them by far more than 1e-4.
    torch.testing.assert_close(results[0], results[2], rtol=0, atol=1e-4)
    torch.testing.assert_close(results[1], results[2], rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "mode,rate", [("posterior", 0.0), ("posterior", 0.05), ("mean_probs", 0.0), ("mean_logits", 0.0)]
)
def test_target_scoring_equals_the_full_distribution_at_the_targets(experts, mode, rate):
    """token_logprobs (what the harness scores with) = log-softmax of forward's logits at the targets, for a
    fresh call and for padded rows continuing a row-selected cache."""
    model = ComposedModel(experts, [0.5, 0.2, 0.3], mode, rate).eval()
    ids = torch.cat([sample(experts[0], 12, seed=90), sample(experts[2], 12, seed=91)])
    with torch.no_grad():
        got, cache = model.token_logprobs(ids[:, :8], ids[:, 1:9], torch.ones_like(ids[:, :8]), use_cache=True)
        out = model(input_ids=ids[:, :8], attention_mask=torch.ones_like(ids[:, :8]), use_cache=True)
        want = out.logits.double().log_softmax(-1).gather(-1, ids[:, 1:9, None])[..., 0]
        torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-5)
        rows, more = torch.tensor([1, 0, 1]), ids[[1, 0, 1], 8:11]
        mask = torch.ones((3, 11), dtype=torch.long)
        mask[2, 9:] = 0  # the third row's continuation is one token long: the rest is padding
        got, _ = model.token_logprobs(more, ids[[1, 0, 1], 9:12], mask, _select(cache, rows), use_cache=True)
        logits = model(input_ids=more, attention_mask=mask, cache=_select(out.cache, rows), use_cache=True).logits
        want = logits.double().log_softmax(-1).gather(-1, ids[[1, 0, 1], 9:12, None])[..., 0]
    torch.testing.assert_close(got.double()[:2], want[:2], rtol=0, atol=2e-5)
    torch.testing.assert_close(got.double()[2, :1], want[2, :1], rtol=0, atol=2e-5)


def _select(cache, rows):
    if isinstance(cache, PosteriorCache):
        cache.batch_select_indices(rows)
        return cache
    for c in cache:
        c.batch_select_indices(rows)
    return cache
