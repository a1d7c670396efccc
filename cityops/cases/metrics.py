"""Case metrics per grid, street, district, unit or category over a period (docs/cases.md).

The metrics and their exact definitions are in docs/cases.md, section "Metrics".

The cohort is the cases *reported* in ``[start, end)`` (``tickets.created_at``); what happened to
them is read as of now (every event so far), so a period's figures still move while its cases are
open. Cases linked as duplicates of another case are left out of every figure (their count is
given apart). Each rate comes with its numerator and denominator; a rate whose denominator is 0 is
None, never 0 % or 100 %. One SQL query computes every group: per case, the first time it reached
each state (``ticket_events``), then counts and medians per group.

    rows = case_metrics(conn, start=t0, end=t1, group_by="street")
    csv_bytes = metrics_csv(rows)   # UTF-8 with a byte-order mark, for Excel
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from cityops.cases.categories import Catalogue, load_categories
from cityops.platform.database import Database

GroupBy = Literal["grid", "street", "district", "unit", "category", "all"]
GROUP_BYS: tuple[GroupBy, ...] = ("grid", "street", "district", "unit", "category", "all")
GROUP_NAMES: dict[str, str] = {
    "grid": "Grid", "street": "Street", "district": "District", "unit": "Unit",
    "category": "Category", "all": "All cases",
}

# The stages whose median time is given: (from state, to state), each the first time reached.
STAGES: tuple[tuple[str, str], ...] = (
    ("reported", "registered"),
    ("registered", "dispatched"),
    ("dispatched", "signed_for"),
    ("signed_for", "handled"),
    ("handled", "verified"),
    ("verified", "closed"),
)
STAGE_NAMES = {
    "reported": "reported", "registered": "registered", "dispatched": "dispatched",
    "signed_for": "signed for", "handled": "handled", "verified": "verified", "closed": "closed",
}
# name of each rate -> its heading
RATES: dict[str, str] = {
    "registration": "Registration rate",
    "closure": "Closure rate",
    "on_time_closure": "On-time closure rate",
    "on_time_handling": "On-time handling rate",
    "rework": "Rework rate",
    "postponement": "Postponement rate",
    "satisfaction": "Satisfaction rate",
}
# a counted rating of at least this score is a satisfied one (4 "satisfied", 5 "very satisfied")
SATISFIED_MIN_SCORE = 4
# where a case with no value of the grouping goes
NO_GROUP = {
    "grid": "(no grid cell)", "street": "(no grid cell)", "district": "(no grid cell)",
    "unit": "(no unit)", "category": "(no category)", "all": "All cases",
}


@dataclass(frozen=True)
class Rate:
    """numerator / denominator; ``value`` is None when the denominator is 0."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def percent(self, digits: int = 1) -> str:
        """'82.5 %', or '—' with no denominator."""
        value = self.value
        return "—" if value is None else f"{100 * value:.{digits}f} %"


@dataclass(frozen=True)
class StageTime:
    """Median seconds from first reaching ``from_state`` to first reaching ``to_state``, over the
    ``cases`` that reached both (None when none did)."""

    from_state: str
    to_state: str
    median_s: float | None
    cases: int

    @property
    def name(self) -> str:
        return f"{STAGE_NAMES[self.from_state]} → {STAGE_NAMES[self.to_state]}"


@dataclass(frozen=True)
class MetricsRow:
    """The metrics of one group (``key`` None: the cases with no value of the grouping)."""

    group_by: str
    key: str | None
    label: str
    reported: int          # reported in the period, duplicates left out
    duplicates: int        # reported in the period and linked to another case (left out)
    registered: int
    closed: int            # registered, now closed or evaluated
    registration: Rate
    closure: Rate
    on_time_closure: Rate
    on_time_handling: Rate
    rework: Rate
    postponement: Rate
    satisfaction: Rate
    stages: tuple[StageTime, ...]

    def rate(self, name: str) -> Rate:
        """A rate by its name in :data:`RATES`."""
        if name not in RATES:
            raise KeyError(name)
        value = getattr(self, name)
        assert isinstance(value, Rate)
        return value


# the grouping column of each group_by (cases c, their cell's ancestors a)
_KEYS = {
    "grid": "a.grid", "street": "a.street", "district": "a.district", "unit": "c.unit",
    "category": "c.category", "all": "NULL::text",
}
_REACHED = ("reported", "registered", "dispatched", "signed_for", "handled", "verified", "closed")

