"""Dispatch by grid cell: place a ticket in the cell that contains it and assign a worker.

The rule (each assignment records which step chose the worker):

1. the cell is the finest grid cell (community) containing the ticket's location;
2. among the workers of that cell on duty at the ticket's time (weekly roster, local time),
   the one with the fewest open tickets (ties: lowest worker id);
3. if none is on duty there, the same among the other communities of its responsibility grid,
   then of its street centre;
4. if still nobody, the ticket stays ``new`` with the reason, for the operations centre.

A dispatch is written to the ``dispatches`` outbox in the same transaction as the assignment; the
notifier sends it over MQTT afterwards, so a crash in between loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cityops.grids import GridIndex
from cityops.tickets import OPEN_STATES, Actor, record_event, transition
from cityops.topics import Topics

ON_DUTY_SQL = """
WITH t AS (SELECT (%(at)s::timestamptz AT TIME ZONE %(tz)s) AS local)
SELECT w.id, w.cell_code, s.starts, s.ends,
       (SELECT count(*) FROM tickets k WHERE k.worker_id = w.id
                                          AND k.status = ANY(%(open)s)) AS open_tickets
FROM workers w JOIN shifts s ON s.worker_id = w.id, t
WHERE w.active AND w.cell_code = ANY(%(cells)s) AND (
      (s.starts < s.ends AND s.weekday = extract(isodow FROM t.local)
           AND t.local::time >= s.starts AND t.local::time < s.ends)
   OR (s.starts > s.ends AND s.weekday = extract(isodow FROM t.local)
           AND t.local::time >= s.starts)
   OR (s.starts > s.ends AND s.weekday = extract(isodow FROM t.local - interval '1 day')
           AND t.local::time < s.ends))
ORDER BY open_tickets, w.id
"""


@dataclass(frozen=True)
class Assignment:
    """Who got a ticket and why (worker_id None: nobody on duty)."""

    ticket_id: int
    grid_code: str | None
    worker_id: str | None
    reason: str


def on_duty(
    conn: psycopg.Connection[Any], cells: list[str], at: datetime, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Workers of these cells on duty at ``at``, least loaded first."""
    return list(
        conn.execute(
            ON_DUTY_SQL, {"at": at, "tz": tz.key, "cells": cells, "open": list(OPEN_STATES)}
        ).fetchall()
    )


def _candidates(index: GridIndex, cell: str) -> list[tuple[str, list[str]]]:
    """(step description, cells) in the order the rule tries them."""
    steps = [(f"on duty in cell {cell}", [cell])]
    chain = index.ancestors(cell)
    for parent in chain[1:]:
        level = index.cells[parent].level
        if level == "district":
            break
        cells = [c for c in _leaves_under(index, parent) if c != cell]
        if cells:
            steps.append((f"nobody on duty in {cell}; nearest on duty in {level} {parent}", cells))
    return steps


def _leaves_under(index: GridIndex, code: str) -> list[str]:
    children = index.children(code)
    if not children:
        return [code]
    return [leaf for child in children for leaf in _leaves_under(index, child)]


def assign_ticket(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    index: GridIndex,
    tz: ZoneInfo,
    topics: Topics,
    at: datetime,
) -> Assignment:
    """Place a ``new`` ticket in its cell, assign the worker the rule picks, queue the dispatch."""
    ticket = conn.execute(
        "SELECT id, lon, lat, grid_code FROM tickets WHERE id = %s", (ticket_id,)
    ).fetchone()
    if ticket is None:
        raise ValueError(f"ticket {ticket_id} does not exist")
    cell = ticket["grid_code"]
    if ticket["lon"] is not None and ticket["lat"] is not None:
        cell = index.locate(ticket["lon"], ticket["lat"]) or cell
    if cell is None:
        reason = "the location is outside every grid cell; assign by hand"
        _note_unassigned(conn, ticket_id, reason)
        return Assignment(ticket_id, None, None, reason)
    conn.execute("UPDATE tickets SET grid_code = %s WHERE id = %s", (cell, ticket_id))
    for step, cells in _candidates(index, cell):
        workers = on_duty(conn, cells, at, tz)
        if workers:
            chosen = workers[0]
            reason = (
                f"{step}: {chosen['id']} (shift {chosen['starts']:%H:%M}-{chosen['ends']:%H:%M},"
                f" {chosen['open_tickets']} open tickets)"
            )
            conn.execute(
                "UPDATE tickets SET worker_id = %s, assigned_reason = %s WHERE id = %s",
                (chosen["id"], reason, ticket_id),
            )
            transition(conn, ticket_id, "dispatched", Actor.system(), reason)
            queue_worker_update(conn, chosen["id"], topics, ticket_id, "dispatched")
            return Assignment(ticket_id, cell, chosen["id"], reason)
    reason = f"nobody on duty in {cell} or its street at {at:%Y-%m-%d %H:%M %Z}"
    _note_unassigned(conn, ticket_id, reason)
    return Assignment(ticket_id, cell, None, reason)


def _note_unassigned(conn: psycopg.Connection[Any], ticket_id: int, reason: str) -> None:
    conn.execute("UPDATE tickets SET assigned_reason = %s WHERE id = %s", (reason, ticket_id))
    record_event(conn, ticket_id, "system", "new", "new", f"not dispatched: {reason}")


def worker_tasks(conn: psycopg.Connection[Any], worker_id: str) -> list[dict[str, Any]]:
    """A worker's open tickets as sent to the phone (no resident's personal details)."""
    rows = conn.execute(
        """
        SELECT t.id, t.title, t.description, t.priority, t.status, t.grid_code, g.name AS cell,
               t.lon, t.lat, t.ack_due_at, t.due_at, t.created_at
        FROM tickets t LEFT JOIN grids g ON g.code = t.grid_code
        WHERE t.worker_id = %s AND t.status = ANY(%s)
        ORDER BY (t.priority = 'urgent') DESC, t.due_at, t.id
        """,
        (worker_id, [s for s in OPEN_STATES if s != "new"]),
    ).fetchall()
    return [
        {
            "ticket_id": r["id"], "title": r["title"], "what": r["description"],
            "priority": r["priority"], "status": r["status"], "cell": r["cell"],
            "grid_code": r["grid_code"], "lon": r["lon"], "lat": r["lat"],
            "ack_due_at": _iso(r["ack_due_at"]), "due_at": _iso(r["due_at"]),
        }
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def queue_worker_update(
    conn: psycopg.Connection[Any], worker_id: str, topics: Topics, ticket_id: int, event: str
) -> int:
    """Queue the worker's current open-task list (retained on their topic) in the outbox."""
    payload = {
        "worker_id": worker_id,
        "event": {"type": event, "ticket_id": ticket_id},
        "tasks": worker_tasks(conn, worker_id),
    }
    row = conn.execute(
        "INSERT INTO dispatches (ticket_id, worker_id, topic, payload) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (ticket_id, worker_id, topics.dispatch(worker_id), json.dumps(payload)),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def change_ticket(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    to_status: str,
    actor: Actor,
    topics: Topics,
    note: str = "",
) -> None:
    """A person moves a ticket (acknowledge, arrive, resolve, close ...); the assigned worker's
    task list on their phone is refreshed through the outbox. Raises TransitionError if refused."""
    transition(conn, ticket_id, to_status, actor, note)
    row = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    if row is not None and row["worker_id"]:
        queue_worker_update(conn, row["worker_id"], topics, ticket_id, to_status)
