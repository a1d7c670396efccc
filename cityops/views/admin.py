"""The administrator's read model: device health
(:func:`cityops.sensing.device_health.health_report`), dead letters and users."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from cityops.platform.database import Database
from cityops.platform.settings import DeviceHealthSettings
from cityops.sensing.device_health import health_report

Conn = psycopg.Connection[dict[str, Any]]


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


def read_admin(db: Database, now: datetime, health: DeviceHealthSettings,
               hours: float = 24) -> dict[str, Any]:
    """The admin page's figures: device health, dead letters of the last ``hours``, users."""
    with db.transaction() as conn:
        return {"health": health_report(conn, now, health, hours=hours),
                "dead": dead_letter_summary(conn, now, hours=hours),
                "users": users_list(conn)}