_QUERY = """
WITH RECURSIVE up AS (         -- every cell with itself and each ancestor
    SELECT code AS cell, code, level, parent_code FROM grids
    UNION ALL
    SELECT up.cell, g.code, g.level, g.parent_code
    FROM up JOIN grids g ON g.code = up.parent_code
), anc AS (
    SELECT cell,
           max(code) FILTER (WHERE level = 'grid') AS grid,
           max(code) FILTER (WHERE level = 'street') AS street,
           max(code) FILTER (WHERE level = 'district') AS district
    FROM up GROUP BY cell
), cohort AS (
    SELECT t.id, t.grid_code, t.unit, t.category, t.status, t.created_at, t.due_at,
           t.duplicate_of IS NOT NULL AS duplicate
    FROM tickets t
    WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
), reached AS (                -- the first time each case reached each state
    SELECT e.ticket_id,
           {reached},
           bool_or(e.to_status = 'rework') AS reworked
    FROM ticket_events e JOIN cohort c ON c.id = e.ticket_id AND NOT c.duplicate
    WHERE e.kind = 'transition'
    GROUP BY e.ticket_id
), rating AS (                 -- each case's latest rating, overturned bad reviews left out
    SELECT DISTINCT ON (r.ticket_id) r.ticket_id, r.score
    FROM case_ratings r JOIN cohort c ON c.id = r.ticket_id AND NOT c.duplicate
    WHERE NOT (r.score <= 2 AND r.appeal_status IS NOT DISTINCT FROM 'overturned')
    ORDER BY r.ticket_id, r.at DESC, r.id DESC
), postponed AS (              -- cases with an approved postponement
    SELECT DISTINCT p.ticket_id
    FROM case_postponements p JOIN cohort c ON c.id = p.ticket_id AND NOT c.duplicate
    WHERE p.approved
), cases AS (
    SELECT {key} AS key, c.duplicate, c.status IN ('closed', 'evaluated') AS is_closed, c.due_at,
           coalesce(x.at_reported, c.created_at) AS at_reported,
           x.at_registered, x.at_dispatched, x.at_signed_for, x.at_handled, x.at_verified,
           x.at_closed, coalesce(x.reworked, false) AS reworked, rt.score,
           pp.ticket_id IS NOT NULL AS postponed
    FROM cohort c
    LEFT JOIN anc a ON a.cell = c.grid_code
    LEFT JOIN reached x ON x.ticket_id = c.id
    LEFT JOIN rating rt ON rt.ticket_id = c.id
    LEFT JOIN postponed pp ON pp.ticket_id = c.id
)
SELECT key,
    count(*) FILTER (WHERE NOT duplicate) AS reported,
    count(*) FILTER (WHERE duplicate) AS duplicates,
    count(*) FILTER (WHERE NOT duplicate AND at_registered IS NOT NULL) AS registered,
    count(*) FILTER (WHERE NOT duplicate AND at_registered IS NOT NULL AND is_closed) AS closed,
    count(*) FILTER (WHERE NOT duplicate AND at_registered IS NOT NULL AND is_closed
                     AND due_at IS NOT NULL) AS closed_due,
    count(*) FILTER (WHERE NOT duplicate AND at_registered IS NOT NULL AND is_closed
                     AND at_closed <= due_at) AS closed_on_time,
    count(*) FILTER (WHERE NOT duplicate AND at_handled IS NOT NULL) AS handled,
    count(*) FILTER (WHERE NOT duplicate AND at_handled IS NOT NULL
                     AND due_at IS NOT NULL) AS handled_due,
    count(*) FILTER (WHERE NOT duplicate AND at_handled <= due_at) AS handled_on_time,
    count(*) FILTER (WHERE NOT duplicate AND at_handled IS NOT NULL AND reworked) AS reworked,
    count(*) FILTER (WHERE NOT duplicate AND at_dispatched IS NOT NULL) AS dispatched,
    count(*) FILTER (WHERE NOT duplicate AND at_dispatched IS NOT NULL AND postponed)
        AS postponed,
    count(*) FILTER (WHERE NOT duplicate AND score IS NOT NULL) AS rated,
    count(*) FILTER (WHERE NOT duplicate AND score >= {satisfied}) AS satisfied,
    {stages}
FROM cases
GROUP BY key
"""


def _sql() -> str:
    reached = ",\n           ".join(
        f"min(e.at) FILTER (WHERE e.to_status = '{s}') AS at_{s}" for s in _REACHED
    )
    stages = ",\n    ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at_{b} - at_{a}))"
        f" FILTER (WHERE NOT duplicate AND at_{b} >= at_{a}) AS median_{a}_{b},\n"
        f"    count(*) FILTER (WHERE NOT duplicate AND at_{b} >= at_{a}) AS n_{a}_{b}"
        for a, b in STAGES
    )
    return (_QUERY.replace("{reached}", reached).replace("{stages}", stages)
            .replace("{satisfied}", str(SATISFIED_MIN_SCORE)))


_SQL = {group_by: _sql().replace("{key}", column) for group_by, column in _KEYS.items()}


