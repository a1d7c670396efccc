"""One household's needs case for civil-affairs staff (``/needs/household/<id>``; docs/needs.md).

:func:`read_household` returns what the page shows — the household, its profile's achievements
and its indicators by dimension, its assessments, decisions, assistance and review tasks — and
writes the view to the audit log in the same transaction. The protected attributes of the profile
(head's sex, age band, hukou, ethnicity) are for fairness reporting only and are never read here.
:func:`record_decision` stores a caseworker's decision with its reason, audited in the same
transaction; bad input raises :class:`DecisionError` with a sentence a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any

import psycopg

from cityops.needs.indicators import (
    BAND_LABELS,
    Band,
    IndicatorSet,
    intensity_band,
    load_indicator_set,
)
from cityops.needs.labels import ASSISTANCE_PROGRAMMES, DECISIONS, HOUSEHOLD_TYPES, PROGRAMMES
from cityops.needs.tasks import ReviewTask, household_tasks
from cityops.platform import users
from cityops.platform.database import Database

MIN_REASON = 5  # characters: "ok" is not a reason another caseworker can follow
PROGRAMME_REQUIRED = ("approved",)
PROGRAMME_ALLOWED = ("approved", "visited_helped")


class DecisionError(ValueError):
    """A decision that cannot be recorded; the message says what to change."""


@dataclass(frozen=True)
class IndicatorState:
    """One indicator of the household's profile: its plain-words label, exact weight, deprived."""

    id: str
    label: str
    weight: Fraction
    deprived: bool


@dataclass(frozen=True)
class DimensionState:
    """A dimension and its indicators, in the indicator set's order."""

    id: str
    label: str
    indicators: tuple[IndicatorState, ...]

    @property
    def deprived(self) -> int:
        """How many of its indicators the household is deprived in."""
        return sum(i.deprived for i in self.indicators)


@dataclass(frozen=True)
class Profile:
    """The profile's type, achievements and indicators (no protected attribute)."""

    household_type: str
    income_per_capita_month: Decimal
    financial_assets: Decimal
    floor_area_per_person: float
    medical_spending_share: float
    education_spending_share: float
    months_unemployed: int
    indicator_set_version: str
    updated_at: datetime
    dimensions: tuple[DimensionState, ...]  # empty when the set's width does not fit
    version_note: str | None  # set when the profile is on another indicator-set version

    @property
    def type_label(self) -> str:
        """The household type in plain words."""
        return HOUSEHOLD_TYPES.get(self.household_type, self.household_type)


@dataclass(frozen=True)
class Assessment:
    """One scoring of the household by ``cityops needs score``."""

    at: datetime
    indicator_set_version: str
    c: Fraction
    k: Fraction
    identified: bool
    model_probability: float | None
    second_look: str | None
    deprived: tuple[str, ...]  # plain-words labels of the indicators deprived in

    @property
    def band(self) -> Band:
        """The intensity band (exact)."""
        return intensity_band(self.c, self.k)

    @property
    def band_label(self) -> str:
        """The intensity band in words, with its bounds."""
        return BAND_LABELS[self.band]

    @property
    def percent(self) -> str:
        """c as a percentage with one decimal (the fraction is the exact value)."""
        return f"{float(self.c) * 100:.1f} %"

    @property
    def censored(self) -> bool:
        """True when the household was not identified: its deprivations are censored (they do
        not count in the district's figures)."""
        return not self.identified


@dataclass(frozen=True)
class Decision:
    """A caseworker's decision, with its reason."""

    id: int
    at: datetime
    by: str
    decision: str
    programme: str | None
    reason: str

    @property
    def decision_label(self) -> str:
        """The decision in words."""
        return DECISIONS[self.decision]

    @property
    def programme_label(self) -> str | None:
        """The programme in words, if any."""
        return PROGRAMMES.get(self.programme, self.programme) if self.programme else None


@dataclass(frozen=True)
class Assistance:
    """Assistance the household receives now."""

    programme: str
    since: date

    @property
    def label(self) -> str:
        """The programme in words."""
        return ASSISTANCE_PROGRAMMES.get(self.programme, self.programme)


