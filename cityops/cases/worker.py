"""What a grid worker's phone may read and do: their own cases and their cell's, nothing else.

The scoping rule is enforced here, in the queries, not only in the page: every read takes the
worker's id and returns only the cases assigned to that worker, or (read-only) the open cases of
the worker's own grid cell; :func:`act` refuses a case that is not the worker's before it changes
anything. The state machine (:mod:`cityops.cases.tickets`) checks again that the case is theirs.

Privacy: nothing here reads the ``households`` table or a reporter's name, phone or e-mail. A
welfare case (care categories ``E08xx``, or a water-meter alert) is shown by its cell and its
device label only: its address is never returned.

The *current limit* of a case is its sign-for limit (``ack_due_at``) while it is dispatched and
its handling limit (``due_at``) once signed for (in progress, postponed, rework).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from cityops.cases import assignment, tickets
from cityops.cases.clock import DEADLINE_SQL
from cityops.cases.photos import Photo
from cityops.cases.tickets import OPEN_STATES, WORKER_STATES, Actor, TransitionError
from cityops.platform.database import Database
from cityops.platform.topics import Topics

Conn = psycopg.Connection[dict[str, Any]]

WELFARE_CATEGORY_PREFIX = "E08"
# Moves the phone page offers, per state (the state machine decides in the end).
PHONE_MOVES: dict[str, tuple[str, ...]] = {
    "dispatched": ("signed_for", "returned"),
    "signed_for": ("in_progress", "returned"),
    "in_progress": ("handled",),
    "postponed": ("in_progress", "handled"),
    "rework": ("in_progress",),
}
POSTPONABLE = tuple(tickets.TRANSITIONS["postponed"].froms)

_CASE_SQL = f"""
SELECT t.id, t.title, t.description, t.category, t.priority, t.status, t.source, t.grid_code,
       g.name AS cell, t.lon, t.lat, t.worker_id, w.name AS worker,
       CASE WHEN t.category LIKE 'E08%%' OR a.kind LIKE 'water\\_%%' THEN NULL
            ELSE t.address END AS address,
       (t.category LIKE 'E08%%' OR coalesce(a.kind LIKE 'water\\_%%', false)) AS welfare,
       t.ack_due_at, t.due_at, t.created_at, t.fixed_on_spot,
       {DEADLINE_SQL},
       a.kind AS alert_kind, a.message AS alert_message, a.source_id AS device_id,
       d.label AS device_label, d.kind AS device_kind,
       p.new_due_at AS postponement_asked
FROM tickets t
LEFT JOIN grids g ON g.code = t.grid_code
LEFT JOIN workers w ON w.id = t.worker_id
LEFT JOIN alerts a ON a.id = t.alert_id
LEFT JOIN devices d ON d.id = a.source_id
LEFT JOIN case_postponements p ON p.ticket_id = t.id AND p.decided_at IS NULL
"""

_ORDER_SQL = """
ORDER BY overdue DESC, array_position(%(ranks)s, priority), deadline NULLS LAST, id
"""


def worker_cell(conn: Conn, worker_id: str) -> str | None:
    """The grid cell a worker belongs to (None: no such worker)."""
    row = conn.execute("SELECT cell_code FROM workers WHERE id = %s", (worker_id,)).fetchone()
    return row["cell_code"].strip() if row else None


def my_tasks(conn: Conn, worker_id: str, now: datetime) -> list[dict[str, Any]]:
    """The worker's cases to act on, most urgent first: overdue ones, then by priority, then by
    the nearest limit."""
    rows = conn.execute(
        f"SELECT * FROM ({_CASE_SQL} WHERE t.worker_id = %(worker)s"
        f" AND t.status = ANY(%(states)s)) s {_ORDER_SQL}",
        {"worker": worker_id, "states": list(WORKER_STATES), "now": now,
         "ranks": list(tickets.PRIORITIES)},
    ).fetchall()
    return list(rows)


def cell_cases(conn: Conn, worker_id: str, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
    """Open cases of the worker's own cell that are not theirs (read-only on the phone)."""
    rows = conn.execute(
        f"SELECT * FROM ({_CASE_SQL} WHERE t.grid_code = (SELECT cell_code FROM workers"
        " WHERE id = %(worker)s) AND t.worker_id IS DISTINCT FROM %(worker)s"
        f" AND t.status = ANY(%(open)s)) s {_ORDER_SQL} LIMIT %(limit)s",
        {"worker": worker_id, "open": list(OPEN_STATES), "now": now,
         "ranks": list(tickets.PRIORITIES), "limit": limit},
    ).fetchall()
    return list(rows)


