"""The benchmarks' verdict rule: a target holds when the sign-test interval of the median meets it."""

from __future__ import annotations

import pytest

from benchmarks.harness import judge, median_interval, paired, verdict_word


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


@pytest.mark.parametrize(
    ("low", "high", "rule", "verdict"),
    [
        (0.86, 0.95, {"at_least": 0.85}, True),
        (0.82, 0.95, {"at_least": 0.85}, None),  # the interval crosses the line: undecided
        (0.70, 0.84, {"at_least": 0.85}, False),
        (1.05, 1.12, {"at_most": 1.15}, True),
        (1.11, 1.19, {"at_most": 1.15}, None),
        (1.16, 1.19, {"at_most": 1.15}, False),
        (0.85, 0.85, {"at_least": 0.85}, True),  # on the line is within it
    ],
)
def test_a_verdict_is_yes_no_or_undecided_by_where_the_interval_lies(low, high, rule, verdict):
    assert judge(low, high, **rule) is verdict
    assert verdict_word(verdict) == {True: "yes", False: "no", None: "undecided"}[verdict]


def test_a_verdict_needs_exactly_one_direction():
    with pytest.raises(ValueError):
        judge(0.8, 0.9)
    with pytest.raises(ValueError):
        judge(0.8, 0.9, at_least=0.5, at_most=1.0)


def test_the_readme_table_marks_a_failed_target_and_an_undecided_one_apart():
    from benchmarks.report import markdown

    row = {"unit": "s", "ours": {"min": 1.0, "median": 1.1, "max": 1.2}, "ratio": 1.1, "target": "t"}
    row["baseline"] = {"min": 1.0, "median": 1.0, "max": 1.0}
    verdicts = (("a", True), ("b", False), ("c", None))
    rows = [{**row, "name": name, "baseline_name": "b", "holds": holds} for name, holds in verdicts]
    data = {
        "date": "d",
        "machine": {"cpus": 2, "platform": "p", "python": "3"},
        "quick": False,
        "versions": {"postgresql": "18", "sqlalchemy": "2", "alembic": "1"},
        "benchmarks": rows,
    }
    table = markdown(data).splitlines()[-3:]
    assert [line.rsplit("|", 2)[1].strip() for line in table] == ["yes", "**no**", "undecided"]