@dataclass(frozen=True)
class HouseholdCase:
    """Everything the household page shows, newest first in each history."""

    id: str
    head_name: str
    address: str
    phone: str | None
    members: int
    birth_year: int | None
    community: str
    street: str | None
    indicator_set: IndicatorSet
    profile: Profile | None
    assessments: tuple[Assessment, ...]
    decisions: tuple[Decision, ...]
    assistance: tuple[Assistance, ...]
    tasks: tuple[ReviewTask, ...]

    @property
    def latest(self) -> Assessment | None:
        """The newest assessment, if any."""
        return self.assessments[0] if self.assessments else None


_HOUSEHOLD = """
SELECT h.id, h.head_name, h.address, h.phone, h.members, h.birth_year,
       c.name AS community, s.name AS street
FROM households h
JOIN grids c ON c.code = h.community_code
LEFT JOIN grids s ON s.code = left(h.community_code, 9) || '000000' AND s.level = 'street'
WHERE h.id = %s
"""
# the protected attributes (head_sex, head_age_band, hukou, ethnicity) are not selected
_PROFILE = """
SELECT household_type, income_per_capita_month, financial_assets, floor_area_per_person,
       medical_spending_share, education_spending_share, months_unemployed, indicators,
       indicator_set_version, updated_at
FROM household_profiles WHERE household_id = %s
"""
_ASSESSMENTS = """
SELECT at, indicator_set_version, score_num, score_den, identified, model_probability, details
FROM needs_assessments WHERE household_id = %s ORDER BY at DESC, id DESC
"""
_DECISIONS = """
SELECT id, at, by, decision, programme, reason
FROM needs_decisions WHERE household_id = %s ORDER BY at DESC, id DESC
"""
_ASSISTANCE = "SELECT programme, since FROM assistance WHERE household_id = %s ORDER BY since"


def _dimensions(flags: list[bool], indicator_set: IndicatorSet) -> tuple[DimensionState, ...]:
    states = {ind.id: IndicatorState(ind.id, ind.label, ind.weight, bool(on))
              for ind, on in zip(indicator_set.indicators, flags, strict=True)}
    return tuple(
        DimensionState(dim, indicator_set.dimension_labels[dim],
                       tuple(states[i] for i in ids))
        for dim, ids in indicator_set.dimensions.items()
    )


def _profile(row: dict[str, Any], indicator_set: IndicatorSet) -> Profile:
    flags = list(row["indicators"])
    note = None
    fits = len(flags) == len(indicator_set.ids)
    if row["indicator_set_version"] != indicator_set.version:
        note = (f"This profile was recorded with indicator set {row['indicator_set_version']};"
                f" the current set is {indicator_set.version}. "
                + ("The indicators are shown in the current set's order and may not match."
                   if fits else "Its indicators cannot be shown with the current set.")
                + " Re-import the household to score it again.")
    return Profile(
        household_type=row["household_type"],
        income_per_capita_month=row["income_per_capita_month"],
        financial_assets=row["financial_assets"],
        floor_area_per_person=row["floor_area_per_person"],
        medical_spending_share=row["medical_spending_share"],
        education_spending_share=row["education_spending_share"],
        months_unemployed=row["months_unemployed"],
        indicator_set_version=row["indicator_set_version"],
        updated_at=row["updated_at"],
        dimensions=_dimensions(flags, indicator_set) if fits else (),
        version_note=note,
    )


def _assessment(row: dict[str, Any], indicator_set: IndicatorSet) -> Assessment:
    details = row["details"] or {}
    labels = indicator_set.labels
    k = Fraction(details["k"]) if details.get("k") else indicator_set.k
    return Assessment(
        at=row["at"],
        indicator_set_version=row["indicator_set_version"],
        c=Fraction(row["score_num"], row["score_den"]),
        k=k,
        identified=row["identified"],
        model_probability=row["model_probability"],
        second_look=details.get("second_look"),
        deprived=tuple(labels.get(i, i) for i in details.get("deprived", [])),
    )


def household_case(conn: psycopg.Connection[Any], household_id: str,
                   indicator_set: IndicatorSet | None = None) -> HouseholdCase | None:
    """The household's case as the page shows it, or None for an unknown household.

    Not audited: callers showing it to a person use :func:`view_household`."""
    indicator_set = indicator_set or load_indicator_set()
    row = conn.execute(_HOUSEHOLD, (household_id,)).fetchone()
    if row is None:
        return None
    profile = conn.execute(_PROFILE, (household_id,)).fetchone()
    return HouseholdCase(
        id=row["id"], head_name=row["head_name"], address=row["address"], phone=row["phone"],
        members=row["members"], birth_year=row["birth_year"], community=row["community"],
        street=row["street"], indicator_set=indicator_set,
        profile=_profile(profile, indicator_set) if profile else None,
        assessments=tuple(_assessment(r, indicator_set)
                          for r in conn.execute(_ASSESSMENTS, (household_id,))),
        decisions=tuple(Decision(**r) for r in conn.execute(_DECISIONS, (household_id,))),
        assistance=tuple(Assistance(**r) for r in conn.execute(_ASSISTANCE, (household_id,))),
        tasks=household_tasks(conn, household_id),
    )


