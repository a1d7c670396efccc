"""Civil affairs' read model of elderly people living alone and their water-use alerts.

Personal details: civil-affairs staff only, and every view of them is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from cityops.platform.database import Database
from cityops.platform.users import audit
from cityops.sensing.away import current_absences

Conn = psycopg.Connection[dict[str, Any]]


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


def view_elderly_alone(db: Database, username: str, now: datetime, *, days: int,
                       limit: int) -> dict[str, Any]:
    """:func:`elderly_alone_water_alerts` with each listed household's away mark (``away``), the
    view written to the audit log in the same transaction."""
    with db.transaction() as conn:
        found = elderly_alone_water_alerts(conn, now, days=days, limit=limit)
        ids = [r["id"] for r in found["rows"]]
        found["away"] = current_absences(conn, now, ids)
        audit(conn, username, "view", "households.elderly_alone",
              {"households": ids, "days": days})
    return found
