"""The learned needs model (models/needs_model.py): no database, small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from models.needs_model import (
    ProtectedFeatureError,
    check_features,
    evaluate,
    labels_from_decisions,
    second_look,
    train,
)

D = 8
NAMES = [f"ind_{j}" for j in range(D)]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    p = 1 / (1 + np.exp(-(-2.0 + 0.8 * z[:, None] + rng.normal(0, 0.5, (1, D)))))
    X = (rng.random((n, D)) < p).astype(np.int8)
    logit = -2.0 + 1.2 * X[:, 0] + 0.8 * X[:, 1] + 0.4 * X[:, 2:].sum(axis=1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    need = (z + 0.5 * rng.standard_normal(n)) > 1.3
    return X, y, need


@pytest.fixture(scope="module")
def fitted():
    X, y, need = _data(4000, 1)
    model = train(X[:3000], y[:3000], NAMES, seed=7)
    return model, X, y, need


@pytest.mark.parametrize("name", ["head_sex", "sex", "ethnicity", "hukou", "head_age_band",
                                  "age_band", "Hukou_local", "age"])
def test_refuses_protected_features(name):
    with pytest.raises(ProtectedFeatureError):
        check_features([*NAMES, name])
    X, y, _ = _data(200, 2)
    with pytest.raises(ProtectedFeatureError):
        train(np.c_[X, X[:, :1]], y, [*NAMES, name])


def test_indicator_names_are_accepted():
    from cityops.needs.data import INDICATORS

    check_features(INDICATORS)


def test_labels_never_count_undecided_as_negative():
    decided, y = labels_from_decisions(
        ["approved", "declined", None, "visit_scheduled", "visited_helped"])
    assert decided.tolist() == [True, True, False, False, True]
    assert y[decided].tolist() == [1, 0, 1]


def test_monotone_flip_each_zero_to_one(fitted):
    model, X, _, _ = fitted
    rng = np.random.default_rng(3)
    rows = X[rng.choice(len(X), 300, replace=False)]
    base = model.predict_proba(rows)
    for j in range(D):
        flipped = rows.copy()
        flipped[:, j] = 1
        after = model.predict_proba(flipped)
        was_zero = rows[:, j] == 0
        assert (after[was_zero] >= base[was_zero] - 1e-12).all(), j


def test_calibrated_and_better_than_base_rate(fitted):
    model, X, y, need = fitted
    ev = evaluate(model, X[3000:], y[3000:], need[3000:], X_all=X[3000:],
                  true_need_all=need[3000:])
    p = model.predict_proba(X[3000:])
    assert ((p >= 0) & (p <= 1)).all()
    dec = ev["decisions"]
    assert dec["brier"] < dec["brier_base_rate"]
    assert dec["auc"] > 0.65
    assert len(dec["calibration"]) == 10
    assert sum(b["n"] for b in dec["calibration"]) == 1000
    assert abs(dec["mean_predicted"] - dec["rate"]) < 0.05
    assert 0 <= ev["true_need_all"]["recall_top_n"] <= 1
    assert ev["true_need_test"]["n"] == 1000


def test_second_look():
    ident = np.array([True, True, False, False, True, False])
    prob = np.array([0.1, 0.5, 0.9, 0.5, 0.2, 0.7])
    s = second_look(ident, prob, high=0.7, low=0.2)
    assert s.index_only.tolist() == [True, False, False, False, False, False]
    assert s.model_only.tolist() == [False, False, True, False, False, False]
    assert s.flag.sum() == 2 and s.share == pytest.approx(2 / 6)
    assert s.reason(0) and s.reason(2) and s.reason(1) is None
    with pytest.raises(ValueError):
        second_look(ident, prob, high=0.2, low=0.7)
    with pytest.raises(ValueError):
        second_look(ident[:3], prob)


def test_deterministic_with_a_seed():
    X, y, _ = _data(1500, 4)
    a = train(X, y, NAMES, seed=11).predict_proba(X)
    b = train(X, y, NAMES, seed=11).predict_proba(X)
    assert np.array_equal(a, b)


def test_refuses_non_binary_or_one_class():
    X, y, _ = _data(300, 5)
    with pytest.raises(ValueError):
        train(X * 2, y, NAMES)
    with pytest.raises(ValueError):
        train(X, np.zeros_like(y), NAMES)
