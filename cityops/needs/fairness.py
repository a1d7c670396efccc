"""Fairness of the needs scoring by subgroup (docs/needs.md, "Fairness").

For each protected attribute (the head's age band, the head's sex, local / non-local hukou,
a member with a disability) and each of its groups: the households, the share identified by the
index, the share approved in past decisions (of all households and of those decided), and the
model's calibration: mean predicted probability against the observed approval rate among the
decided, their gap and the expected calibration error (ECE) over probability bins. A group with
fewer than ``MIN_DECIDED`` decided households is flagged "too few to judge". Where the
simulation's hidden true need is given (benches only, never a page), also the share truly in
need, the recall of the index and of past approvals, and the calibration against the true need.

Definitions. *Approved* = the household's latest decision is ``approved`` or ``visited_helped``
(served); *decided* = approved or ``declined`` (the model's labels; never decided or a visit
still scheduled is neither). *Disability* = the profile's indicator ``disability`` ("a member
with a disability", cityops/data/needs_indicators.toml), not the household type.

Protected attributes are never a feature or a cutoff of the scoring: they are read here only.
``fairness_report`` is pure (arrays in, figures out); ``load_fairness`` is the one SQL read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import tuple_row

from cityops.needs.indicators import IndicatorSet, load_indicator_set
from cityops.platform.database import Database
from cityops.platform.users import audit

MIN_DECIDED = 30  # fewer decided households in a group: its calibration is too few to judge
BINS = 10         # equal-width probability bins of the expected calibration error
DISABILITY_INDICATOR = "disability"
# the model's labels (models.needs_model.labels_from_decisions; cityops may not import models/)
SERVED, DECLINED = ("approved", "visited_helped"), ("declined",)
# attribute -> its groups in display order: (value, label)
ATTRIBUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "age band": (("<40", "head under 40"), ("40-59", "head 40-59"), ("60-79", "head 60-79"),
                 ("80+", "head 80 or over")),
    "sex": (("F", "female head"), ("M", "male head")),
    "hukou": (("local", "local hukou"), ("non_local", "non-local hukou")),
    "disability": (("yes", "a member with a disability"),
                   ("no", "no member with a disability")),
}


@dataclass(frozen=True)
class Calibration:
    """Mean predicted probability against the observed rate of an outcome over ``n`` cases."""

    n: int
    mean_predicted: float
    observed: float
    ece: float        # expected calibration error over equal-width probability bins
    too_few: bool     # n below the minimum: not enough to judge

    @property
    def gap(self) -> float:
        """Mean predicted minus observed (positive: the model overstates)."""
        return self.mean_predicted - self.observed


@dataclass(frozen=True)
class TruthFigures:
    """Against the simulation's hidden true need (benches only, never shown on a page)."""

    truly_needy: float          # share of the group truly in need
    recall_index: float         # share of the truly needy identified by the index
    recall_approved: float      # share of the truly needy approved in past decisions
    calibration: Calibration | None  # model probability against true need


@dataclass(frozen=True)
class SubgroupFigures:
    """One group of one attribute (attribute ``all``: every household)."""

    attribute: str
    group: str
    label: str
    n: int
    identified: float           # share identified by the index
    approved: float             # share approved (latest decision approved / visited_helped)
    decided: int                # households with a decision (approved or declined)
    approved_of_decided: float
    calibration: Calibration | None  # None: no model probabilities
    truth: TruthFigures | None = None


def calibration(prob: np.ndarray, outcome: np.ndarray, bins: int = BINS,
                min_n: int = MIN_DECIDED) -> Calibration:
    """Mean predicted vs observed, and ECE = sum over bins of (bin share) x |mean predicted -
    observed| in the bin, with ``bins`` equal-width bins of [0, 1] (1.0 falls in the last)."""
    p = np.asarray(prob, np.float64)
    o = np.asarray(outcome, np.float64)
    n = len(p)
    if n == 0:
        return Calibration(0, float("nan"), float("nan"), float("nan"), True)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    # per bin, n_b/n * |sum_p/n_b - sum_o/n_b| = |sum_p - sum_o| / n
    diff = np.bincount(idx, weights=p, minlength=bins) - np.bincount(idx, weights=o,
                                                                     minlength=bins)
    return Calibration(n, float(p.mean()), float(o.mean()), float(np.abs(diff).sum() / n),
                       n < min_n)


