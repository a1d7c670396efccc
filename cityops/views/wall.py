"""The wall screen's read model: vital signs, open alerts, alerts per cell, the ticket board and
the flood view.

No resident's personal details: alert messages and device labels are device-based, and nothing
here reads the ``households`` table. A case is *overdue* when the limit of its current stage has
passed (:data:`cityops.cases.clock.DEADLINE_SQL`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cityops.cases.clock import DEADLINE_SQL
from cityops.cases.tickets import OPEN_STATES, PRIORITIES
from cityops.flood.events import current_flood
from cityops.flood.key_sites import key_sites
from cityops.org.grids import cell_shapes
from cityops.platform.database import Database
from cityops.platform.topics import DEVICE_KINDS
from cityops.sensing.alerts import SEVERITIES

Conn = psycopg.Connection[dict[str, Any]]


def wall_snapshot(
    conn: Conn, now: datetime, *, alert_limit: int = 200, board_limit: int = 12
) -> dict[str, Any]:
    """Everything the wall screen shows that changes: vital signs, open alerts (newest first,
    with their ticket), open alerts per cell, and the ticket board."""
    return {
        "vitals": vital_signs(conn, now),
        "alerts": open_alerts(conn, limit=alert_limit),
        "alerts_by_cell": alerts_by_cell(conn),
        "board": ticket_board(conn, now, limit=board_limit),
    }


def vital_signs(conn: Conn, now: datetime) -> dict[str, Any]:
    """Sensors online by kind, unresolved alerts by severity, open/overdue tickets, readings."""
    sensors = {kind: {"kind": kind, "online": 0, "total": 0} for kind in DEVICE_KINDS}
    for row in conn.execute(
        "SELECT kind, count(*) FILTER (WHERE online) AS online, count(*) AS total"
        " FROM devices GROUP BY kind"
    ):
        sensors[row["kind"]] = {"kind": row["kind"], "online": row["online"], "total": row["total"]}
    alerts = dict.fromkeys(SEVERITIES, 0)
    for row in conn.execute(
        "SELECT severity, count(*) AS n FROM alerts WHERE status <> 'resolved' GROUP BY severity"
    ):
        alerts[row["severity"]] = row["n"]
    tickets = conn.execute(
        f"SELECT count(*) AS open, count(*) FILTER (WHERE overdue) AS overdue FROM ("
        f"  SELECT {DEADLINE_SQL} FROM tickets t WHERE t.status = ANY(%(open)s)) s",
        {"now": now, "open": list(OPEN_STATES)},
    ).fetchone()
    readings = conn.execute(
        "SELECT count(*) AS n, max(ts) AS latest FROM readings WHERE ts > %s AND ts <= %s",
        (now - timedelta(hours=1), now),
    ).fetchone()
    heard = conn.execute("SELECT max(last_seen) AS at FROM devices").fetchone()
    assert tickets is not None and readings is not None and heard is not None
    return {
        "sensors": list(sensors.values()),
        "sensors_online": sum(s["online"] for s in sensors.values()),
        "sensors_total": sum(s["total"] for s in sensors.values()),
        "alerts_by_severity": alerts,
        "alerts_open": sum(alerts.values()),
        "tickets_open": tickets["open"],
        "tickets_overdue": tickets["overdue"],
        "readings_last_hour": readings["n"],
        "latest_reading_at": readings["latest"],
        "last_heard_at": heard["at"],
    }


def open_alerts(conn: Conn, limit: int = 200) -> list[dict[str, Any]]:
    """Unresolved alerts, most recently seen first, with the cell name and the ticket id."""
    return list(
        conn.execute(
            """
            SELECT a.id, a.kind, a.severity, a.status, a.message, a.grid_code, g.name AS cell,
                   a.lon, a.lat, a.first_seen, a.last_seen, a.occurrences, t.id AS ticket_id
            FROM alerts a
            LEFT JOIN grids g ON g.code = a.grid_code
            LEFT JOIN tickets t ON t.alert_id = a.id
            WHERE a.status <> 'resolved'
            ORDER BY a.last_seen DESC, a.id DESC
            LIMIT %s
            """,
            (limit,),
        ).fetchall()
    )


def alerts_by_cell(conn: Conn) -> dict[str, int]:
    """Number of unresolved alerts per grid cell code (cells without alerts are absent)."""
    return {
        row["grid_code"]: row["n"]
        for row in conn.execute(
            "SELECT grid_code, count(*) AS n FROM alerts"
            " WHERE status <> 'resolved' AND grid_code IS NOT NULL GROUP BY grid_code"
        )
    }


def ticket_board(conn: Conn, now: datetime, limit: int = 12) -> dict[str, Any]:
    """Open tickets: counts by status, and the most pressing ones (overdue, urgent, soonest due)."""
    counts = dict.fromkeys(OPEN_STATES, 0)
    for row in conn.execute(
        "SELECT status, count(*) AS n FROM tickets WHERE status = ANY(%s) GROUP BY status",
        (list(OPEN_STATES),),
    ):
        counts[row["status"]] = row["n"]
    rows = conn.execute(
        f"""
        SELECT * FROM (
            SELECT t.id, t.title, t.priority, t.status, t.grid_code, g.name AS cell,
                   t.worker_id, w.name AS worker, t.created_at, {DEADLINE_SQL}
            FROM tickets t
            LEFT JOIN grids g ON g.code = t.grid_code
            LEFT JOIN workers w ON w.id = t.worker_id
            WHERE t.status = ANY(%(open)s)) s
        ORDER BY overdue DESC, array_position(%(ranks)s, priority), deadline NULLS LAST, id
        LIMIT %(limit)s
        """,
        {"now": now, "open": list(OPEN_STATES), "ranks": list(PRIORITIES), "limit": limit},
    ).fetchall()
    return {"counts": counts, "total": sum(counts.values()), "rows": list(rows)}


def flood_state(conn: Conn, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The flood going on (``flood``: :func:`cityops.flood.events.current_flood`, or None) and,
    while there is one, the other open alerts (``others``; a low flood alert, a river's action
    stage, is not part of the flood and is listed with them)."""
    flood = current_flood(conn, now, tz)
    others = ([a for a in open_alerts(conn, limit=100)
               if a["kind"] != "flood_depth" or a["severity"] == "low"] if flood else [])
    return {"flood": flood, "others": others}


def read_wall(db: Database, now: datetime, tz: ZoneInfo, *, board_limit: int) -> dict[str, Any]:
    """Everything the wall draws at first: the community cells (``cells``), the snapshot
    (``snapshot``) and the flood view with the key sites (``flood``: ``sites``, ``flood``,
    ``others``), read in one transaction."""
    with db.transaction() as conn:
        return {"cells": cell_shapes(conn),
                "snapshot": wall_snapshot(conn, now, board_limit=board_limit),
                "flood": {"sites": key_sites(conn), **flood_state(conn, now, tz)}}


def read_snapshot(db: Database, now: datetime, *, board_limit: int) -> dict[str, Any]:
    """:func:`wall_snapshot` (the wall's refresh)."""
    with db.transaction() as conn:
        return wall_snapshot(conn, now, board_limit=board_limit)


def read_flood(db: Database, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """:func:`flood_state` (the flood view's refresh)."""
    with db.transaction() as conn:
        return flood_state(conn, now, tz)
