"""A composed (posterior) model through the shared evaluation and decoding paths."""

import pytest
import torch

from growlm.composition import ComposedModel
from growlm.decode import decode
from growlm.evals.harness import ChoiceRequest, score_choices
from test_composition_posterior import experts, mixture_token_lp, sample  # noqa: F401 (experts: a fixture)


def test_choice_scores_condition_the_posterior_on_the_shared_context(experts, tokenizer):
    """The harness runs the context once and scores each continuation against its (row-selected) cache."""
    model = ComposedModel(experts[:2], None, "posterior", 0.01).eval()
    context = "The fox. Съешь ещё"
    requests = [
        ChoiceRequest(context, (" one two", " three four five", " six")),
        ChoiceRequest(context + " more", (" seven eight", " nine")),
    ]
    scores = score_choices(model, tokenizer, requests, batch_tokens=32)
    for request, result in zip(requests, scores):
        for continuation, got in zip(request.continuations, result.loglikelihoods):
            ctx = tokenizer.encode(request.context, add_special_tokens=False)
            full = tokenizer.encode(request.context + continuation, add_special_tokens=False)
            assert len(full) <= 64, "within the window: no truncation"
            ids = torch.tensor([full])
            want = mixture_token_lp(model, ids)[0, len(ctx) - 1 :].sum().item()
            assert got == pytest.approx(want, abs=1e-3)


def test_greedy_decoding_through_the_shared_loop_matches_argmax_of_full_forwards(experts):
    model = ComposedModel(experts[:2], None, "posterior", 0.02).eval()
    prompt = sample(experts[1], 5, seed=70)[0].tolist()
    got = [t for _, t in decode(model, [prompt], [8], lambda logits, step: logits.argmax(-1), eos_id=-1)]
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(8):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert got == ids[len(prompt) :]
