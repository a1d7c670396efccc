"""Dispatch by grid cell: place a case in the cell that contains it and assign a worker.

The rule (docs/cases.md, "Dispatch by grid"; each assignment records why, as an event):

1. the cell is the finest grid cell (community) containing the case's location;
2. an urgent case (priority ``urgent``) goes to the nearest available worker on duty in the case's
   street: the distance from the worker's last position sent by the phone when it is at most
   30 minutes old, else from the centre of the worker's cell;
3. any other case goes to the workers of its cell on duty at that time (weekly roster, local
   time), the one with the fewest cases in hand (ties: lowest worker id);
4. if none is available there, the same among the other communities of its responsibility grid,
   then of its street centre;
5. workers with ``cases.max_open_per_worker`` cases in hand are overloaded and skipped, and so is a
   worker who returned the case (wrong owner); the reason names whom the rule skipped and why;
6. if still nobody, the case stays as it is (registered or returned) with the reason, for the
   operations centre to dispatch by hand (:func:`dispatch_to`).

On dispatch the sign-for and handling limits are set from the dispatch time (:class:`CaseClock`).
A dispatch is written to the ``dispatches`` outbox in the same transaction as the assignment; the
notifier sends it over MQTT afterwards, so a crash in between loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cityops.cases import outbox
from cityops.cases.clock import CaseClock
from cityops.cases.tickets import WORKER_STATES, Actor, TransitionError, record_event, transition
from cityops.org.geo import distance_m
from cityops.org.grids import GridIndex
from cityops.platform.topics import Topics

DISPATCHABLE = ("registered", "returned")
POSITION_FRESH = timedelta(minutes=30)  # an older phone position is not used: the cell's centre

ON_DUTY_SQL = """
WITH t AS (SELECT (%(at)s::timestamptz AT TIME ZONE %(tz)s) AS local)
SELECT w.id, w.cell_code, s.starts, s.ends, w.last_lon, w.last_lat, w.position_at,
       g.centroid_lon, g.centroid_lat,
       (SELECT count(*) FROM tickets k WHERE k.worker_id = w.id
                                          AND k.status = ANY(%(open)s)) AS open_tickets
FROM workers w JOIN shifts s ON s.worker_id = w.id JOIN grids g ON g.code = w.cell_code, t
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
    """Who got a case and why (worker_id None: nobody available)."""

    ticket_id: int
    grid_code: str | None
    worker_id: str | None
    reason: str


