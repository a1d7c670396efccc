"""Read-side queries for the web app: plain dicts and lists, no SQL outside this module.

Every function takes a psycopg connection with dict rows (``cityops.platform.db.connect`` or a
connection from ``cityops.platform.db.make_pool``) and the current time where the answer depends on
it, so results are reproducible in tests.

Privacy: the wall-screen, ticket and worker queries never read the ``households`` table; alert
messages and device labels are device-based. Only :func:`elderly_alone_water_alerts` returns
residents' personal details, and the caller must write each view of it to the audit log.

A case is *overdue* when the limit of its current stage has passed: ``dispatch_due_at`` while it
waits to be accepted, registered and dispatched (``reported``, ``accepted``, ``registered``,
``returned``), ``ack_due_at`` while it waits to be signed for (``dispatched``), ``due_at`` while it
is being handled (``signed_for``, ``in_progress``, ``postponed``, ``rework``). A ``handled`` case
waits for verification and a ``verified`` one for closing: no limit runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

import psycopg

from cityops.cases.tickets import OPEN_STATES, WORKER_STATES
from cityops.platform.topics import DEVICE_KINDS
from cityops.sensing.alerts import SEVERITIES

Conn = psycopg.Connection[dict[str, Any]]

PRIORITY_ORDER = ["urgent", "normal", "low"]
# The stage whose limit runs, by state (see the module docstring).
STAGE_STATES = {
    "dispatch": ("reported", "accepted", "registered", "returned"),
    "sign": ("dispatched",),
    "handle": ("signed_for", "in_progress", "postponed", "rework"),
}
_IN = {stage: ", ".join(f"'{s}'" for s in states) for stage, states in STAGE_STATES.items()}
_DEADLINE = f"""CASE WHEN t.status IN ({_IN['dispatch']}) THEN t.dispatch_due_at
         WHEN t.status IN ({_IN['sign']}) THEN t.ack_due_at
         WHEN t.status IN ({_IN['handle']}) THEN t.due_at END"""

# The deadline that matters now, its stage, and whether it has passed.
DEADLINE_SQL = f"""
    {_DEADLINE} AS deadline,
    CASE WHEN t.status IN ({_IN['dispatch']}) THEN 'dispatch'
         WHEN t.status IN ({_IN['sign']}) THEN 'sign'
         WHEN t.status IN ({_IN['handle']}) THEN 'handle' END AS deadline_kind,
    coalesce({_DEADLINE} < %(now)s, false) AS overdue
"""


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
        {"now": now, "open": list(OPEN_STATES), "ranks": PRIORITY_ORDER, "limit": limit},
    ).fetchall()
    return {"counts": counts, "total": sum(counts.values()), "rows": list(rows)}


def cell_shapes(
    conn: Conn, level: str = "community", codes: list[str] | None = None
) -> list[dict[str, Any]]:
    """Cells of one level (or the given codes) with their GeoJSON geometry and centroid."""
    if codes is not None:
        cursor = conn.execute(
            "SELECT code, name, level, geometry, centroid_lon, centroid_lat FROM grids"
            " WHERE code = ANY(%s) ORDER BY code",
            (codes,),
        )
    else:
        cursor = conn.execute(
            "SELECT code, name, level, geometry, centroid_lon, centroid_lat FROM grids"
            " WHERE level = %s ORDER BY code",
            (level,),
        )
    return list(cursor.fetchall())


def ticket_worker(conn: Conn, ticket_id: int) -> str | None:
    """The worker a ticket is assigned to (None when unassigned or no such ticket)."""
    row = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    return row["worker_id"] if row else None


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


def worker_tickets(conn: Conn, worker_id: str, now: datetime) -> list[dict[str, Any]]:
    """A grid worker's tickets to act on, most urgent first (priority, then nearest deadline)."""
    return list(
        conn.execute(
            f"""
            SELECT * FROM (
                SELECT t.id, t.title, t.description, t.priority, t.status, t.grid_code,
                       g.name AS cell, t.lon, t.lat, t.ack_due_at, t.due_at, {DEADLINE_SQL}
                FROM tickets t LEFT JOIN grids g ON g.code = t.grid_code
                WHERE t.worker_id = %(worker)s AND t.status = ANY(%(states)s)) s
            ORDER BY array_position(%(ranks)s, priority), deadline NULLS LAST, id
            """,
            {"worker": worker_id, "states": list(WORKER_STATES), "now": now,
             "ranks": PRIORITY_ORDER},
        ).fetchall()
    )


