"""The fairness report's arithmetic (cityops.needs.fairness), without servers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cityops.needs.fairness import (
    calibration,
    fairness_report,
    subgroups,
)


def test_calibration_mean_gap_ece_and_too_few() -> None:
    c = calibration(np.array([0.05, 0.15, 0.15, 0.95]), np.array([0, 0, 1, 1]), min_n=30)
    assert c.n == 4 and c.too_few
    assert c.mean_predicted == pytest.approx(0.325) and c.observed == 0.5
    assert c.gap == pytest.approx(-0.175)
    # bins: 0.0-0.1 |0.05 - 0|, 0.1-0.2 |0.30 - 1| (two cases), 0.9-1.0 |0.95 - 1|; over 4
    assert c.ece == pytest.approx((0.05 + 0.7 + 0.05) / 4)
    assert not calibration(np.array([0.05, 0.15, 0.15, 0.95]), np.array([0, 0, 1, 1]),
                           min_n=4).too_few
    assert calibration(np.array([1.0, 1.0]), np.array([1, 1])).ece == 0  # 1.0: the last bin
    empty = calibration(np.array([]), np.array([]))
    assert empty.n == 0 and empty.too_few and math.isnan(empty.gap)


def test_report_shares_calibration_and_truth_per_group() -> None:
    groups = subgroups(["60-79", "<40", "<40", "80+", "60-79", "<40"],
                       ["F", "F", "F", "M", "M", "M"],
                       ["local", "non_local", "local", "local", "local", "local"],
                       [True, False, False, False, False, False])
    identified = np.array([1, 0, 0, 1, 1, 0], bool)
    decided = np.array([1, 1, 0, 1, 0, 0], bool)
    approved = np.array([1, 0, 0, 0, 0, 0], bool)
    prob = np.array([0.8, 0.2, 0.5, 0.4, 0.9, 0.1])
    truth = np.array([1, 1, 0, 0, 1, 0], bool)
    rows = fairness_report(groups, identified, decided, approved, prob, true_need=truth,
                           min_decided=2)
    by = {(r.attribute, r.group): r for r in rows}
    assert [(r.attribute, r.group) for r in rows] == [
        ("all", "all"), ("age band", "<40"), ("age band", "60-79"), ("age band", "80+"),
        ("sex", "F"), ("sex", "M"), ("hukou", "local"), ("hukou", "non_local"),
        ("disability", "yes"), ("disability", "no")]
    f, m = by["sex", "F"], by["sex", "M"]
    assert (f.n, f.identified, f.approved, f.decided, f.approved_of_decided) == (
        3, pytest.approx(1 / 3), pytest.approx(1 / 3), 2, 0.5)
    assert f.calibration is not None and not f.calibration.too_few
    # decided F: p 0.8 approved, p 0.2 declined -> mean 0.5 vs 0.5; bins |0.8-1| + |0.2-0|
    assert f.calibration.gap == pytest.approx(0) and f.calibration.ece == pytest.approx(0.2)
    assert m.calibration is not None and m.calibration.too_few and m.calibration.n == 1
    assert m.calibration.gap == pytest.approx(0.4) and m.approved_of_decided == 0.0
    assert f.truth is not None and m.truth is not None
    assert (f.truth.truly_needy, f.truth.recall_index, f.truth.recall_approved) == (
        pytest.approx(2 / 3), 0.5, 0.5)
    assert (m.truth.recall_index, m.truth.recall_approved) == (1.0, 0.0)
    assert m.truth.calibration is not None
    assert m.truth.calibration.mean_predicted == pytest.approx((0.4 + 0.9 + 0.1) / 3)
    assert m.truth.calibration.observed == pytest.approx(1 / 3)
    assert by["disability", "yes"].label == "a member with a disability"
    nobody = by["age band", "80+"]  # one household, none truly needy: no recall to speak of
    assert nobody.truth is not None and math.isnan(nobody.truth.recall_index)

    # calibrated only on households the model did not learn from; without a model, none
    held = fairness_report(groups, identified, decided, approved, prob,
                           calibrate_on=np.array([0, 1, 1, 1, 1, 1], bool), min_decided=2)
    assert held[0].calibration is not None and held[0].calibration.n == 2
    assert held[0].truth is None
    no_model = fairness_report(groups, identified, decided, approved,
                               np.full(6, np.nan))
    assert all(r.calibration is None for r in no_model)


def test_report_refuses_inconsistent_input() -> None:
    groups = {"sex": ["F", "M"]}
    ok = np.array([True, False])
    with pytest.raises(ValueError, match="approved but not decided"):
        fairness_report(groups, ok, np.array([False, False]), ok)
    with pytest.raises(ValueError, match="group sex"):
        fairness_report({"sex": ["F"]}, ok, ok, ok)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fairness_report(groups, ok, ok, ok, np.array([0.5, 1.5]))

