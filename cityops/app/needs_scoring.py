"""Scoring the district's needs: every household with the index and the model, one assessment
each where its result changed (docs/needs.md, "Scoring the district"); ``cityops needs score`` and
the scheduler's ``needs-score`` job.

The composition root alone wires ``models.needs_af`` and ``models.needs_model`` to the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import numpy as np
import psycopg

from cityops.needs.indicators import load_indicator_set
from cityops.platform.database import Database

COPY_ASSESSMENTS = (
    "COPY needs_assessments (household_id, at, indicator_set_version, score_num, score_den,"
    " identified, model_probability, details) FROM STDIN"
)
# Each household's latest decision (the model learns from these, never from the undecided) and
# its latest assessment (an unchanged result is not stored again).
PROFILES_SQL = """
SELECT p.household_id, p.indicators, p.indicator_set_version,
       (SELECT d.decision FROM needs_decisions d WHERE d.household_id = p.household_id
        ORDER BY d.at DESC, d.id DESC LIMIT 1) AS decision,
       a.indicator_set_version AS last_version, a.score_num AS last_num,
       a.score_den AS last_den, a.model_probability AS last_probability,
       a.details AS last_details
FROM household_profiles p
LEFT JOIN needs_latest l USING (household_id)
LEFT JOIN needs_assessments a ON a.id = l.assessment_id
ORDER BY p.household_id
"""
log = logging.getLogger(__name__)
MIN_DECISIONS = 50  # fewer past decisions (or one kind only): no model, the index alone
# a model probability that moved less than this since the last assessment is "unchanged"
PROBABILITY_STEP = 0.01


@dataclass(frozen=True)
class ScoreRun:
    """What one scoring run stored and found."""

    households: int
    version: str
    k: Fraction
    identified: int
    H: float
    A: float
    M0: float
    decisions: int | None         # past decisions the model trained on; None: no model
    index_only: int               # second look: identified, model probability under ``low``
    model_only: int               # second look: not identified, model probability over ``high``
    other_version: int            # households on another indicator-set version, not scored
    stored: int                   # new assessments stored: the households whose result changed


class NothingToScore(Exception):
    """No household profile is on the current indicator-set version."""


def score_households(conn: psycopg.Connection[Any], *, high: float = 0.7, low: float = 0.2,
                     seed: int = 0, say: Callable[[str], object] = lambda _m: None) -> ScoreRun:
    """Score every household on the current indicator set with the index and the model and
    store a new assessment for each whose result changed since its latest one (or that has
    none), so the history holds changes, not a copy per run; ``say`` gets progress lines.
    Raises NothingToScore."""
    # imported here: scikit-learn takes over a second to import, which no other command pays
    from models.needs_af import alkire_foster
    from models.needs_model import labels_from_decisions, second_look, train

    indicator_set = load_indicator_set()
    say("reading household profiles ...")
    rows = conn.execute(PROFILES_SQL).fetchall()
    current = [r for r in rows if r["indicator_set_version"] == indicator_set.version]
    other = len(rows) - len(current)
    if other:
        say(f"{other} household(s) on another indicator-set version are not scored;"
            f" re-import them with version {indicator_set.version}")
    if not current:
        raise NothingToScore(f"no household profile on indicator-set version"
                             f" {indicator_set.version}: load the district or import households"
                             " first")
    matrix = np.array([r["indicators"] for r in current], dtype=np.int8)
    say(f"scoring {len(current):,} households on {len(indicator_set.ids)} indicators ...")
    result = alkire_foster(matrix, indicator_set.weights, indicator_set.k, ids=indicator_set.ids)
    decided, label = labels_from_decisions([r["decision"] for r in current])
    n_decided = int(decided.sum())
    probability: np.ndarray | None = None
    if n_decided >= MIN_DECISIONS and 0 < int(label[decided].sum()) < n_decided:
        say(f"training the model on {n_decided:,} past decisions ...")
        model = train(matrix[decided], label[decided], indicator_set.ids, seed=seed)
        probability = model.predict_proba(matrix)
    else:
        say(f"no model: {n_decided} past decision(s) of one kind or too few"
            f" (at least {MIN_DECISIONS} of both kinds); the index alone")
    flags = (second_look(result.identified, probability, high=high, low=low)
             if probability is not None else None)
    now = datetime.now(UTC)
    names = np.array(indicator_set.ids)
    stored = 0
    with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_ASSESSMENTS) as copy:
        for i, row in enumerate(current):
            details = {
                "deprived": names[result.deprivation[i] == 1].tolist(),
                "k": str(indicator_set.k),
                "second_look": flags.reason(i) if flags is not None else None,
            }
            new = (indicator_set.version, int(result.c_scaled[i]), result.denominator,
                   float(probability[i]) if probability is not None else None, details)
            if _unchanged(row, *new):
                continue
            copy.write_row((row["household_id"], now, new[0], new[1], new[2],
                            bool(result.identified[i]), new[3], json.dumps(details)))
            stored += 1
    return ScoreRun(
        households=len(current), version=indicator_set.version, k=indicator_set.k,
        identified=int(result.identified.sum()), H=result.H, A=result.A, M0=result.M0,
        decisions=n_decided if probability is not None else None,
        index_only=int(flags.index_only.sum()) if flags is not None else 0,
        model_only=int(flags.model_only.sum()) if flags is not None else 0,
        other_version=other, stored=stored,
    )


def _unchanged(last: dict[str, Any], version: str, num: int, den: int,
               probability: float | None, details: dict[str, Any]) -> bool:
    """True when a household's new result equals its latest stored assessment (the model's
    probability within PROBABILITY_STEP); identification follows from c, so c decides it."""
    if last["last_version"] != version or last["last_num"] is None:
        return False
    if Fraction(last["last_num"], last["last_den"]) != Fraction(num, den):
        return False
    if last["last_details"] != details:
        return False
    before = last["last_probability"]
    if before is None or probability is None:
        return before is None and probability is None
    return abs(before - probability) < PROBABILITY_STEP




def score_needs_daily(db: Database) -> None:
    """The scheduler's daily needs scoring (``cityops needs score`` with its defaults)."""
    with db.session() as conn:
        try:
            run = score_households(conn)
        except NothingToScore as exc:
            log.info("needs scoring skipped", extra={"reason": str(exc)})
            return
    log.info("needs scored", extra={"households": run.households, "stored": run.stored,
                                    "identified": run.identified,
                                    "model_decisions": run.decisions,
                                    "second_look": run.index_only + run.model_only})
