"""The civil-affairs review list of needs assessments (``/needs``, ``/needs/second-look`` and its
export; docs/needs.md, "The review list and the second-look queue").

Each household's LATEST assessment (``cityops needs score``; the newest ``at``, then the highest
id, kept in ``needs_latest`` by triggers) is what the list ranks: by the index score c descending,
exactly (c as a 30-decimal numeric of score_num / score_den: equal fractions give equal keys,
different ones with denominators below 10^15 different keys), then the model's probability
descending, then the household id. Filters: street, community, household type, intensity band
(decided in integers: ``identified`` and ``2 * score_num >= score_den`` for high) and the
second-look flag. Personal details: civil-affairs staff only; the service functions at the end
(``view_*``, ``export_for``) write each view to the audit log in the same transaction as the read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal, cast, get_args

import psycopg

from cityops.needs.indicators import (
    BAND_LABELS,
    Band,
    IndicatorSet,
    intensity_band,
    load_indicator_set,
)
from cityops.needs.labels import DECISIONS, HOUSEHOLD_TYPES
from cityops.platform.database import Database
from cityops.platform.users import audit

Conn = psycopg.Connection[Any]
LookKind = Literal["any", "index_only", "model_only"]
LOOK_KINDS: tuple[LookKind, ...] = get_args(LookKind)
LOOK_LABELS: dict[LookKind, str] = {
    "any": "index and model disagree strongly",
    "index_only": "identified by the index, unlikely by the model",
    "model_only": "likely by the model, not identified by the index",
}
_CODE = re.compile(r"^\d{15}$")


class FilterError(ValueError):
    """A filter value that cannot be used; the message says which and what is allowed."""


@dataclass(frozen=True)
class ReviewFilters:
    """What the list is narrowed to; None (or ``look`` None) means no narrowing."""

    street: str | None = None
    community: str | None = None
    household_type: str | None = None
    band: Band | None = None
    look: LookKind | None = None

    @classmethod
    def from_query(cls, args: Mapping[str, str]) -> ReviewFilters:
        """Filters from URL query parameters (``street``, ``community``, ``type``, ``band``,
        ``second_look``); empty means unset. Raises FilterError naming the bad parameter."""
        def get(name: str) -> str | None:
            value = (args.get(name) or "").strip()
            return value or None

        street, community = get("street"), get("community")
        for name, code in (("street", street), ("community", community)):
            if code is not None and not _CODE.match(code):
                raise FilterError(f"{name} must be a 15-digit grid code, not {code!r}")
        household_type, band, look = get("type"), get("band"), get("second_look")
        if household_type is not None and household_type not in HOUSEHOLD_TYPES:
            raise FilterError(f"type must be one of {', '.join(HOUSEHOLD_TYPES)},"
                              f" not {household_type!r}")
        if band is not None and band not in BAND_LABELS:
            raise FilterError(f"band must be one of {', '.join(BAND_LABELS)}, not {band!r}")
        if look is not None and look not in LOOK_KINDS:
            raise FilterError(f"second_look must be one of {', '.join(LOOK_KINDS)},"
                              f" not {look!r}")
        return cls(street, community, household_type, cast(Band | None, band),
                   cast(LookKind | None, look))

    def query(self) -> dict[str, str]:
        """The set filters as URL query parameters (the inverse of :meth:`from_query`)."""
        names = {"street": self.street, "community": self.community,
                 "type": self.household_type, "band": self.band, "second_look": self.look}
        return {k: v for k, v in names.items() if v is not None}


@dataclass(frozen=True)
class ReviewRow:
    """One household's latest assessment as the list shows it."""

    household_id: str
    head_name: str
    community_code: str
    community: str
    street: str
    household_type: str | None
    assessed_at: datetime
    indicator_set_version: str
    c: Fraction
    k: Fraction
    identified: bool
    band: Band
    deprived: tuple[str, ...]          # indicator ids deprived (uncensored)
    censored: tuple[str, ...]          # their plain-words labels, empty when not identified
    model_probability: float | None
    second_look: str | None
    decision: str | None
    decision_at: datetime | None

    @property
    def look_kind(self) -> LookKind | None:
        """Which kind of strong disagreement, or None when index and model agree."""
        if self.second_look is None:
            return None
        return "index_only" if self.identified else "model_only"

    @property
    def c_percent(self) -> str:
        """c as a percentage with one decimal (display only; c itself is exact)."""
        return f"{float(self.c * 100):.1f} %"

    @property
    def deprivations_text(self) -> str:
        """The censored deprivations in plain words, or why there are none."""
        if self.identified:
            return "; ".join(self.censored) or "none"
        n = len(self.deprived)
        return (f"not identified: {n} deprivation{'s' if n != 1 else ''}, together below the"
                f" cutoff k = {self.k}")


@dataclass(frozen=True)
class ReviewPage:
    """A page of the ranked list with the counts of everything that matches the filters."""

    rows: list[ReviewRow]
    total: int
    identified: int
    offset: int
    limit: int


@dataclass(frozen=True)
class FilterOptions:
    """What the filters can be set to: (code, name) of each street; household types present."""

    streets: list[tuple[str, str]]
    household_types: list[str]