def elderly_alone_water_alerts(
    conn: Conn, now: datetime, days: int = 30, limit: int = 100
) -> dict[str, Any]:
    """Elderly people living alone, ranked by their water-use alerts over the last ``days``:
    the first ``limit`` rows, how many there are in all and how many had such alerts.

    Personal details: civil-affairs staff only, and every view must be audited by the caller.
    """
    rows = conn.execute(
        """
        SELECT h.id, h.head_name, h.phone, h.address, h.birth_year, g.name AS community,
               count(a.id) AS water_alerts,
               count(a.id) FILTER (WHERE a.status <> 'resolved') AS open_alerts,
               max(a.last_seen) AS last_alert_at,
               array_remove(array_agg(DISTINCT d.id), NULL) AS meters,
               count(*) OVER () AS all_households,
               sum((count(a.id) > 0)::int) OVER () AS with_alerts
        FROM households h
        JOIN grids g ON g.code = h.community_code
        LEFT JOIN devices d ON d.household_id = h.id AND d.kind = 'water_meter'
        LEFT JOIN alerts a ON a.source_id = d.id AND left(a.kind, 6) = 'water_'
                          AND a.last_seen > %(since)s AND a.first_seen <= %(now)s
        WHERE h.elderly_alone
        GROUP BY h.id, g.name
        ORDER BY water_alerts DESC, last_alert_at DESC NULLS LAST, h.id
        LIMIT %(limit)s
        """,
        {"since": now - timedelta(days=days), "now": now, "limit": limit},
    ).fetchall()
    totals = rows[0] if rows else {"all_households": 0, "with_alerts": 0}
    return {
        "rows": [{k: v for k, v in r.items() if k not in ("all_households", "with_alerts")}
                 for r in rows],
        "total": int(totals["all_households"]),
        "with_alerts": int(totals["with_alerts"]),
        "days": days,
    }


def device_health(conn: Conn, now: datetime, stale_hours: float = 24, limit: int = 20) -> (
    dict[str, Any]
):
    """Online / offline / never-heard counts by kind, and the devices silent the longest."""
    by_kind = {
        kind: {"kind": kind, "online": 0, "offline": 0, "never": 0, "total": 0, "stale": 0}
        for kind in DEVICE_KINDS
    }
    since = now - timedelta(hours=stale_hours)
    for row in conn.execute(
        """
        SELECT kind, count(*) FILTER (WHERE online) AS online,
               count(*) FILTER (WHERE online IS NULL AND last_seen IS NULL) AS never,
               count(*) FILTER (WHERE last_seen < %s) AS stale, count(*) AS total
        FROM devices GROUP BY kind
        """,
        (since,),
    ):
        offline = row["total"] - row["online"] - row["never"]
        by_kind[row["kind"]] = {**row, "offline": offline}
    stale = conn.execute(
        """
        SELECT d.id, d.kind, d.label, g.name AS cell, d.online, d.last_seen, d.battery_pct
        FROM devices d LEFT JOIN grids g ON g.code = d.grid_code
        WHERE d.last_seen < %s
        ORDER BY d.last_seen, d.id
        LIMIT %s
        """,
        (since, limit),
    ).fetchall()
    return {"by_kind": list(by_kind.values()), "stale": list(stale), "stale_hours": stale_hours}