def _share(mask: np.ndarray, of: np.ndarray) -> float:
    k = int(of.sum())
    return float((mask & of).sum() / k) if k else float("nan")


def _groups_in_order(attribute: str, values: np.ndarray) -> list[tuple[str, str]]:
    present = set(values.tolist())
    known = [(v, label) for v, label in ATTRIBUTES.get(attribute, ()) if v in present]
    others = sorted(present - {v for v, _ in known})
    return known + [(v, v) for v in others]


def fairness_report(groups: Mapping[str, Sequence[str] | np.ndarray], identified: np.ndarray,
                    decided: np.ndarray, approved: np.ndarray,
                    probability: np.ndarray | None = None, true_need: np.ndarray | None = None,
                    calibrate_on: np.ndarray | None = None, bins: int = BINS,
                    min_decided: int = MIN_DECIDED) -> list[SubgroupFigures]:
    """Figures for every household (attribute ``all``) and each group of each attribute.

    ``groups``: attribute -> one value per household (``subgroups`` builds them); ``decided`` and
    ``approved`` (a subset of decided) are the past decisions' labels; ``probability`` the model's
    (NaN: none for that household); ``calibrate_on`` limits the calibration to households the
    model did not learn from (default: all); ``true_need`` the simulation's hidden truth, if any.
    """
    ident = np.asarray(identified, bool)
    dec = np.asarray(decided, bool)
    appr = np.asarray(approved, bool)
    n = len(ident)
    prob = (np.full(n, np.nan) if probability is None
            else np.asarray(probability, np.float64))
    held = np.ones(n, bool) if calibrate_on is None else np.asarray(calibrate_on, bool)
    truth = None if true_need is None else np.asarray(true_need, bool)
    columns = {"decided": dec, "approved": appr, "probability": prob, "calibrate_on": held,
               **({"true_need": truth} if truth is not None else {}),
               **{f"group {a}": np.asarray(v) for a, v in groups.items()}}
    for name, column in columns.items():
        if column.shape != (n,):
            raise ValueError(f"{name} has shape {column.shape}, expected ({n},)")
    if (appr & ~dec).any():
        raise ValueError("a household is approved but not decided")
    if ((prob < 0) | (prob > 1)).any():
        raise ValueError("probabilities must lie in [0, 1] (NaN: no model)")
    has_prob = ~np.isnan(prob) & held
    rows = [_figures("all", "all", "all households", np.ones(n, bool), ident, dec, appr, prob,
                     has_prob, truth, bins, min_decided)]
    for attribute, raw in groups.items():
        values = np.asarray(raw, object)
        for value, label in _groups_in_order(attribute, values):
            rows.append(_figures(attribute, value, label, values == value, ident, dec, appr,
                                 prob, has_prob, truth, bins, min_decided))
    return rows


def _figures(attribute: str, group: str, label: str, g: np.ndarray, ident: np.ndarray,
             dec: np.ndarray, appr: np.ndarray, prob: np.ndarray, has_prob: np.ndarray,
             truth: np.ndarray | None, bins: int, min_decided: int) -> SubgroupFigures:
    cal = None
    if has_prob.any():
        m = g & dec & has_prob
        cal = calibration(prob[m], appr[m], bins, min_decided)
    truth_figures = None
    if truth is not None:
        needy = g & truth
        truth_cal = (calibration(prob[g & has_prob], truth[g & has_prob], bins, min_decided)
                     if has_prob.any() else None)
        truth_figures = TruthFigures(_share(truth, g), _share(ident, needy),
                                     _share(appr, needy), truth_cal)
    return SubgroupFigures(
        attribute=attribute, group=group, label=label, n=int(g.sum()),
        identified=_share(ident, g), approved=_share(appr, g), decided=int((g & dec).sum()),
        approved_of_decided=_share(appr, g & dec), calibration=cal, truth=truth_figures)