def view_household(db: Database, household_id: str, username: str,
                   indicator_set: IndicatorSet | None = None) -> HouseholdCase | None:
    """:func:`household_case` for ``username``, the view written to the audit log in the same
    transaction (action "view", subject "household <id>"); None (and nothing written) for an
    unknown household."""
    with db.transaction() as conn:
        case = household_case(conn, household_id, indicator_set)
        if case is not None:
            users.audit(conn, username, "view", f"household {household_id}",
                        {"page": "needs_household", "assessments": len(case.assessments),
                         "decisions": len(case.decisions)})
    return case


def check_decision(decision: str | None, reason: str | None,
                   programme: str | None) -> tuple[str, str, str | None]:
    """The decision, stripped reason and programme when they can be recorded together; else
    :class:`DecisionError` saying what to change."""
    if decision not in DECISIONS:
        choices = ", ".join(DECISIONS.values()).lower()
        raise DecisionError(f"Choose a decision: {choices}"
                            + (f" ({decision!r} is not one)." if decision else "."))
    text = (reason or "").strip()
    if not text:
        raise DecisionError("Write the reason for the decision: another caseworker reading this"
                            " household later needs to know why.")
    if len(text) < MIN_REASON:
        raise DecisionError(f"The reason {text!r} is too short: say in a few words why"
                            f" (at least {MIN_REASON} characters).")
    chosen = programme or None
    if chosen is not None and chosen not in PROGRAMMES:
        raise DecisionError(f"{chosen!r} is not a programme; choose one of: "
                            + ", ".join(PROGRAMMES.values()) + ".")
    if chosen is None and decision in PROGRAMME_REQUIRED:
        raise DecisionError("Choose the programme the household is approved for.")
    if chosen is not None and decision not in PROGRAMME_ALLOWED:
        raise DecisionError(f"A programme goes only with an approval or a visit that helped;"
                            f" clear the programme to record \"{DECISIONS[decision]}\".")
    return decision, text, chosen


def record_decision(conn: psycopg.Connection[Any], household_id: str, decision: str | None,
                    reason: str | None, by: str, programme: str | None = None, *,
                    now: datetime, tz: tzinfo = UTC) -> Decision:
    """Store ``by``'s decision on the household with its reason (and programme: required to
    approve, optional for "visited and helped", refused otherwise), audited in the same
    transaction; the stored decision. An approval for an assistance programme also records
    that the household receives it from today (in ``tz``), unless it already does. Raises
    :class:`DecisionError` and writes nothing when the input cannot be recorded or the
    household is unknown."""
    decision, text, chosen = check_decision(decision, reason, programme)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM households WHERE id = %s", (household_id,)).fetchone() \
                is None:
            raise DecisionError(f"There is no household {household_id!r}: check the id.")
        row = conn.execute(
            "INSERT INTO needs_decisions (household_id, at, by, decision, reason, programme)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, at, by, decision, programme, reason",
            (household_id, now, by, decision, text, chosen),
        ).fetchone()
        assert row is not None
        if decision == "approved" and chosen in ASSISTANCE_PROGRAMMES:
            conn.execute("INSERT INTO assistance (household_id, programme, since)"
                         " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (household_id, chosen, now.astimezone(tz).date()))
        users.audit(conn, by, "needs_decision", f"household {household_id}",
                    {"decision": decision, "programme": chosen, "reason": text,
                     "decision_id": row["id"]})
    return Decision(**row)


def decide(db: Database, household_id: str, decision: str | None, reason: str | None, by: str,
           programme: str | None = None, *, now: datetime, tz: tzinfo = UTC) -> Decision:
    """:func:`record_decision` in a transaction of its own."""
    with db.transaction() as conn:
        return record_decision(conn, household_id, decision, reason, by, programme, now=now,
                               tz=tz)
