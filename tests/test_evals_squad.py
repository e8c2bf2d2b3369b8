import pytest

from growlm.evals.squad import exact_match, f1, gold_answers, normalize_answer


def test_normalisation_follows_the_official_script():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"


@pytest.mark.parametrize(
    "gold,pred,em,f",
    [
        ("Denver Broncos", "the denver broncos.", 1.0, 1.0),
        ("Denver Broncos", "Broncos", 0.0, 2 * (1 * 0.5) / 1.5),
        ("the cat sat", "cat sat down", 0.0, 0.8),  # precision 2/3, recall 1
        ("Saint Bernadette Soubirous", "Paris", 0.0, 0.0),
    ],
)
def test_exact_match_and_f1_on_known_strings(gold, pred, em, f):
    assert exact_match(gold, pred) == em
    assert f1(gold, pred) == pytest.approx(f)


def test_squad_v2_no_answer_needs_an_empty_prediction():
    golds = gold_answers([])
    assert golds == [""]
    assert exact_match(golds[0], "") == 1.0 and f1(golds[0], "") == 1.0
    assert exact_match(golds[0], "Paris") == 0.0 and f1(golds[0], "Paris") == 0.0
    # answers that normalise to nothing do not count as gold answers
    assert gold_answers(["the", "Paris"]) == ["Paris"]


def test_prompts_that_do_not_fit_before_the_cap_are_skipped_not_cut(model, tokenizer):
    from growlm.evals.squad import fitting_outputs

    window = model.config.max_position_embeddings
    prompts = ["Q: short?\nA:", "word " * window + "\nA:", "Q: also short?\nA:"]
    seen = []
    outputs = fitting_outputs("t", model, tokenizer, prompts, 16, lambda ps, caps: seen.extend(ps) or list(ps))
    assert seen == [prompts[0], prompts[2]] and outputs == [prompts[0], None, prompts[2]]