def case_metrics(
    conn: psycopg.Connection[Any],
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy,
    categories: Catalogue | None = None,
) -> list[MetricsRow]:
    """The metrics of the cases reported in ``[start, end)``, one row per group, by label (the
    cases with no value of the grouping last). ``group_by`` "all" gives one row for every case.

    ``categories`` names the categories (default: the packaged catalogue). Raises ValueError on
    an unknown grouping or an empty period.
    """
    if group_by not in _SQL:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if end <= start:
        raise ValueError(f"the period is empty: end {end:%Y-%m-%d %H:%M} is not after start")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # The planner's estimates of this query are far off (it thinks of millions of rows), so
        # JIT would compile it for about 2 s on a query that runs in less than a second.
        cur.execute("SET LOCAL jit = off")
        found = cur.execute(_SQL[group_by], {"start": start, "end": end}).fetchall()
    label = _labeller(conn, group_by, categories)
    rows = [_row(group_by, r, label) for r in found]
    if group_by == "all" and not rows:
        rows = [_row(group_by, _EMPTY, label)]
    rows.sort(key=lambda r: (r.key is None, r.label, r.key or ""))
    return rows


_EMPTY: dict[str, Any] = {"key": None} | {
    name: 0 for name in (
        "reported", "duplicates", "registered", "closed", "closed_due", "closed_on_time",
        "handled", "handled_due", "handled_on_time", "reworked", "dispatched", "postponed",
        "rated", "satisfied", *(f"n_{a}_{b}" for a, b in STAGES),
    )
}


def _labeller(
    conn: psycopg.Connection[Any], group_by: str, categories: Catalogue | None
) -> Callable[[str | None], str]:
    if group_by in ("grid", "street", "district"):
        with conn.cursor(row_factory=dict_row) as cur:
            names = {r["code"]: r["name"] for r in cur.execute("SELECT code, name FROM grids")}
        return lambda key: NO_GROUP[group_by] if key is None else names.get(key, key)
    if group_by == "category":
        catalogue = categories if categories is not None else load_categories()
        return lambda key: NO_GROUP[group_by] if key is None else catalogue.label(key)
    return lambda key: NO_GROUP[group_by] if key is None else key


def _row(group_by: str, r: dict[str, Any], label: Callable[[str | None], str]) -> MetricsRow:
    key = r["key"].strip() if isinstance(r["key"], str) else None
    stages = tuple(
        StageTime(a, b, None if r.get(f"median_{a}_{b}") is None
                  else float(r[f"median_{a}_{b}"]), int(r[f"n_{a}_{b}"]))
        for a, b in STAGES
    )
    return MetricsRow(
        group_by=group_by, key=key, label=label(key),
        reported=r["reported"], duplicates=r["duplicates"], registered=r["registered"],
        closed=r["closed"],
        registration=Rate(r["registered"], r["reported"]),
        closure=Rate(r["closed"], r["registered"]),
        on_time_closure=Rate(r["closed_on_time"], r["closed_due"]),
        on_time_handling=Rate(r["handled_on_time"], r["handled_due"]),
        rework=Rate(r["reworked"], r["handled"]),
        postponement=Rate(r["postponed"], r["dispatched"]),
        satisfaction=Rate(r["satisfied"], r["rated"]),
        stages=stages,
    )


def csv_header() -> list[str]:
    """The CSV's header row."""
    head = ["group", "code", "name", "reported", "duplicates left out", "registered", "closed"]
    for heading in RATES.values():
        head += [f"{heading} %", f"{heading} numerator", f"{heading} denominator"]
    for a, b in STAGES:
        name = f"{STAGE_NAMES[a]} to {STAGE_NAMES[b]}"
        head += [f"median h {name}", f"cases {name}"]
    return head


def csv_rows(rows: Sequence[MetricsRow]) -> list[list[str]]:
    """The CSV's data rows: rates in percent with 1 decimal, medians in hours with 2 decimals,
    empty where there is no value."""
    out: list[list[str]] = []
    for row in rows:
        line = [GROUP_NAMES[row.group_by], row.key or "", row.label, str(row.reported),
                str(row.duplicates), str(row.registered), str(row.closed)]
        for name in RATES:
            rate = row.rate(name)
            value = rate.value
            line += ["" if value is None else f"{100 * value:.1f}", str(rate.numerator),
                     str(rate.denominator)]
        for stage in row.stages:
            line += ["" if stage.median_s is None else f"{stage.median_s / 3600:.2f}",
                     str(stage.cases)]
        out.append(line)
    return out


def metrics_csv(rows: Sequence[MetricsRow]) -> bytes:
    """The rows as CSV: a header row, one row per group, UTF-8 with a byte-order mark (so Excel
    reads Chinese names), CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header())
    writer.writerows(csv_rows(rows))
    return buffer.getvalue().encode("utf-8-sig")


def read_metrics(db: Database, *, start: datetime, end: datetime, group_by: GroupBy,
                 categories: Catalogue | None = None) -> tuple[list[MetricsRow], MetricsRow]:
    """The rows of one grouping and the total row ("all"), read in one transaction."""
    with db.transaction() as conn:
        rows = case_metrics(conn, start=start, end=end, group_by=group_by,
                            categories=categories)
        total = rows[0] if group_by == "all" else case_metrics(conn, start=start, end=end,
                                                               group_by="all")[0]
    return rows, total