# each household's latest assessment: needs_latest, kept by triggers (migration 0010)
_LATEST = """
FROM households h
JOIN needs_latest l ON l.household_id = h.id
JOIN needs_assessments a ON a.id = l.assessment_id
LEFT JOIN household_profiles p ON p.household_id = h.id
"""
_WHERE = """
WHERE (%(street)s::text IS NULL OR left(h.community_code, 9) = left(%(street)s::text, 9))
  AND (%(community)s::text IS NULL OR h.community_code = %(community)s::text)
  AND (%(type)s::text IS NULL OR p.household_type = %(type)s::text)
  AND (%(band)s::text IS NULL
       OR (%(band)s::text = 'high' AND a.identified AND a.score_num * 2 >= a.score_den)
       OR (%(band)s::text = 'medium' AND a.identified AND a.score_num * 2 < a.score_den)
       OR (%(band)s::text = 'low' AND NOT a.identified))
  AND (%(look)s::text IS NULL
       OR (a.details->>'second_look' IS NOT NULL
           AND (%(look)s::text = 'any' OR (%(look)s::text = 'index_only') = a.identified)))
"""


def _ranking(a: str, h: str) -> str:
    """ORDER BY of the list: c exactly (30 decimals), the model, the household id."""
    return (f"round({a}.score_num::numeric(60, 30) / {a}.score_den, 30) DESC,"
            f" {a}.model_probability DESC NULLS LAST, {h}")


# rank and cut first on the ranking columns alone (a narrow top-N sort), then fetch the
# assessment, names, profile and latest decision of the rows kept
_ROWS = """
SELECT r.household_id, h.head_name, h.community_code, c.name AS community, s.name AS street,
       p.household_type, a.at AS assessed_at, a.indicator_set_version, r.score_num,
       r.score_den, a.identified, r.model_probability, a.details,
       d.decision, d.at AS decision_at
FROM (
    SELECT h.id AS household_id, l.assessment_id, a.score_num, a.score_den,
           a.model_probability
""" + _LATEST + _WHERE + f"""
    ORDER BY {_ranking("a", "h.id")} LIMIT %(limit)s OFFSET %(offset)s
) r
JOIN households h ON h.id = r.household_id
JOIN needs_assessments a ON a.id = r.assessment_id
LEFT JOIN household_profiles p ON p.household_id = r.household_id
LEFT JOIN grids c ON c.code = h.community_code
LEFT JOIN grids s ON s.code = (left(h.community_code, 9) || '000000')::char(15)
LEFT JOIN LATERAL (
    SELECT y.decision, y.at FROM needs_decisions y WHERE y.household_id = r.household_id
    ORDER BY y.at DESC, y.id DESC LIMIT 1
) d ON true
ORDER BY {_ranking("r", "r.household_id")}
"""
# Both are run unprepared (prepare=False): planned for the filters actually set, where a prepared
# statement's generic plan keeps every "IS NULL OR" branch and reads the second look several
# times slower.
_COUNT = ("SELECT count(*) AS total, count(*) FILTER (WHERE a.identified) AS identified"
          + _LATEST + _WHERE)


def _params(filters: ReviewFilters, limit: int | None, offset: int) -> dict[str, Any]:
    return {"street": filters.street, "community": filters.community,
            "type": filters.household_type, "band": filters.band, "look": filters.look,
            "limit": limit, "offset": offset}


def _row(r: Mapping[str, Any], labels: Mapping[str, str]) -> ReviewRow:
    c = Fraction(r["score_num"], r["score_den"])
    k = Fraction(r["details"]["k"])
    deprived = tuple(r["details"].get("deprived", ()))
    return ReviewRow(
        household_id=r["household_id"], head_name=r["head_name"],
        community_code=r["community_code"], community=r["community"] or r["community_code"],
        street=r["street"] or "—", household_type=r["household_type"],
        assessed_at=r["assessed_at"], indicator_set_version=r["indicator_set_version"],
        c=c, k=k, identified=r["identified"], band=intensity_band(c, k), deprived=deprived,
        censored=tuple(labels.get(i, i) for i in deprived) if r["identified"] else (),
        model_probability=r["model_probability"], second_look=r["details"].get("second_look"),
        decision=r["decision"], decision_at=r["decision_at"],
    )


def _select(conn: Conn, filters: ReviewFilters, limit: int | None, offset: int,
            indicators: IndicatorSet | None) -> list[ReviewRow]:
    labels = (indicators or load_indicator_set()).labels
    rows = conn.execute(_ROWS, _params(filters, limit, offset), prepare=False).fetchall()
    return [_row(r, labels) for r in rows]


