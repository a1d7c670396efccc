"""Water meters' hourly history: the input of each household's water-use baseline.

:func:`refresh_history` copies every water meter's hourly rollups (``readings_hourly``, kept
``retention.hourly_days``, longer than the raw readings) over the last ``days`` days into
``water_history`` (one row per meter: a regular array of hourly litres, NULL where nothing
was reported); the scheduler runs it every ``detection.water.refresh_hours``. The detectors
(wired in ``cityops.app.water_rules``) fit the baseline from that array, so a batch of readings
never scans weeks of raw readings. An hour is the hour a reading's interval ended in: the
15-minute readings at 07:15, 07:30, 07:45 and 08:00 make the hour ending 08:00.

The rollups (:mod:`cityops.sensing.retention`) count a litres reading in the hour its interval ended
in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class MeterHistory:
    """One meter's stored hourly history."""

    device_id: str
    first_hour_end: datetime
    litres: list[float | None]
    computed_at: datetime

    def hour_ends(self) -> list[datetime]:
        """The end of each hour of ``litres``."""
        return [self.first_hour_end + i * HOUR for i in range(len(self.litres))]


def last_hour_end(now: datetime) -> datetime:
    """The end of the latest complete hour at ``now``."""
    return now.replace(minute=0, second=0, microsecond=0)


def refresh_history(conn: psycopg.Connection[Any], now: datetime, days: int) -> int:
    """Recompute the hourly history of every water meter that reported in the last ``days``
    days (up to the latest complete hour); return how many meters were stored."""
    last = last_hour_end(now)
    first = last - timedelta(days=days) + HOUR
    rows = conn.execute(
        """
        WITH sums AS (
            SELECT h.device_id, h.hour + interval '1 hour' AS hour_end, h.sum AS litres
            FROM readings_hourly h JOIN devices d ON d.id = h.device_id
            WHERE d.kind = 'water_meter' AND h.metric = 'volume_l'
              AND h.hour >= %(first)s - interval '1 hour' AND h.hour < %(last)s
        ), meters AS (SELECT DISTINCT device_id FROM sums)
        INSERT INTO water_history (device_id, first_hour_end, litres, computed_at)
        SELECT m.device_id, %(first)s, array_agg(s.litres ORDER BY g.hour_end), %(now)s
        FROM meters m
        CROSS JOIN generate_series(%(first)s, %(last)s, interval '1 hour') AS g(hour_end)
        LEFT JOIN sums s ON s.device_id = m.device_id AND s.hour_end = g.hour_end
        GROUP BY m.device_id
        ON CONFLICT (device_id) DO UPDATE SET first_hour_end = EXCLUDED.first_hour_end,
            litres = EXCLUDED.litres, computed_at = EXCLUDED.computed_at
        """,
        {"first": first, "last": last, "now": now},
    )
    return rows.rowcount


def histories(
    conn: psycopg.Connection[Any], computed_after: datetime | None = None
) -> list[MeterHistory]:
    """Stored histories (only those recomputed after ``computed_after`` when given)."""
    rows = conn.execute(
        "SELECT device_id, first_hour_end, litres, computed_at FROM water_history"
        " WHERE %(after)s::timestamptz IS NULL OR computed_at > %(after)s",
        {"after": computed_after},
    ).fetchall()
    return [MeterHistory(r["device_id"], r["first_hour_end"], list(r["litres"]),
                         r["computed_at"]) for r in rows]