def on_duty(
    conn: psycopg.Connection[Any], cells: list[str], at: datetime, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Workers of these cells on duty at ``at``, fewest cases in hand first (``open_tickets``:
    cases in the worker states)."""
    return list(
        conn.execute(
            ON_DUTY_SQL, {"at": at, "tz": tz.key, "cells": cells, "open": list(WORKER_STATES)}
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
            steps.append((f"nobody available in {cell}; least loaded on duty in {level} {parent}",
                          cells))
    return steps


def _street_cells(index: GridIndex, cell: str) -> tuple[str, list[str]]:
    """The street (or the highest level below the district) containing ``cell``, and its leaves."""
    chain = index.ancestors(cell)
    street = cell
    for code in chain[1:]:
        if index.cells[code].level == "district":
            break
        street = code
    return street, _leaves_under(index, street)


def _leaves_under(index: GridIndex, code: str) -> list[str]:
    children = index.children(code)
    if not children:
        return [code]
    return [leaf for child in children for leaf in _leaves_under(index, child)]


def _returned_by(conn: psycopg.Connection[Any], ticket_id: int) -> set[str]:
    """Workers who returned this case (wrong owner): not chosen again by the rule."""
    rows = conn.execute(
        "SELECT DISTINCT w.id FROM ticket_events e JOIN workers w"
        " ON w.username = e.actor OR e.note LIKE '%%(was ' || w.id || ')'"
        " WHERE e.ticket_id = %s AND e.to_status = 'returned'",
        (ticket_id,),
    ).fetchall()
    return {r["id"] for r in rows}


def _available(
    workers: list[dict[str, Any]], limit: int, returned: set[str], skipped: list[str]
) -> list[dict[str, Any]]:
    """The workers not overloaded and not among those who returned the case; the others are
    added to ``skipped`` with why."""
    keep = []
    for w in workers:
        if w["id"] in returned:
            skipped.append(f"{w['id']} returned the case")
        elif w["open_tickets"] >= limit:
            skipped.append(f"{w['id']} overloaded ({w['open_tickets']} cases in hand,"
                           f" limit {limit})")
        else:
            keep.append(w)
    return keep


def _nearest(
    workers: list[dict[str, Any]], lon: float, lat: float, at: datetime, tz: ZoneInfo
) -> tuple[dict[str, Any], float, str]:
    """The worker nearest the point, the distance in metres and where it was measured from."""
    best: tuple[dict[str, Any], float, str] | None = None
    for w in workers:
        fresh = (w["position_at"] is not None and w["last_lon"] is not None
                 and w["last_lat"] is not None and at - POSITION_FRESH <= w["position_at"])
        if fresh:
            metres = distance_m(w["last_lon"], w["last_lat"], lon, lat)
            whence = f"last position {w['position_at'].astimezone(tz):%H:%M %Z}"
        else:
            metres = distance_m(w["centroid_lon"], w["centroid_lat"], lon, lat)
            whence = f"centre of cell {w['cell_code']} (no position in the last 30 min)"
        if best is None or metres < best[1] or (metres == best[1] and w["id"] < best[0]["id"]):
            best = (w, metres, whence)
    assert best is not None
    return best


def _skips(skipped: list[str]) -> str:
    return f"; skipped {', '.join(skipped)}" if skipped else ""


def assign_ticket(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    index: GridIndex,
    clock: CaseClock,
    topics: Topics,
    at: datetime,
) -> Assignment:
    """Dispatch a ``registered`` or ``returned`` case by the rule of the module docstring: place
    it in its cell, assign the worker the rule picks, set its sign-for and handling limits from
    ``at``, queue the notification. Raises TransitionError for a case in another state."""
    ticket = conn.execute(
        "SELECT id, status, lon, lat, grid_code, priority, category, call_type FROM tickets"
        " WHERE id = %s FOR UPDATE",
        (ticket_id,),
    ).fetchone()
    if ticket is None:
        raise ValueError(f"ticket {ticket_id} does not exist")
    if ticket["status"] not in DISPATCHABLE:
        raise TransitionError(
            f"ticket {ticket_id} is {ticket['status']}; only a registered or returned case is"
            " dispatched"
        )
    cell = ticket["grid_code"]
    located = ticket["lon"] is not None and ticket["lat"] is not None
    if located:
        cell = index.locate(ticket["lon"], ticket["lat"]) or cell
    if cell is None or cell not in index.cells:
        reason = "the location is outside every grid cell; dispatch by hand"
        _note_unassigned(conn, ticket_id, ticket["status"], reason)
        return Assignment(ticket_id, None, None, reason)
    conn.execute("UPDATE tickets SET grid_code = %s WHERE id = %s", (cell, ticket_id))
    limit = clock.cases.max_open_per_worker
    returned = _returned_by(conn, ticket_id) if ticket["status"] == "returned" else set()
    skipped: list[str] = []
    if ticket["priority"] == "urgent":
        street, cells = _street_cells(index, cell)
        workers = _available(on_duty(conn, cells, at, clock.tz), limit, returned, skipped)
        if workers:
            if located:
                lon, lat = ticket["lon"], ticket["lat"]
            else:
                row = conn.execute("SELECT centroid_lon, centroid_lat FROM grids WHERE code = %s",
                                   (cell,)).fetchone()
                assert row is not None
                lon, lat = row["centroid_lon"], row["centroid_lat"]
            chosen, metres, whence = _nearest(workers, lon, lat, at, clock.tz)
            reason = (f"urgent: nearest available on duty in street {street}: {chosen['id']},"
                      f" {metres:.0f} m away (from the {whence}; {chosen['open_tickets']} cases"
                      f" in hand){_skips(skipped)}")
            return _dispatch(conn, ticket, cell, chosen["id"], reason, Actor.system(), clock,
                             topics, at)
    else:
        for step, cells in _candidates(index, cell):
            workers = _available(on_duty(conn, cells, at, clock.tz), limit, returned, skipped)
            if workers:
                chosen = workers[0]
                reason = (
                    f"{step}: {chosen['id']} (shift {chosen['starts']:%H:%M}-"
                    f"{chosen['ends']:%H:%M}, {chosen['open_tickets']} cases in hand)"
                    f"{_skips(skipped)}"
                )
                return _dispatch(conn, ticket, cell, chosen["id"], reason, Actor.system(),
                                 clock, topics, at)
    local = at.astimezone(clock.tz)
    reason = (f"nobody available in {cell} or its street at {local:%Y-%m-%d %H:%M %Z}"
              f"{_skips(skipped)}; dispatch by hand")
    _note_unassigned(conn, ticket_id, ticket["status"], reason)
    return Assignment(ticket_id, cell, None, reason)


def dispatch_to(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    worker_id: str,
    actor: Actor,
    clock: CaseClock,
    topics: Topics,
    at: datetime,
    note: str = "",
) -> Assignment:
    """Operations dispatch a ``registered`` or ``returned`` case by hand to an active worker;
    the limits and the notification as for :func:`assign_ticket`."""
    if actor.role not in ("operations", "admin"):
        raise TransitionError(f"a {actor.role} cannot dispatch a case")
    ticket = conn.execute(
        "SELECT id, status, grid_code, priority, category, call_type FROM tickets"
        " WHERE id = %s FOR UPDATE",
        (ticket_id,),
    ).fetchone()
    if ticket is None:
        raise TransitionError(f"ticket {ticket_id} does not exist")
    if ticket["status"] not in DISPATCHABLE:
        raise TransitionError(
            f"ticket {ticket_id} is {ticket['status']}; only a registered or returned case is"
            " dispatched"
        )
    worker = conn.execute(
        "SELECT id, active FROM workers WHERE id = %s", (worker_id,)
    ).fetchone()
    if worker is None or not worker["active"]:
        raise TransitionError(f"{worker_id} is not an active grid worker")
    reason = f"dispatched by hand by {actor.name}: {worker_id}" + (
        f" ({note.strip()})" if note.strip() else "")
    return _dispatch(conn, ticket, ticket["grid_code"], worker_id, reason, actor, clock, topics,
                     at)


def _dispatch(
    conn: psycopg.Connection[Any],
    ticket: dict[str, Any],
    cell: str | None,
    worker_id: str,
    reason: str,
    actor: Actor,
    clock: CaseClock,
    topics: Topics,
    at: datetime,
) -> Assignment:
    ticket_id = int(ticket["id"])
    urgent = ticket["priority"] == "urgent"
    ack_due = clock.sign_due(at, urgent)
    due = clock.handle_due(at, ticket["category"], urgent, ticket["call_type"])
    conn.execute(
        "UPDATE tickets SET worker_id = %s, assigned_reason = %s, ack_due_at = %s, due_at = %s"
        " WHERE id = %s",
        (worker_id, reason, ack_due, due, ticket_id),
    )
    record_event(conn, ticket_id, actor.name, ticket["status"], ticket["status"], reason,
                 kind="assignment", role=actor.role)
    transition(conn, ticket_id, "dispatched", actor, f"to {worker_id}")
    outbox.queue_worker_update(conn, worker_id, topics, ticket_id, "dispatched")
    return Assignment(ticket_id, cell, worker_id, reason)


def _note_unassigned(
    conn: psycopg.Connection[Any], ticket_id: int, status: str, reason: str
) -> None:
    conn.execute("UPDATE tickets SET assigned_reason = %s WHERE id = %s", (reason, ticket_id))
    record_event(conn, ticket_id, "system", status, status, f"not dispatched: {reason}",
                 kind="assignment", role="system")


def change_ticket(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    to_status: str,
    actor: Actor,
    topics: Topics,
    note: str = "",
    photos: Sequence[int] = (),
) -> None:
    """A person moves a case (sign for, start, handle, verify, close ...); the assigned worker's
    task list on their phone is refreshed through the outbox (also the worker who returned it).
    Raises TransitionError if refused."""
    before = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    transition(conn, ticket_id, to_status, actor, note, photos)
    row = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    worker = (row and row["worker_id"]) or (before and before["worker_id"])
    if worker:
        outbox.queue_worker_update(conn, worker, topics, ticket_id, to_status)
