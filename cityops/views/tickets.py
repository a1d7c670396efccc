"""The ticket page's read model: a case with its limits, alert, timeline, cameras and workers.

No reporter's or resident's personal details.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import psycopg

from cityops.cases.assignment import DISPATCHABLE
from cityops.cases.clock import DEADLINE_SQL
from cityops.cases.tickets import WORKER_STATES
from cityops.platform.database import Database
from cityops.views.water import water_day_chart

Conn = psycopg.Connection[dict[str, Any]]


def ticket_detail(conn: Conn, ticket_id: int, now: datetime) -> dict[str, Any] | None:
    """A case with its cell, worker, limits (``case_address``: where the problem is, as filed),
    the postponement waiting for a decision (None or
    requested_by, requested_at, new_due_at as ISO text, reason), its alert and its timeline (oldest
    event first: at, actor, role, kind, from and to state, note, photo ids). No reporter's
    personal details."""
    ticket = conn.execute(
        f"""
        SELECT t.id, t.title, t.description, t.category, t.priority, t.status, t.grid_code,
               g.name AS cell, t.worker_id, w.name AS worker, t.assigned_reason, t.lon, t.lat,
               t.created_at, t.updated_at, t.dispatch_due_at, t.ack_due_at, t.due_at,
               t.closed_at, t.alert_id, t.source, t.call_type,
               t.address AS case_address, t.unit,
               t.reported_by, t.fixed_on_spot, t.handled_by, t.handled_at, t.verified_by,
               t.verified_at, t.duplicate_of, t.key_site_id,
               (SELECT row_to_json(p) FROM (
                    SELECT requested_by, requested_at, new_due_at, reason
                    FROM case_postponements
                    WHERE ticket_id = t.id AND decided_at IS NULL) p) AS postponement,
               {DEADLINE_SQL}
        FROM tickets t
        LEFT JOIN grids g ON g.code = t.grid_code
        LEFT JOIN workers w ON w.id = t.worker_id
        WHERE t.id = %(id)s
        """,
        {"id": ticket_id, "now": now},
    ).fetchone()
    if ticket is None:
        return None
    alert = None
    if ticket["alert_id"] is not None:
        alert = conn.execute(
            "SELECT id, kind, severity, status, message, source_id, first_seen, last_seen,"
            " occurrences FROM alerts WHERE id = %s",
            (ticket["alert_id"],),
        ).fetchone()
    events = conn.execute(
        "SELECT at, actor, from_status, to_status, note, kind, role, photos FROM ticket_events"
        " WHERE ticket_id = %s ORDER BY at, id",
        (ticket_id,),
    ).fetchall()
    return {**ticket, "alert": alert, "events": list(events)}


def ticket_worker(conn: Conn, ticket_id: int) -> str | None:
    """The worker a ticket is assigned to (None when unassigned or no such ticket)."""
    row = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    return row["worker_id"] if row else None


def cell_workers(conn: Conn, cell_code: str | None) -> list[dict[str, Any]]:
    """Active workers of a cell with how many cases they have in hand (dispatch by hand)."""
    if cell_code is None:
        return []
    return list(
        conn.execute(
            """
            SELECT w.id, w.name, (SELECT count(*) FROM tickets k WHERE k.worker_id = w.id
                                  AND k.status = ANY(%s)) AS in_hand
            FROM workers w WHERE w.active AND w.cell_code = %s ORDER BY w.id
            """,
            (list(WORKER_STATES), cell_code),
        ).fetchall()
    )


def ticket_cameras(conn: Conn, ticket_id: int) -> list[dict[str, Any]]:
    """Cameras near the place of a ticket's alert, nearest first, as listed in the alert's
    details when the detector raised it (flood alerts: within 300 m; empty for other kinds)."""
    row = conn.execute(
        "SELECT a.details -> 'cameras' AS cameras FROM tickets t JOIN alerts a ON a.id = t.alert_id"
        " WHERE t.id = %s",
        (ticket_id,),
    ).fetchone()
    cameras = row["cameras"] if row else None
    return [
        {"id": c["id"], "label": c["label"], "distance_m": c["distance_m"],
         "stream_url": c.get("stream_url")}
        for c in cameras or []
    ]


def read_ticket(db: Database, ticket_id: int, now: datetime, tz: tzinfo) -> dict[str, Any] | None:
    """:func:`ticket_detail` with what the page shows beside it: the ``cameras`` near a flood
    alert, the ``water_chart`` of a water-meter alert (:func:`cityops.views.water.water_day_chart`)
    and, for a case waiting for dispatch by hand, the ``cell_workers`` to choose from."""
    with db.transaction() as conn:
        ticket = ticket_detail(conn, ticket_id, now)
        if ticket is None:
            return None
        alert = ticket["alert"]
        ticket["cameras"] = (ticket_cameras(conn, ticket_id)
                             if alert and alert["kind"] == "flood_depth" else [])
        ticket["water_chart"] = (water_day_chart(conn, alert["source_id"], now, tz)
                                 if alert and alert["kind"].startswith("water_") else None)
        by_hand = ticket["status"] in DISPATCHABLE and not ticket["worker_id"]
        ticket["cell_workers"] = cell_workers(conn, ticket["grid_code"]) if by_hand else []
    return ticket


def read_ticket_worker(db: Database, ticket_id: int) -> str | None:
    """:func:`ticket_worker` (who may open a grid worker's case)."""
    with db.transaction() as conn:
        return ticket_worker(conn, ticket_id)
