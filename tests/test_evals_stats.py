import numpy as np

from growlm.evals.choice import McItem, item_record
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


def test_acc_norm_divides_by_utf8_bytes_not_characters():
    # " жж" is 3 characters but 5 bytes; " ab" is 3 characters and 3 bytes.
    item = McItem("x", "Q:", (" жж", " ab"), gold=0)
    record = item_record(item, (-5.0, -4.0), (3, 3), 2, 0)
    assert record["bytes"] == [5, 3]
    assert record["pred"] == 1  # -4 > -5
    assert record["pred_norm"] == 0  # -5/5 = -1.0 > -4/3; per character it would be -5/3 < -4/3
    assert record["correct_norm"] and not record["correct"]
