"""The district summary of the needs index (Alkire-Foster; docs/needs.md, "District summary").

From each household's latest assessment (``needs_assessments``, written by ``cityops needs
score``) on the current indicator-set version: n, the identified q, H = q/n, A = mean c of the
identified, M0 = H × A, and per indicator the uncensored and censored headcount ratios and the
indicator's share of M0; the same for each group of a breakdown (street, community, household
type) with the group's population share and its share of the district's M0.

One SQL aggregation per breakdown does the counting (households, identified, the sum of the
identified's scores, and per indicator the deprived, by unnesting each assessment's deprivation
list); the figures are then exact ``Fraction``s, so the contributions add up to 100 % exactly.
The definitions are those of ``models.needs_af`` (``alkire_foster``, ``decompose``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

import psycopg
from psycopg import sql

from cityops.needs.indicators import IndicatorSet, load_indicator_set
from cityops.needs.labels import HOUSEHOLD_TYPES
from cityops.platform.database import Database
from cityops.platform.users import audit

Breakdown = Literal["street", "community", "household_type"]
BREAKDOWN_LABELS: dict[Breakdown, str] = {
    "street": "street",
    "community": "community",
    "household_type": "household type",
}
HUNDRED = Fraction(100)

# Per breakdown: the group key (an SQL expression over h = households, p = household_profiles)
# and, after the aggregation, the join that names each group (g) and its label. Fixed strings,
# never user input.
_GROUPS: dict[Breakdown, tuple[str, str, str]] = {
    "street": (
        "left(h.community_code, 9) || '000000'",
        "LEFT JOIN grids g ON g.code = agg.key AND g.level = 'street'",
        "coalesce(g.name, agg.key)",
    ),
    "community": (
        "h.community_code::text",
        "LEFT JOIN grids g ON g.code = agg.key AND g.level = 'community'",
        "coalesce(g.name, agg.key)",
    ),
    "household_type": (
        "coalesce(p.household_type, 'no_profile')",
        "",
        "agg.key",
    ),
}

# Each household's latest assessment (``needs_latest``, kept by triggers: the newest at, then the
# highest id), then in one statement: per group and score denominator the households, the
# identified and the sum of the identified's score numerators; per group and indicator the
# deprived households (all, and the identified); and the households whose latest assessment is on
# another version. The groups are named after the aggregation (a join over groups, not households).
_SQL = """
WITH latest AS MATERIALIZED (
    SELECT a.indicator_set_version = %(version)s AS current, a.at, a.score_num, a.score_den,
           a.identified, a.details -> 'deprived' AS deprived, {key} AS key
    FROM needs_latest l
    JOIN needs_assessments a ON a.id = l.assessment_id
    JOIN households h ON h.id = l.household_id
    LEFT JOIN household_profiles p ON p.household_id = h.id
), agg AS (
    SELECT 'group' AS part, key, score_den, NULL AS indicator, count(*) AS n,
           count(*) FILTER (WHERE identified) AS q,
           coalesce(sum(score_num) FILTER (WHERE identified), 0) AS s, max(at) AS at
    FROM latest WHERE current GROUP BY key, score_den
    UNION ALL
    SELECT 'indicator', key, NULL, d.indicator, count(*), count(*) FILTER (WHERE identified),
           NULL, NULL
    FROM latest CROSS JOIN LATERAL jsonb_array_elements_text(latest.deprived) AS d(indicator)
    WHERE current GROUP BY key, d.indicator
    UNION ALL
    SELECT 'skipped', NULL, NULL, NULL, count(*), NULL, NULL, NULL FROM latest WHERE NOT current
)
SELECT agg.*, {label} AS label FROM agg {join}
"""


class SummaryError(ValueError):
    """The stored assessments do not fit the indicator set (a plain reason)."""


@dataclass(frozen=True)
class IndicatorFigures:
    """One indicator's figures in a population (the district or a group)."""

    id: str
    label: str
    dimension: str
    weight: Fraction
    deprived: int                  # households deprived in it
    deprived_identified: int       # identified households deprived in it
    uncensored_ratio: Fraction     # deprived / n
    censored_ratio: Fraction       # deprived_identified / n
    contribution_pct: Fraction     # weight × censored ratio / M0 × 100 (0 when M0 is 0)


@dataclass(frozen=True)
class Figures:
    """The index in a population: the district (key "district") or one group of a breakdown."""

    key: str
    label: str
    n: int
    identified: int
    H: Fraction                    # identified / n
    A: Fraction                    # mean c of the identified (0 when none)
    M0: Fraction                   # H × A
    population_share: Fraction     # n / the district's n
    contribution_pct: Fraction     # share of the district's M0 in % (0 when it is 0)
    indicators: tuple[IndicatorFigures, ...]

    def m0_by_dimension(self) -> dict[str, Fraction]:
        """M0 split by dimension (Σ weight × censored ratio of its indicators; sums to M0)."""
        out: dict[str, Fraction] = {}
        for ind in self.indicators:
            out[ind.dimension] = out.get(ind.dimension, Fraction(0)) + (
                ind.weight * ind.censored_ratio)
        return out


@dataclass(frozen=True)
class DistrictSummary:
    """The district's figures and those of each group of one breakdown (groups by key)."""

    version: str                   # the indicator-set version summarised
    k: Fraction
    breakdown: Breakdown
    district: Figures
    groups: tuple[Figures, ...]
    skipped: int                   # households whose latest assessment is on another version
    scored_at: datetime | None     # the newest assessment summarised (None: no assessment)
    dimension_labels: dict[str, str]

    @property
    def empty(self) -> bool:
        """True when no household has an assessment on the current version."""
        return self.district.n == 0