def has_assessments(conn: Conn) -> bool:
    """True once ``cityops needs score`` has stored any assessment."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM needs_assessments) AS any").fetchone()
    return bool(row["any"])


def filter_options(conn: Conn) -> FilterOptions:
    """The streets of the district (by name) and the household types present in the profiles."""
    streets = conn.execute("SELECT code, name FROM grids WHERE level = 'street'"
                           " ORDER BY name, code").fetchall()
    types = conn.execute("SELECT DISTINCT household_type FROM household_profiles"
                         " ORDER BY household_type").fetchall()
    return FilterOptions([(r["code"], r["name"]) for r in streets],
                         [r["household_type"] for r in types])


def communities(conn: Conn, street: str | None) -> list[tuple[str, str]]:
    """(code, name) of the communities of a street (every community when ``street`` is None)."""
    rows = conn.execute(
        "SELECT code, name FROM grids WHERE level = 'community'"
        " AND (%(street)s::text IS NULL OR left(code, 9) = left(%(street)s, 9))"
        " ORDER BY name, code", {"street": street}).fetchall()
    return [(r["code"], r["name"]) for r in rows]


def review_list(conn: Conn, filters: ReviewFilters, *, limit: int = 50, offset: int = 0,
                indicators: IndicatorSet | None = None) -> ReviewPage:
    """One page of the ranked list (``limit`` rows from ``offset``) and the counts of all the
    households matching ``filters`` (how many, how many identified)."""
    if limit < 1 or offset < 0:
        raise ValueError("limit must be positive and offset not negative")
    counts = conn.execute(_COUNT, _params(filters, None, 0), prepare=False).fetchone()
    rows = _select(conn, filters, limit, offset, indicators)
    return ReviewPage(rows, int(counts["total"]), int(counts["identified"]), offset, limit)


def export_rows(conn: Conn, filters: ReviewFilters,
                indicators: IndicatorSet | None = None) -> list[ReviewRow]:
    """Every household matching ``filters``, ranked as the list is."""
    return _select(conn, filters, None, 0, indicators)


EXPORT_COLUMNS = (
    "rank", "household_id", "head_name", "street", "community", "household_type",
    "c_percent", "c_numerator", "c_denominator", "k", "identified", "band", "deprivations",
    "model_probability", "second_look", "latest_decision", "latest_decision_at",
    "assessed_at", "indicator_set_version",
)


def export_record(rank: int, row: ReviewRow) -> list[str | int | float | None]:
    """One export line in the order of EXPORT_COLUMNS: plain values (c as its exact numerator
    and denominator in lowest terms, since a spreadsheet reads "1/3" as a date)."""
    return [
        rank, row.household_id, row.head_name, row.street, row.community,
        row.household_type, round(float(row.c * 100), 1), row.c.numerator, row.c.denominator,
        str(row.k), "yes" if row.identified else "no", row.band, row.deprivations_text,
        None if row.model_probability is None else round(row.model_probability, 4),
        row.second_look, DECISIONS.get(row.decision or "", row.decision),
        row.decision_at.isoformat() if row.decision_at else None,
        row.assessed_at.isoformat(), row.indicator_set_version,
    ]


def audit_details(filters: ReviewFilters, rows: Sequence[ReviewRow], **extra: Any) -> dict[
    str, Any
]:
    """What an audit record of a list view or export says: the filters and the households."""
    return {"filters": {k: v for k, v in asdict(filters).items() if v is not None},
            "households": [r.household_id for r in rows], **extra}


# --- the services the pages call: one transaction each, every view of personal data audited ---

def view_review_list(db: Database, username: str, filters: ReviewFilters, *, limit: int,
                     offset: int) -> ReviewPage | None:
    """A page of the ranked list, its view audited; None when nothing is assessed yet."""
    with db.transaction() as conn:
        if not has_assessments(conn):
            return None
        page = review_list(conn, filters, limit=limit, offset=offset)
        audit(conn, username, "view", "needs.review_list",
              audit_details(filters, page.rows, offset=offset, total=page.total))
    return page


def view_second_look(db: Database, username: str, filters: ReviewFilters, *,
                     limit: int) -> dict[LookKind, ReviewPage] | None:
    """Both kinds of strong disagreement (the first ``limit`` of each), the view audited; None
    when nothing is assessed yet."""
    with db.transaction() as conn:
        if not has_assessments(conn):
            return None
        pages: dict[LookKind, ReviewPage] = {
            kind: review_list(conn, replace(filters, look=kind), limit=limit)
            for kind in ("index_only", "model_only")
        }
        audit(conn, username, "view", "needs.second_look",
              audit_details(filters, [r for p in pages.values() for r in p.rows],
                            totals={k: p.total for k, p in pages.items()}))
    return pages


def export_for(db: Database, username: str, filters: ReviewFilters,
               format: str) -> list[ReviewRow]:
    """Every household matching ``filters`` for an export, the export audited."""
    with db.transaction() as conn:
        rows = export_rows(conn, filters)
        audit(conn, username, "export", "needs.review_list",
              audit_details(filters, rows, format=format))
    return rows


def read_filter_choices(db: Database, street: str | None = None) -> tuple[
    FilterOptions, list[tuple[str, str]]
]:
    """The filter bar's streets and household types, and the communities of ``street``."""
    with db.transaction() as conn:
        return filter_options(conn), communities(conn, street)


def read_communities(db: Database, street: str | None) -> list[tuple[str, str]]:
    """(code, name) of the communities of a street (all when ``street`` is None)."""
    with db.transaction() as conn:
        return communities(conn, street)
