"""A water meter's day for the people who check on its household: litres per hour today beside
the household's usual range. No personal details: the meter, never the household."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import psycopg

Conn = psycopg.Connection[dict[str, Any]]


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