@dataclass
class _Counts:
    label: str
    n: int = 0
    q: int = 0
    c_sum: Fraction = Fraction(0)   # sum of c over the identified
    deprived: dict[str, list[int]] = field(default_factory=dict)  # id -> [all, identified]

    def add_deprived(self, indicator: str, all_: int, identified: int) -> None:
        row = self.deprived.setdefault(indicator, [0, 0])
        row[0] += all_
        row[1] += identified


def _ratio(a: Fraction | int, b: Fraction | int) -> Fraction:
    return Fraction(a, b) if isinstance(a, int) and isinstance(b, int) and b else (
        Fraction(a) / b if b else Fraction(0))


def _figures(key: str, counts: _Counts, iset: IndicatorSet, district_n: int,
             district_c_sum: Fraction) -> Figures:
    n, q, c_sum = counts.n, counts.q, counts.c_sum
    to_pct = HUNDRED / c_sum if c_sum else Fraction(0)  # weight × censored count -> % of M0
    indicators = []
    weighted = Fraction(0)  # Σ weight × censored count: n × M0 when scores and lists agree
    for ind in iset.indicators:
        all_, identified = counts.deprived.get(ind.id, (0, 0))
        part = ind.weight * identified
        weighted += part
        indicators.append(IndicatorFigures(
            id=ind.id, label=ind.label, dimension=ind.dimension, weight=ind.weight,
            deprived=all_, deprived_identified=identified, uncensored_ratio=_ratio(all_, n),
            censored_ratio=_ratio(identified, n), contribution_pct=part * to_pct))
    if weighted != c_sum:
        raise SummaryError(f"{counts.label}: the stored scores do not equal the weighted sum of "
                           f"the stored deprivations for indicator set {iset.version}; the "
                           "indicator file changed without a new version: give it one and run "
                           "`cityops needs score` again")
    return Figures(
        key=key, label=counts.label, n=n, identified=q, H=_ratio(q, n), A=_ratio(c_sum, q),
        M0=_ratio(c_sum, n), population_share=_ratio(n, district_n),
        contribution_pct=_ratio(c_sum, district_c_sum) * HUNDRED, indicators=tuple(indicators))


def _group_label(breakdown: Breakdown, label: str) -> str:
    return HOUSEHOLD_TYPES.get(label, label) if breakdown == "household_type" else label


def summarise(rows: list[Mapping[str, Any]], breakdown: Breakdown,
              iset: IndicatorSet) -> DistrictSummary:
    """The exact figures from the rows of the summary query (see ``district_summary``)."""
    groups: dict[str, _Counts] = {}
    district = _Counts(label="district")
    skipped = 0
    scored_at: datetime | None = None
    known = set(iset.ids)
    for row in rows:
        if row["part"] == "skipped":
            skipped = int(row["n"])
            continue
        group = groups.setdefault(row["key"], _Counts(_group_label(breakdown, row["label"])))
        if row["part"] == "group":
            c_sum = Fraction(int(row["s"]), int(row["score_den"]))
            for target in (group, district):
                target.n += int(row["n"])
                target.q += int(row["q"])
                target.c_sum += c_sum
            scored_at = row["at"] if scored_at is None else max(scored_at, row["at"])
        else:
            if row["indicator"] not in known:
                raise SummaryError(f"assessments on indicator set {iset.version} name indicator "
                                   f"{row['indicator']!r}, which the set does not have: give the "
                                   "changed indicator file a new version and run `cityops needs "
                                   "score` again")
            for target in (group, district):
                target.add_deprived(row["indicator"], int(row["n"]), int(row["q"]))
    return DistrictSummary(
        version=iset.version, k=iset.k, breakdown=breakdown,
        district=_figures("district", district, iset, district.n, district.c_sum),
        groups=tuple(_figures(key, groups[key], iset, district.n, district.c_sum)
                     for key in sorted(groups)),
        skipped=skipped, scored_at=scored_at, dimension_labels=dict(iset.dimension_labels))


def district_summary(conn: psycopg.Connection[Any], breakdown: Breakdown = "street",
                     indicator_set: IndicatorSet | None = None) -> DistrictSummary:
    """The district's Alkire-Foster figures and those of each group of ``breakdown``, from each
    household's latest assessment on the indicator set's version (the default set when None).

    Raises ValueError for an unknown breakdown, SummaryError when stored assessments do not fit
    the indicator set. ``conn`` must return dict rows (``cityops.platform.db``).
    """
    if breakdown not in _GROUPS:
        raise ValueError(f"breakdown {breakdown!r}: use one of {', '.join(_GROUPS)}")
    iset = indicator_set or load_indicator_set()
    key, join, label = (sql.SQL(part) for part in _GROUPS[breakdown])
    query = sql.SQL(_SQL).format(key=key, label=label, join=join)
    rows = conn.execute(query, {"version": iset.version}).fetchall()
    return summarise(rows, breakdown, iset)


def view_summary(db: Database, username: str, breakdown: Breakdown = "street") -> DistrictSummary:
    """The summary for one breakdown, the view audited in the same transaction."""
    with db.transaction() as conn:
        summary = district_summary(conn, breakdown)
        audit(conn, username, "view", "needs.summary",
              {"breakdown": breakdown, "households": summary.district.n,
               "indicator_set": summary.version})
    return summary
