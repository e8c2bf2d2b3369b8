import random

import pytest
import torch

from conftest import tiny_llama
from growlm.composition import ComposedModel
from growlm.evals.harness import (
    ChoiceRequest,
    encode,
    encode_pair,
    rolling_windows,
    score_choices,
    sequence_loglikelihoods,
)

WORDS = "the cat sat on a mat dog ran far away big small red blue кот 猫".split()


def requests(n: int, seed: int = 0) -> list[ChoiceRequest]:
    rng = random.Random(seed)

    def words(lo, hi):
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    # Few distinct context lengths, so that equal-length contexts really share forward passes.
    return [
        ChoiceRequest(f"Q: {words(2, 3)}\nA:", tuple(f" {words(1, 4)}" for _ in range(rng.randint(2, 4))))
        for _ in range(n)
    ]


def by_hand(model, tokenizer, request: ChoiceRequest, keep: int | None = None) -> list[float]:
    """Sum of log p(continuation token | everything before it), one full forward pass per continuation."""
    out = []
    for cont in request.continuations:
        ctx, cont_ids = encode_pair(tokenizer, request.context, cont)
        ctx = ctx[-keep:] if keep else ctx
        with torch.no_grad():
            logprobs = model(input_ids=torch.tensor([ctx + cont_ids])).logits[0].log_softmax(-1)
        out.append(sum(logprobs[len(ctx) - 1 + t, tok].item() for t, tok in enumerate(cont_ids)))
    return out


def test_loglikelihood_equals_a_hand_computation(model, tokenizer):
    for request in requests(6, seed=1):
        got = score_choices(model, tokenizer, [request])[0].loglikelihoods
        assert got == pytest.approx(by_hand(model, tokenizer, request), abs=1e-4)


def test_encode_pair_moves_the_context_trailing_space_into_the_continuation(tokenizer):
    ctx, cont = encode_pair(tokenizer, "Answer: ", "Paris")
    assert ctx == encode(tokenizer, "Answer:")
    assert cont == encode(tokenizer, " Paris")


def test_batched_and_unbatched_scoring_agree(model, tokenizer):
    reqs = requests(24, seed=2)
    calls = {"n": 0}

    def counting(**kwargs):
        calls["n"] += 1
        return model(**kwargs)

    counting.config, counting.device = model.config, model.device
    batched = score_choices(counting, tokenizer, reqs, batch_tokens=4096)
    batched_calls, calls["n"] = calls["n"], 0
    single = score_choices(counting, tokenizer, reqs, batch_tokens=1, max_batch=1)
    assert batched_calls < calls["n"]  # batching really happened
    for a, b in zip(batched, single):
        # Equal up to float rounding: BLAS picks kernels by matrix shape, so bitwise equality across batch sizes
        # is not guaranteed; a padding or position mistake would show as differences of order 0.1-10.
        assert a.loglikelihoods == pytest.approx(b.loglikelihoods, abs=1e-4)
        assert max(range(len(a.loglikelihoods)), key=a.loglikelihoods.__getitem__) == max(
            range(len(b.loglikelihoods)), key=b.loglikelihoods.__getitem__
        )


def lm_eval_window(model, tokenizer, context: str, continuation: str) -> float:
    """lm-evaluation-harness 0.4's HFLM._loglikelihood_tokens, written out: the last window + 1 tokens of
    context + continuation minus the last one, logits -> log_softmax, the continuation's log-probabilities summed."""
    window = model.config.max_position_embeddings
    ctx, cont = encode_pair(tokenizer, context, continuation)
    inp = (ctx + cont)[-(window + 1) :][:-1]
    with torch.no_grad():
        logprobs = model(input_ids=torch.tensor([inp])).logits[0].log_softmax(-1)
    rows = logprobs[len(inp) - len(cont) :]
    return sum(rows[t, tok].item() for t, tok in enumerate(cont))


def test_each_choice_is_cut_to_fit_the_window_on_its_own(model, tokenizer):
    window = model.config.max_position_embeddings
    short, long = " a", " " + " ".join(["bcd"] * 5)  # about one token per character
    request = ChoiceRequest("word " * 40 + "end:", (short, long, " x y"))
    scored = score_choices(model, tokenizer, [request])[0]
    ctx = encode_pair(tokenizer, request.context, short)[0]
    assert all(scored.truncated_tokens) and scored.truncated
    # every choice sees as much context as fits beside it, not as much as fits beside the longest choice
    for seen, cut, tokens in zip(scored.context_tokens, scored.truncated_tokens, scored.continuation_tokens):
        assert seen + tokens - 1 == window and seen + cut == len(ctx)
    assert len(set(scored.context_tokens)) == 3
    expected = [lm_eval_window(model, tokenizer, request.context, c) for c in request.continuations]
    assert scored.loglikelihoods == pytest.approx(expected, abs=1e-4)


def test_per_choice_windows_match_a_direct_computation_in_a_batch(model, tokenizer):
    rng = random.Random(5)
    reqs = [
        ChoiceRequest(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 16))) + ":",
            tuple(" " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))) for _ in range(3)),
        )
        for _ in range(10)
    ]
    got = score_choices(model, tokenizer, reqs, batch_tokens=512)
    assert any(s.truncated for s in got) and not all(s.truncated for s in got)
    for request, scored in zip(reqs, got):
        expected = [lm_eval_window(model, tokenizer, request.context, c) for c in request.continuations]
        assert scored.loglikelihoods == pytest.approx(expected, abs=1e-4)


def test_an_answer_longer_than_the_window_skips_the_item_not_the_task(model, tokenizer):
    too_long = ChoiceRequest("Q:", (" a", " " + " ".join(["bcd"] * 80)))
    fine = ChoiceRequest("Q:", (" a", " b"))
    skipped, scored = score_choices(model, tokenizer, [too_long, fine])
    assert skipped is None and scored is not None and not scored.truncated


def test_a_composed_model_scores_through_its_per_expert_caches(tokenizer):
    composed = ComposedModel([tiny_llama(1, layers=1), tiny_llama(2, layers=2)], [1, 1], "mean_logits")
    reqs = requests(8, seed=3)
    got = score_choices(composed, tokenizer, reqs)
    for request, scored in zip(reqs, got):
        assert scored.loglikelihoods == pytest.approx(by_hand(composed, tokenizer, request), abs=1e-4)


def test_rolling_windows_predict_every_token_once(model, tokenizer):
    tokens = encode(tokenizer, "a b c d e f g h i j " * 12)  # longer than the 64-token window
    windows = rolling_windows(tokens, prefix=tokenizer.eos_token_id, window=64)
    assert sum(len(w) - 1 for w in windows) == len(tokens)
    assert max(len(w) for w in windows) == 65
    short = encode(tokenizer, "the cat sat")
    total = sequence_loglikelihoods(model, rolling_windows(short, tokenizer.eos_token_id, 64))
    with torch.no_grad():
        logprobs = model(input_ids=torch.tensor([[tokenizer.eos_token_id, *short]])).logits[0].log_softmax(-1)
    assert total[0] == pytest.approx(sum(logprobs[i, t].item() for i, t in enumerate(short)), abs=1e-4)
