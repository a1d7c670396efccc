"""The learned needs model: a secondary signal beside the Alkire-Foster index.

What it learns from. Past caseworker decisions: ``approved`` or ``visited_helped`` = 1,
``declined`` = 0. Households that were never decided (never applied, or still waiting for a
visit) are NOT negatives: they are left out of training altogether (``labels_from_decisions``).

What it cannot know. Past decisions show who was SERVED, not who was IN NEED: people who never
applied (in the synthetic district, far more often non-local hukou and elderly people living
alone) are missing, and caseworkers decided mostly by income. The model therefore learns the
caseworkers' view of applicants; ``evaluate`` measures it against the decisions AND against a
hidden true need where the simulation has one, and the model never decides alone: where index and
model disagree strongly, ``second_look`` sends the case to people.

Features. Only the 0/1 deprivation indicators (the 22 default ones, in their fixed order). No
protected attribute (sex, ethnicity, hukou, age / age band) may be a feature: ``check_features``
refuses such a column name, and ``train`` calls it.

Monotone. ``HistGradientBoostingClassifier(monotonic_cst=[1] * n)``: one more deprivation never
lowers the raw score, and isotonic calibration (a non-decreasing map, averaged over the
cross-validation folds) keeps that order, so one more deprivation never lowers the probability.

Calibrated. ``CalibratedClassifierCV(method="isotonic", cv=StratifiedKFold(3, shuffle, seed))``:
each fold's boosted model is calibrated on the fold it did not see (scikit-learn 1.9 has no
``cv="prefit"``; a prefit model would go through ``sklearn.frozen.FrozenEstimator``).

Pure: arrays in, probabilities and figures out; deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

POSITIVE_DECISIONS = ("approved", "visited_helped")
NEGATIVE_DECISIONS = ("declined",)
# Substrings of a column name that mark a protected attribute (compared in lower case).
PROTECTED_TOKENS = ("sex", "gender", "ethnic", "hukou", "age_band", "ageband", "birth",
                    "nationality", "religion", "race")
PROTECTED_NAMES = frozenset({"age", "head_age", "origin", "minority", "local", "non_local"})


class ProtectedFeatureError(ValueError):
    """A protected attribute was offered as a feature."""


def check_features(feature_names: Sequence[str]) -> None:
    """Refuse any column that names a protected attribute (sex, ethnicity, hukou, age band)."""
    bad = [name for name in feature_names
           if name.lower() in PROTECTED_NAMES
           or any(tok in name.lower() for tok in PROTECTED_TOKENS)]
    if bad:
        raise ProtectedFeatureError(
            f"protected attribute(s) may not be model features: {', '.join(bad)}")
    if len(set(feature_names)) != len(feature_names):
        raise ValueError("duplicate feature names")


def labels_from_decisions(decisions: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per household, its (latest) past decision or None. Returns (decided mask, label):
    approved / visited_helped = 1, declined = 0; anything else (never decided, visit
    scheduled) is not decided and must not be used as a negative."""
    d = np.asarray([x if x is not None else "" for x in decisions], dtype=object)
    pos = np.isin(d, POSITIVE_DECISIONS)
    neg = np.isin(d, NEGATIVE_DECISIONS)
    return pos | neg, pos.astype(np.int8)


@dataclass
class NeedsModel:
    """A trained, calibrated, monotone model over named 0/1 features."""

    feature_names: tuple[str, ...]
    seed: int
    method: str
    estimator: CalibratedClassifierCV = field(repr=False)
    n_train: int = 0
    base_rate: float = 0.0

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of a positive decision per row (1-D, in [0, 1])."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} columns, got shape {X.shape}")
        return np.clip(self.estimator.predict_proba(X.astype(np.float64))[:, 1], 0.0, 1.0)


def train(X: np.ndarray, y: np.ndarray, feature_names: Sequence[str], seed: int = 0,
          method: str = "isotonic", cv: int = 3, max_iter: int = 150,
          learning_rate: float = 0.1, max_leaf_nodes: int = 15) -> NeedsModel:
    """Train on decided households only (``y``: 1 approved / helped, 0 declined).

    ``X`` holds 0/1 deprivation indicators (monotone increasing constraint on every column).
    """
    names = tuple(feature_names)
    check_features(names)
    X = np.asarray(X)
    y = np.asarray(y).astype(np.int8)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X has shape {X.shape}, expected {len(names)} columns")
    if len(y) != len(X):
        raise ValueError("X and y differ in length")
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise ValueError("y must be 0/1 with both classes present")
    if not np.isin(X, (0, 1)).all():
        raise ValueError("features must be 0/1 deprivation indicators")
    if method not in ("isotonic", "sigmoid"):
        raise ValueError("method must be 'isotonic' or 'sigmoid'")
    base = HistGradientBoostingClassifier(
        monotonic_cst=[1] * len(names), max_iter=max_iter, learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes, min_samples_leaf=20, l2_regularization=1.0,
        early_stopping=False, random_state=seed)
    # isotonic is non-decreasing, so monotonicity survives calibration; a fitted sigmoid's
    # slope could in principle turn the order round, hence isotonic by default
    model = CalibratedClassifierCV(
        base, method=method, cv=StratifiedKFold(cv, shuffle=True, random_state=seed))
    model.fit(X.astype(np.float64), y)
    return NeedsModel(feature_names=names, seed=seed, method=method, estimator=model,
                      n_train=len(y), base_rate=float(y.mean()))