def subgroups(age_band: Sequence[str] | np.ndarray, sex: Sequence[str] | np.ndarray,
              hukou: Sequence[str] | np.ndarray, disability: Sequence[bool] | np.ndarray
              ) -> dict[str, np.ndarray]:
    """The four attributes as value arrays for ``fairness_report`` (disability: yes / no)."""
    return {"age band": np.asarray(age_band, object), "sex": np.asarray(sex, object),
            "hukou": np.asarray(hukou, object),
            "disability": np.where(np.asarray(disability, bool), "yes", "no").astype(object)}


@dataclass
class FairnessData:
    """Per assessed household (profile on the current indicator-set version): its attributes,
    its latest assessment and its latest decision."""

    household_ids: list[str]
    age_band: np.ndarray
    sex: np.ndarray
    hukou: np.ndarray
    disability: np.ndarray     # bool: the profile's "a member with a disability" indicator
    identified: np.ndarray     # bool, latest assessment
    probability: np.ndarray    # float, latest assessment's model probability; NaN = no model
    decision: np.ndarray       # latest decision or None
    assessed_at: datetime | None  # the newest assessment read
    not_assessed: int          # households on the current version with no assessment yet

    def __len__(self) -> int:
        return len(self.household_ids)

    @property
    def decided(self) -> np.ndarray:
        """Latest decision approved, visited_helped or declined."""
        return np.array([d in SERVED + DECLINED for d in self.decision], bool)

    @property
    def approved(self) -> np.ndarray:
        """Latest decision approved or visited_helped."""
        return np.array([d in SERVED for d in self.decision], bool)

    def report(self, min_decided: int = MIN_DECIDED) -> list[SubgroupFigures]:
        """``fairness_report`` over these households (no true need: that is for benches)."""
        return fairness_report(subgroups(self.age_band, self.sex, self.hukou, self.disability),
                               self.identified, self.decided, self.approved, self.probability,
                               min_decided=min_decided)


FAIRNESS_SQL = """
WITH assessment AS (
    SELECT l.household_id, a.at, a.identified, a.model_probability
    FROM needs_latest l JOIN needs_assessments a ON a.id = l.assessment_id
), decision AS (
    SELECT DISTINCT ON (household_id) household_id, decision
    FROM needs_decisions ORDER BY household_id, at DESC, id DESC
)
SELECT p.household_id, p.head_age_band, p.head_sex, p.hukou, p.indicators[%(position)s],
       a.at, a.identified, a.model_probability, d.decision
FROM household_profiles p
LEFT JOIN assessment a USING (household_id)
LEFT JOIN decision d USING (household_id)
WHERE p.indicator_set_version = %(version)s
ORDER BY p.household_id
"""


def load_fairness(conn: psycopg.Connection[Any], indicator_set: IndicatorSet | None = None
                  ) -> FairnessData:
    """Read every household whose profile is on the indicator set's version: attributes, latest
    assessment (identified, model probability) and latest decision. Households not assessed yet
    are counted, not included."""
    s = indicator_set or load_indicator_set()
    if DISABILITY_INDICATOR not in s.ids:
        raise ValueError(f"indicator set {s.version} has no {DISABILITY_INDICATOR!r} indicator")
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(FAIRNESS_SQL, {"position": s.ids.index(DISABILITY_INDICATOR) + 1,
                                          "version": s.version}).fetchall()
    assessed = [r for r in rows if r[5] is not None]
    cols = list(zip(*assessed, strict=True)) if assessed else [()] * 9
    return FairnessData(
        household_ids=list(cols[0]),
        age_band=np.array(cols[1], object), sex=np.array(cols[2], object),
        hukou=np.array(cols[3], object), disability=np.array(cols[4], bool),
        identified=np.array(cols[6], bool),
        probability=np.array([np.nan if p is None else p for p in cols[7]], np.float64),
        decision=np.array(cols[8], object),
        assessed_at=max(cols[5]) if assessed else None,
        not_assessed=len(rows) - len(assessed))


def view_fairness(db: Database, username: str) -> FairnessData:
    """Every assessed household's attributes, latest assessment and decision, the view audited
    in the same transaction (aggregates only are shown, but they come from personal data)."""
    with db.transaction() as conn:
        data = load_fairness(conn)
        audit(conn, username, "view", "needs.fairness",
              {"households": len(data), "assessed_at": data.assessed_at})
    return data
