import math

import pytest
import torch

from growlm.errors import GrowlmError
from growlm.evals.decoding import SeededSampler, generate
from growlm.evals.harness import encode

PROMPTS = ["Q: the cat\nA:", "Q: red dog\nA:", "Q: a big mat\nA:", "Q: кот\nA:", "Q: 猫 sat\nA:", "Q: far\nA:"]


def test_greedy_generation_matches_a_loop_without_cache(model, tokenizer):
    prompt = "Q: the cat\nA:"
    got = generate(model, tokenizer, [prompt], 6, stop=None)[0]
    ids = encode(tokenizer, prompt)
    with torch.no_grad():
        for _ in range(6):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert got.text == tokenizer.decode(ids[-6:]) and got.new_tokens == 6


def test_generation_stops_at_the_stop_string(model, tokenizer):
    prompt = "Q: red dog\nA:"
    first = generate(model, tokenizer, [prompt], 3, stop=None)[0].text[0]
    stopped = generate(model, tokenizer, [prompt], 3, stop=first)[0]
    assert stopped.text == "" and stopped.new_tokens == 1


def test_generation_does_not_depend_on_batching(model, tokenizer):
    prompts = PROMPTS * 2
    for sampler in (None, SeededSampler(seed=7)):
        kwargs = {"sampler": sampler} if sampler else {}
        batched = generate(model, tokenizer, prompts, 5, stop=None, **kwargs)
        single = generate(model, tokenizer, prompts, 5, stop=None, max_batch=1, **kwargs)
        assert [g.text for g in batched] == [g.text for g in single]


def test_seeded_sampling_follows_the_softmax():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    draws = [int(SeededSampler(seed=s)(logits, [0], 0)) for s in range(2000)]
    assert abs(sum(draws) / len(draws) - 0.75) < 0.03


def test_per_prompt_caps_and_window_checks(model, tokenizer):
    outputs = generate(model, tokenizer, PROMPTS[:3], [1, 3, 0], stop=None)
    assert [g.new_tokens for g in outputs] == [1, 3, 0]
    long = generate(model, tokenizer, ["x" * 100], 4, stop=None)[0]
    assert long.truncated_tokens == 100 - (64 - 4)
    with pytest.raises(GrowlmError, match="no room for a prompt"):
        generate(model, tokenizer, PROMPTS[:1], 64)
