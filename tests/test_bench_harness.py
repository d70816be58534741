"""The benchmarks' verdict rule: a target holds when the sign-test interval of the median meets it."""

from __future__ import annotations

import pytest

from benchmarks.harness import median_interval, paired


def test_median_interval_is_the_sign_test_order_statistics():
    # n = 10: the 2nd and 9th smallest cover the median with 1 - 2 * P(B <= 1) = 97.9 %
    low, high, covered = median_interval([float(v) for v in (10, 3, 7, 1, 5, 9, 2, 8, 4, 6)])
    assert (low, high) == (2.0, 9.0)
    assert covered == pytest.approx(1 - 2 * 11 / 1024)


def test_one_stalled_run_does_not_decide_a_longest_batch_verdict():
    # Ten runs' longest batches, one of them stalled by the machine: the interval ends at the 9th.
    per_run = [111.0, 115.0, 121.0, 118.0, 237.0, 113.0, 119.0, 117.0, 116.0, 120.0]
    assert median_interval(per_run)[1] == 121.0
    assert max(per_run) == 237.0  # still reported


def test_paired_ratios_are_run_by_run_and_judged_by_the_same_interval():
    ours, base = [9.0, 8.0, 10.0, 9.5, 9.0], [10.0, 10.0, 10.0, 10.0, 10.0]
    result = paired(ours, base)
    assert result.ratios == [0.9, 0.8, 1.0, 0.95, 0.9]
    assert (result.low, result.high) == (0.8, 1.0)  # five pairs: min to max
    assert result.median == 0.9
