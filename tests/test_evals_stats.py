import numpy as np
import pytest

from growlm.evals.choice import McItem, accuracy_scores, item_record
from growlm.evals.harness import ChoiceScores
from growlm.evals.settings import EvalSettings
from growlm.evals.stats import bootstrap_ci, mean_ci


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_items():
    rng = np.random.default_rng(0)
    small = (rng.random(100) < 0.6).astype(float)
    large = (rng.random(2000) < 0.6).astype(float)
    (p_small, ci_small), (p_large, ci_large) = mean_ci(small), mean_ci(large)
    assert ci_small[0] <= p_small <= ci_small[1]
    assert ci_large[0] <= p_large <= ci_large[1]
    assert ci_large[1] - ci_large[0] < 0.5 * (ci_small[1] - ci_small[0])
    # the normal-approximation width for a proportion, as a sanity check of scale
    assert abs((ci_large[1] - ci_large[0]) - 2 * 1.96 * np.sqrt(0.6 * 0.4 / 2000)) < 0.01


def test_bootstrap_is_reproducible_and_the_seed_matters():
    values = (np.arange(50) % 3 == 0).astype(float)
    assert mean_ci(values, seed=5) == mean_ci(values, seed=5)
    assert mean_ci(values, seed=5)[1] != mean_ci(values, seed=6)[1]


def test_ratio_metrics_resample_items_not_tokens():
    # two items: nll 10 over 10 tokens and nll 30 over 10 tokens; the pooled loss is 2.0
    stats = np.array([[10.0, 10.0], [30.0, 10.0]])
    low, high = bootstrap_ci(stats, lambda s: s[0] / s[1])
    assert low == 1.0 and high == 3.0  # a resample is both items of one kind at the extremes


def test_acc_norm_divides_by_characters_of_the_choice_as_lm_eval_0_4_does():
    # lm-eval's process_results: ll / len(choice), the choice without the " " target delimiter, in characters.
    # "жж" is 2 characters (4 UTF-8 bytes); "abcd" is 4 characters.
    item = McItem("x", "Q:", (" жж", " abcd"), gold=1)
    record = item_record(item, ChoiceScores((-5.0, -8.0), (3, 5), (2, 2), (0, 0)))
    assert record["chars"] == [2, 4]
    assert record["pred"] == 0  # -5 > -8
    assert record["pred_norm"] == 1  # -8/4 = -2.0 > -5/2 = -2.5; by bytes of " жж" (5) it would be -1.0 > -1.6
    assert record["correct_norm"] and not record["correct"]


def test_majority_baseline_and_skipped_items_are_reported():
    items = [McItem(str(k), "Q:", (" yes", " no"), gold=k % 3 != 0) for k in range(6)]  # gold: 0 1 1 0 1 1
    scored = [ChoiceScores((-1.0, -2.0), (2, 2), (2, 2), (0, 1 if k == 1 else 0)) for k in range(5)]
    records = [item_record(it, s) for it, s in zip(items, [*scored, None])]
    (acc,) = accuracy_scores("t", records, [2] * 6, ("acc",), "validation", 0, "harness", EvalSettings())
    assert (acc.n, acc.skipped) == (5, 1) and records[5]["skipped"]
    assert acc.value == pytest.approx(2 / 5)  # always picks " yes" (index 0): right on items 0 and 3
    assert acc.majority == pytest.approx(3 / 5) and acc.truncated == pytest.approx(1 / 5)
