import math

import numpy as np
import pytest
from scipy import stats

from growlm.study.growth_operators import matched_steps
from growlm.study.matched import (
    bands,
    compare_final,
    final_table,
    holm,
    loss_at,
    paired,
    val_curve,
)
from growlm.train.records import row_from_json

# A grown run: stage 1 ends at 10 FLOPs (loss 4.0), stage 2 starts there with the new blocks (loss 4.2).
GROWN = [(0.0, 10.0), (5.0, 6.0), (10.0, 4.0), (10.0, 4.2), (20.0, 3.0)]


def test_loss_at_interpolates_linearly_in_flops():
    assert loss_at(GROWN, 2.5) == pytest.approx(8.0)
    assert loss_at(GROWN, 15.0) == pytest.approx(3.6)
    assert loss_at(GROWN, 20.0) == 3.0
    assert loss_at(GROWN, 0.0) == 10.0


def test_a_budget_at_a_growth_step_reads_the_end_of_the_stage_that_bought_it():
    assert loss_at(GROWN, 10.0) == 4.0


def test_a_budget_the_run_never_reached_has_no_loss():
    assert loss_at(GROWN, 20.5) is None


def test_val_curve_keeps_validation_rows_in_logged_order():
    rows = [
        row_from_json(
            {"kind": "train", "stage": 1, "depth": 1, "step": 1, "stage_step": 1, "flops": 1, "loss": 9, "lr": 1}
        ),
        row_from_json({"kind": "val", "stage": 1, "depth": 1, "step": 1, "flops": 2, "val_loss": 5.0}),
        row_from_json(
            {"kind": "val", "stage": 2, "depth": 2, "step": 1, "flops": 2, "val_loss": 5.5, "at_stage_start": True}
        ),
    ]
    assert val_curve(rows) == [(2.0, 5.0), (2.0, 5.5)]


def test_paired_difference_is_the_paired_t_test():
    arm, ref = [3.1, 3.3, 2.9, 3.4, 3.0], [3.3, 3.35, 3.2, 3.5, 3.1]
    result = paired(arm, ref)
    diffs = np.subtract(arm, ref)
    assert result.mean == pytest.approx(diffs.mean())
    assert result.p == pytest.approx(stats.ttest_rel(arm, ref).pvalue)
    half = stats.t.ppf(0.975, 4) * diffs.std(ddof=1) / math.sqrt(5)
    assert (result.low, result.high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    assert result.n == 5


def test_one_seed_has_no_interval_and_no_p():
    result = paired([3.0], [3.5])
    assert result.mean == -0.5 and result.low is None and result.p is None


def test_final_table_shows_flops_ratio_loss_and_the_paired_difference():
    finals = {"mono": [(20.0, 4.0), (20.0, 5.0)], "grown": [(16.0, 3.0), (16.0, 4.5)]}
    table = final_table(compare_final(finals, "mono"), "t", "note.")
    assert table.rows[0][:2] == ["mono", "2.000e+01 (1.000x)"] and table.rows[0][3] is None
    assert table.rows[1][1] == "1.600e+01 (0.800x)" and table.rows[1][3].startswith("-0.750")
    assert table.note.endswith("note.")


def test_bands_average_seeds_on_a_common_grid():
    grid, mean, sd = bands([[(0.0, 4.0), (10.0, 2.0)], [(0.0, 6.0), (12.0, 0.0)]], points=3)
    assert grid == [0.0, 5.0, 10.0]
    assert mean == pytest.approx([5.0, 3.25, 1.5])
    assert sd[0] == pytest.approx(np.std([4.0, 6.0], ddof=1))


@pytest.mark.parametrize("per_token,final_phase", [([1.0, 1.1, 1.2], 0.0), ([1.0, 1.1, 1.2, 1.5], 0.2)])
def test_matched_steps_spend_the_target_flops_within_half_a_step(per_token, final_phase):
    target, unit = 1000.0 * 1.45, 10
    steps = matched_steps(per_token, target, unit, final_phase)
    spent = sum(s * unit * f for s, f in zip(steps, per_token))
    assert abs(spent - target) <= 0.5 * unit * per_token[-1]
    assert len(set(steps[:-1])) == 1  # equal tokens in the growth stages (the last stage absorbs the rounding)
    if final_phase:
        assert steps[-1] * unit * per_token[-1] == pytest.approx(final_phase * target, rel=0.1)


def test_holm_adjusts_step_down_and_keeps_the_order():
    from growlm.study.matched import holm

    # m = 4: 0.01 x 4, 0.02 x 3, 0.03 x 2 (raised to the running max), 0.5 x 1; None is not a test
    got = holm({"a": 0.02, "b": 0.01, "c": 0.5, "d": 0.03, "e": None})
    assert got == pytest.approx({"a": 0.06, "b": 0.04, "c": 0.5, "d": 0.06, "e": None})
    assert holm({"a": 0.9, "b": 0.8}) == {"a": 1.0, "b": 1.0}  # capped at 1


def test_compare_final_pairs_final_losses_and_records_what_each_run_spent():
    finals = {
        "mono": [(100.0, 4.0), (100.0, 4.2), (100.0, 4.1)],
        "a": [(101.0, 3.9), (101.0, 4.0), (101.0, 4.05)],
        "b": [(99.0, 4.3), (99.0, 4.2), (99.0, 4.4)],
    }
    c = compare_final(finals, "mono")
    assert c.losses["a"] == [3.9, 4.0, 4.05] and set(c.differences) == {"a", "b"}
    assert c.differences["a"] == paired([3.9, 4.0, 4.05], [4.0, 4.2, 4.1])
    assert c.flops_ratio("a") == pytest.approx(1.01) and c.flops_ratio("b") == pytest.approx(0.99)
    assert c.holm() == holm({"a": c.differences["a"].p, "b": c.differences["b"].p})
    assert c.to_json()["p_holm"] == c.holm()