def dead_letter_summary(conn: Conn, now: datetime, hours: float = 24, limit: int = 20) -> (
    dict[str, Any]
):
    """Dead letters: counts by code and by reason over the last ``hours`` (with how many devices
    sent them and when the latest came), and the latest with their code and a preview."""
    since = now - timedelta(hours=hours)
    by_code = conn.execute(
        "SELECT code, count(*) AS n, count(DISTINCT device_id) AS devices,"
        " max(received_at) AS last_at FROM dead_letters WHERE received_at > %s"
        " GROUP BY code ORDER BY n DESC, code",
        (since,),
    ).fetchall()
    by_reason = conn.execute(
        "SELECT reason, count(*) AS n FROM dead_letters WHERE received_at > %s"
        " GROUP BY reason ORDER BY n DESC, reason LIMIT 10",
        (since,),
    ).fetchall()
    latest = conn.execute(
        "SELECT id, received_at, topic, code, reason, device_id, octet_length(payload) AS size,"
        " substring(payload FROM 1 FOR 80) AS head"
        " FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM dead_letters WHERE received_at > %s", (since,)
    ).fetchone()
    assert total is not None
    rows = [
        {**{k: v for k, v in r.items() if k != "head"},
         "preview": bytes(r["head"]).decode("utf-8", errors="replace")}
        for r in latest
    ]
    return {"by_code": list(by_code), "by_reason": list(by_reason), "latest": rows,
            "total": total["n"], "hours": hours}


def users_list(conn: Conn) -> list[dict[str, Any]]:
    """All users with their role, state and linked grid worker."""
    return list(
        conn.execute(
            """
            SELECT u.username, u.display_name, u.role, u.active, u.created_at,
                   w.id AS worker_id, g.name AS cell
            FROM users u
            LEFT JOIN workers w ON w.username = u.username
            LEFT JOIN grids g ON g.code = w.cell_code
            ORDER BY u.role, u.username
            """
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


def water_day_chart(conn: Conn, device_id: str, now: datetime, tz: tzinfo) -> (
    dict[str, Any] | None
):
    """A water meter's litres in each local hour of today so far, beside its usual range for that
    hour (10th-90th percentile over the stored hourly history, ``water_history``); None when the
    device is not a water meter. ``band_*`` are None while no history is stored. No personal
    details: the meter, never the household."""
    meter = conn.execute("SELECT 1 FROM devices WHERE id = %s AND kind = 'water_meter'",
                         (device_id,)).fetchone()
    if meter is None:
        return None
    local_now = now.astimezone(tz)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    today: list[float | None] = [None] * 24
    for row in conn.execute(
        """
        SELECT floor(extract(epoch FROM (ts - interval '1 microsecond') - %(midnight)s) / 3600)
               AS hour, sum(value) AS litres
        FROM readings WHERE device_id = %(id)s AND metric = 'volume_l'
          AND ts > %(midnight)s AND ts <= %(now)s
        GROUP BY 1
        """,
        {"id": device_id, "midnight": midnight, "now": now},
    ):
        if 0 <= int(row["hour"]) < 24:
            today[int(row["hour"])] = float(row["litres"])
    low: list[float] | None = None
    high: list[float] | None = None
    history = conn.execute(
        """
        SELECT extract(hour FROM (h.first_hour_end + (u.k - 2) * interval '1 hour')
                       AT TIME ZONE %(tz)s)::int AS hour,
               percentile_cont(0.1) WITHIN GROUP (ORDER BY u.v) AS low,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY u.v) AS high,
               count(*) AS n, max(h.computed_at) AS computed_at
        FROM water_history h, unnest(h.litres) WITH ORDINALITY AS u(v, k)
        WHERE h.device_id = %(id)s AND u.v IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """,
        {"id": device_id, "tz": str(tz)},
    ).fetchall()
    days = 0
    computed_at = None
    if history:
        low, high = [0.0] * 24, [0.0] * 24
        for row in history:
            low[row["hour"]], high[row["hour"]] = float(row["low"]), float(row["high"])
        days = min(r["n"] for r in history) if len(history) == 24 else 0
        computed_at = history[0]["computed_at"]
    return {"device_id": device_id, "day": midnight.date(), "now_hour": local_now.hour,
            "today": today, "band_low_l": low, "band_high_l": high, "history_days": days,
            "computed_at": computed_at}