def calibration_table(prob: np.ndarray, outcome: np.ndarray, bins: int = 10
                      ) -> list[dict[str, float]]:
    """Equal-width bins of predicted probability: count, mean predicted, observed rate."""
    prob = np.asarray(prob, np.float64)
    outcome = np.asarray(outcome, np.float64)
    idx = np.minimum((prob * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": n,
                    "mean_predicted": float(prob[m].mean()) if n else float("nan"),
                    "observed": float(outcome[m].mean()) if n else float("nan")})
    return out


def _auc(outcome: np.ndarray, prob: np.ndarray) -> float:
    return float(roc_auc_score(outcome, prob)) if len(np.unique(outcome)) == 2 else float("nan")


def against(prob: np.ndarray, outcome: np.ndarray, top_n: int | None = None) -> dict[str, Any]:
    """AUC, Brier score, the base-rate Brier score, a 10-bin calibration table, and the recall
    and precision of the top-N by probability (N = number of positives unless given)."""
    prob = np.asarray(prob, np.float64)
    outcome = np.asarray(outcome).astype(np.int8)
    n_pos = int(outcome.sum())
    n = n_pos if top_n is None else int(top_n)
    # stable order: ties keep row order, so the figure is deterministic
    top = np.argsort(-prob, kind="stable")[:n]
    hit = int(outcome[top].sum())
    rate = float(outcome.mean()) if len(outcome) else float("nan")
    return {
        "n": len(outcome), "positives": n_pos, "rate": rate,
        "auc": _auc(outcome, prob),
        "brier": float(brier_score_loss(outcome, prob)) if len(outcome) else float("nan"),
        "brier_base_rate": float(rate * (1 - rate)),
        "mean_predicted": float(prob.mean()) if len(prob) else float("nan"),
        "top_n": n, "recall_top_n": hit / n_pos if n_pos else float("nan"),
        "precision_top_n": hit / n if n else float("nan"),
        "calibration": calibration_table(prob, outcome),
    }


def evaluate(model: NeedsModel, X_test: np.ndarray, y_test: np.ndarray,
             true_need_test: np.ndarray | None = None, X_all: np.ndarray | None = None,
             true_need_all: np.ndarray | None = None, top_n: int | None = None
             ) -> dict[str, Any]:
    """Held-out evaluation. ``decisions``: against the past decisions of the held-out decided
    households. Because past decisions show who was served, not who was in need, also
    ``true_need_test`` (the hidden true need of the same households) and ``true_need_all``
    (against the hidden true need of ``X_all``: every household, decided or not, that was not
    used for training), with the recall of the truly needy among the top-N."""
    p = model.predict_proba(X_test)
    out: dict[str, Any] = {"decisions": against(p, y_test)}
    if true_need_test is not None:
        out["true_need_test"] = against(p, true_need_test)
    if X_all is not None and true_need_all is not None:
        out["true_need_all"] = against(model.predict_proba(X_all), true_need_all, top_n)
    return out


@dataclass(frozen=True)
class SecondLook:
    """Strong disagreements between the index and the model, per household."""

    index_only: np.ndarray   # identified by the index, model probability < low
    model_only: np.ndarray   # not identified, model probability > high

    @property
    def flag(self) -> np.ndarray:
        return self.index_only | self.model_only

    @property
    def share(self) -> float:
        return float(self.flag.mean()) if len(self.flag) else 0.0

    def reason(self, i: int) -> str | None:
        if self.index_only[i]:
            return "identified by the index, but the model gives a low probability"
        if self.model_only[i]:
            return "not identified by the index, but the model gives a high probability"
        return None


def second_look(index_identified: np.ndarray, model_prob: np.ndarray, high: float = 0.7,
                low: float = 0.2) -> SecondLook:
    """Flag strong disagreements for a person to look at: identified by the index but model
    probability < ``low``, or not identified but probability > ``high``. Neither score decides
    alone."""
    ident = np.asarray(index_identified, bool)
    prob = np.asarray(model_prob, np.float64)
    if ident.shape != prob.shape or ident.ndim != 1:
        raise ValueError("index_identified and model_prob must be 1-D of the same length")
    if not 0.0 <= low < high <= 1.0:
        raise ValueError("need 0 <= low < high <= 1")
    if np.isnan(prob).any():
        raise ValueError("model_prob has NaN")
    return SecondLook(index_only=ident & (prob < low), model_only=~ident & (prob > high))