def case_for_worker(conn: Conn, worker_id: str, ticket_id: int, now: datetime) -> (
    dict[str, Any] | None
):
    """One case as the worker's phone shows it, with ``mine`` (theirs to act on); None when the
    case is neither theirs nor an open case of their cell (or does not exist)."""
    row = conn.execute(
        f"{_CASE_SQL} WHERE t.id = %(id)s AND (t.worker_id = %(worker)s OR"
        " (t.grid_code = (SELECT cell_code FROM workers WHERE id = %(worker)s)"
        "  AND t.status = ANY(%(open)s)))",
        {"id": ticket_id, "worker": worker_id, "open": list(OPEN_STATES), "now": now},
    ).fetchone()
    if row is None:
        return None
    case = dict(row)
    case["mine"] = row["worker_id"] == worker_id
    case["photos"] = [r["id"] for r in conn.execute(
        "SELECT id FROM case_photos WHERE ticket_id = %s ORDER BY id", (ticket_id,))]
    return case


def phone_moves(case: dict[str, Any]) -> list[str]:
    """The moves the phone offers for a case of the worker's own (none for a cell case)."""
    if not case.get("mine"):
        return []
    allowed = set(tickets.allowed_next(case["status"], "grid_worker"))
    return [m for m in PHONE_MOVES.get(case["status"], ()) if m in allowed]


def _own_case(conn: Conn, ticket_id: int, actor: Actor) -> None:
    """Refuse (TransitionError) unless the case exists and is the acting worker's."""
    if actor.role != "grid_worker" or not actor.worker_id:
        raise TransitionError("only a grid worker acts from the phone page")
    row = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    if row is None:
        raise TransitionError(f"case {ticket_id} does not exist")
    if row["worker_id"] != actor.worker_id:
        raise TransitionError(f"case {ticket_id} is not assigned to you")


def act(
    conn: Conn,
    ticket_id: int,
    to_status: str,
    actor: Actor,
    topics: Topics,
    note: str = "",
    photos: Sequence[Photo] = (),
) -> list[int]:
    """The worker moves their own case (sign for, in progress, handled, returned), with photos
    stored first and listed on the event; return the photo ids. Raises
    TransitionError (the reason a person can act on) or ValueError (a photo refused)."""
    _own_case(conn, ticket_id, actor)
    status = _status(conn, ticket_id)
    if to_status not in PHONE_MOVES.get(status, ()):
        moves = ", ".join(PHONE_MOVES.get(status, ())) or "nothing"
        raise TransitionError(f"case {ticket_id} is {status}; it cannot become {to_status}"
                              f" (allowed: {moves})")
    ids = [tickets.add_photo(conn, ticket_id, p.data, p.content_type, actor.name)
           for p in photos]
    assignment.change_ticket(conn, ticket_id, to_status, actor, topics, note, photos=ids)
    return ids


def _status(conn: Conn, ticket_id: int) -> str:
    row = conn.execute("SELECT status FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    return str(row["status"]) if row else ""


def ask_for_time(
    conn: Conn, ticket_id: int, actor: Actor, new_due_at: datetime, reason: str
) -> int:
    """The worker asks for more time on their own case (operations decide)."""
    _own_case(conn, ticket_id, actor)
    return tickets.request_postponement(conn, ticket_id, actor, new_due_at, reason)


def record_position(conn: Conn, worker_id: str, lon: float, lat: float, at: datetime) -> None:
    """Store the worker's last position (urgent cases go to the nearest available worker)."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"not a position: {lon}, {lat}")
    conn.execute(
        "UPDATE workers SET last_lon = %s, last_lat = %s, position_at = %s WHERE id = %s",
        (lon, lat, at, worker_id),
    )


# --- the services the phone page calls (one transaction each) ----------------------------------

def move_own_case(db: Database, ticket_id: int, to_status: str, actor: Actor, topics: Topics,
                  note: str = "", photos: Sequence[Photo] = ()) -> list[int]:
    """:func:`act` in a transaction of its own."""
    with db.transaction() as conn:
        return act(conn, ticket_id, to_status, actor, topics, note, photos)


def ask_more_time(db: Database, ticket_id: int, actor: Actor, new_due_at: datetime,
                  reason: str) -> int:
    """:func:`ask_for_time` in a transaction of its own."""
    with db.transaction() as conn:
        return ask_for_time(conn, ticket_id, actor, new_due_at, reason)


def report_position(db: Database, worker_id: str, lon: float, lat: float, at: datetime) -> None:
    """:func:`record_position` in a transaction of its own."""
    with db.transaction() as conn:
        record_position(conn, worker_id, lon, lat, at)
