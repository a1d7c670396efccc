"""Households marked away or in hospital: no water-use alerts open for them until the end date.

Grid workers and civil-affairs staff set a mark (``cityops household away``, the civil-affairs
page, or a grid worker's water ticket); a new mark replaces the household's current one, and
:func:`end_absence` ends it early when the person is back. Every change is written to the audit
log. The water detectors ask :func:`absent_meters` which meters to keep quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from cityops.platform import users
from cityops.platform.database import Database

REASONS = ("away", "hospital")


class AbsenceError(ValueError):
    """A mark that cannot be set or ended; the message says why."""


@dataclass(frozen=True)
class Absence:
    """A household's away / in-hospital mark."""

    id: int
    household_id: str
    reason: str
    starts_at: datetime
    until: datetime
    set_by: str
    note: str


_COLUMNS = "id, household_id, reason, starts_at, until, set_by, note"


def _absence(row: dict[str, Any]) -> Absence:
    return Absence(**row)


def mark_away(
    conn: psycopg.Connection[Any], household_id: str, until: datetime, reason: str, actor: str,
    now: datetime, note: str = "",
) -> Absence:
    """Mark ``household_id`` away or in hospital from ``now`` until ``until`` (replacing its
    current mark), audited as ``actor``."""
    if reason not in REASONS:
        raise AbsenceError(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
    if until.tzinfo is None:
        raise AbsenceError("the end date must carry a time zone")
    if until <= now:
        raise AbsenceError(f"the end date {until:%Y-%m-%d %H:%M} is not in the future")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM households WHERE id = %s", (household_id,)).fetchone() \
                is None:
            raise AbsenceError(f"there is no household {household_id}")
        conn.execute(
            "UPDATE household_absences SET ended_at = %s, ended_by = %s"
            " WHERE household_id = %s AND ended_at IS NULL AND until > %s",
            (now, actor, household_id, now),
        )
        row = conn.execute(
            f"INSERT INTO household_absences (household_id, reason, starts_at, until, set_by,"
            f" note) VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (household_id, reason, now, until, actor, note),
        ).fetchone()
        assert row is not None
        users.audit(conn, actor, "mark_" + reason, f"household {household_id}",
                    {"until": until.isoformat(), "note": note})
    return _absence(row)


def end_absence(
    conn: psycopg.Connection[Any], household_id: str, actor: str, now: datetime
) -> bool:
    """End the household's current mark now (the person is back); False when there was none."""
    with conn.transaction():
        ended = conn.execute(
            "UPDATE household_absences SET ended_at = %s, ended_by = %s"
            " WHERE household_id = %s AND ended_at IS NULL AND starts_at <= %s AND until > %s"
            " RETURNING id",
            (now, actor, household_id, now, now),
        ).fetchall()
        if ended:
            users.audit(conn, actor, "end_absence", f"household {household_id}", {})
    return bool(ended)


def current_absences(
    conn: psycopg.Connection[Any], now: datetime, household_ids: list[str] | None = None
) -> dict[str, Absence]:
    """The mark in force at ``now`` of each household (of ``household_ids`` when given)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM household_absences"
        " WHERE ended_at IS NULL AND starts_at <= %(now)s AND until > %(now)s"
        "   AND (%(ids)s::text[] IS NULL OR household_id = ANY(%(ids)s))"
        " ORDER BY starts_at",
        {"now": now, "ids": household_ids},
    ).fetchall()
    return {r["household_id"]: _absence(r) for r in rows}


def absent_meters(conn: psycopg.Connection[Any], now: datetime) -> dict[str, Absence]:
    """Water meters whose household is marked away or in hospital at ``now``."""
    rows = conn.execute(
        f"SELECT d.id AS device_id, {', '.join('a.' + c for c in _COLUMNS.split(', '))}"
        " FROM household_absences a JOIN devices d ON d.household_id = a.household_id"
        " WHERE d.kind = 'water_meter' AND a.ended_at IS NULL AND a.starts_at <= %(now)s"
        "   AND a.until > %(now)s",
        {"now": now},
    ).fetchall()
    return {r.pop("device_id"): _absence(r) for r in rows}


def ticket_household(conn: psycopg.Connection[Any], ticket_id: int) -> str | None:
    """The household of a water-meter ticket (None for any other ticket)."""
    row = conn.execute(
        "SELECT d.household_id FROM tickets t JOIN alerts a ON a.id = t.alert_id"
        " JOIN devices d ON d.id = a.source_id"
        " WHERE t.id = %s AND d.kind = 'water_meter'",
        (ticket_id,),
    ).fetchone()
    return row["household_id"] if row else None


def mark_away_for_ticket(
    conn: psycopg.Connection[Any], ticket_id: int, worker_id: str, until: datetime, reason: str,
    actor: str, now: datetime,
) -> Absence:
    """A grid worker marks the household of their own water ticket away or in hospital (they
    never see who lives there: the ticket is the handle)."""
    owner = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    if owner is None or owner["worker_id"] != worker_id:
        raise AbsenceError(f"ticket #{ticket_id} is not assigned to you")
    household = ticket_household(conn, ticket_id)
    if household is None:
        raise AbsenceError(f"ticket #{ticket_id} is not about a household's water meter")
    return mark_away(conn, household, until, reason, actor, now,
                     note=f"set from ticket #{ticket_id}")


# --- the services the pages call (one transaction each) ----------------------------------------

def set_mark(db: Database, household_id: str, until: datetime, reason: str, actor: str,
             now: datetime, note: str = "") -> Absence:
    """:func:`mark_away` (audited) in a transaction of its own."""
    with db.transaction() as conn:
        return mark_away(conn, household_id, until, reason, actor, now, note)


def end_mark(db: Database, household_id: str, actor: str, now: datetime) -> bool:
    """:func:`end_absence` (audited) in a transaction of its own."""
    with db.transaction() as conn:
        return end_absence(conn, household_id, actor, now)


def set_mark_for_ticket(db: Database, ticket_id: int, worker_id: str, until: datetime,
                        reason: str, actor: str, now: datetime) -> Absence:
    """:func:`mark_away_for_ticket` (audited) in a transaction of its own."""
    with db.transaction() as conn:
        return mark_away_for_ticket(conn, ticket_id, worker_id, until, reason, actor, now)
