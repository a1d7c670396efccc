"""Hourly rollups of readings; retention: raw readings dropped after an age, rollups kept longer.

``readings_hourly`` holds one row per device, metric and UTC hour: count, sum, min, max and the
last value of the hour. Ingest appends the hour of every new reading to ``readings_dirty_hours``
in the same transaction as the reading; :func:`refresh_rollups` takes those hours and recomputes
them whole from the raw readings (an upsert), so a run is incremental and idempotent and a late
reading corrects its hour on the next run. Hours starting before the raw-retention cutoff are not
recomputed (their raw readings are going or gone; the rollup is all that is left of them).

:func:`drop_old_data` drops raw readings older than ``retention.raw_days`` (TimescaleDB:
``drop_chunks``, whole one-day chunks entirely older than the cutoff; plain PostgreSQL: a delete in
batches of ``retention.delete_batch_rows`` rows, one transaction each) and rollups older than
``retention.hourly_days``. Every function here opens and commits its own transactions: pass a
connection that is not inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cityops.platform import db
from cityops.platform.settings import RetentionSettings
from cityops.sensing.readings import rollup_time_sql

HOUR = timedelta(hours=1)

UPSERT_HOURS = """
INSERT INTO readings_hourly AS h (device_id, metric, hour, count, sum, min, max, last)
SELECT device_id, metric, {bucket} AS hour, count(*), sum(value), min(value), max(value),
       (array_agg(value ORDER BY ts DESC))[1]
FROM readings
WHERE ts >= %(start)s AND ts <= %(end)s
  AND {attributed} >= %(start)s AND {attributed} < %(end)s
GROUP BY device_id, metric, 3
ON CONFLICT (device_id, metric, hour) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
    last = EXCLUDED.last
WHERE (h.count, h.sum, h.min, h.max, h.last)
      IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.sum, EXCLUDED.min, EXCLUDED.max, EXCLUDED.last)
"""


def _upsert_hours_sql(conn: psycopg.Connection[Any]) -> str:
    """UPSERT_HOURS for this database's engine; interval metrics count in the hour they end in."""
    attributed = rollup_time_sql()
    return UPSERT_HOURS.format(
        bucket=db.bucket_sql(db.readings_engine(conn), "1 hour", attributed),
        attributed=attributed,
    )


@dataclass(frozen=True)
class RollupRun:
    """What one :func:`refresh_rollups` did: the hours recomputed and the rows it changed."""

    hours: list[datetime]
    rows: int


@dataclass(frozen=True)
class RetentionRun:
    """What one :func:`drop_old_data` did."""

    raw_cutoff: datetime
    raw_deleted: int  # rows deleted (plain PostgreSQL) or chunks dropped (TimescaleDB)
    hourly_deleted: int
    engine: str


def _ranges(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted distinct hour starts merged into [start, end) ranges of consecutive hours."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + HOUR)
        else:
            ranges.append((hour, hour + HOUR))
    return ranges


def rollup_range(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> int:
    """Recompute the hourly rollups of every hour in [start, end) from the raw readings (for a
    backfill, e.g. after loading history straight into ``readings``); returns rows changed.
    ``start`` and ``end`` should be UTC hour boundaries."""
    with conn.transaction():
        sql = _upsert_hours_sql(conn)
        return conn.execute(sql, {"start": start, "end": end}).rowcount


def refresh_rollups(conn: psycopg.Connection[Any], now: datetime,
                    settings: RetentionSettings) -> RollupRun:
    """Recompute every hour that received readings since the last run, in one transaction."""
    keep_after = now - timedelta(days=settings.raw_days)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        sql = _upsert_hours_sql(conn)
        # only rows committed before this statement are taken; later ones wait for the next run
        hours = [r["hour"] for r in cur.execute(
            "DELETE FROM readings_dirty_hours RETURNING hour").fetchall()]
        wanted = [h for h in hours if h >= keep_after]
        rows = 0
        for start, end in _ranges(wanted):
            rows += cur.execute(sql, {"start": start, "end": end}).rowcount
    return RollupRun(sorted(set(wanted)), rows)


def drop_old_data(conn: psycopg.Connection[Any], now: datetime,
                  settings: RetentionSettings) -> RetentionRun:
    """Drop raw readings older than ``raw_days`` and rollups older than ``hourly_days``.

    Run :func:`refresh_rollups` first so that the hours about to lose their raw readings are
    rolled up (the scheduler job does both, in that order).
    """
    with conn.transaction():
        engine = db.readings_engine(conn)
    cutoff = now - timedelta(days=settings.raw_days)
    raw = 0
    if engine == "timescaledb":
        with conn.transaction():
            raw = len(conn.execute(
                "SELECT drop_chunks('readings', older_than => %s::timestamptz)", (cutoff,)
            ).fetchall())
    else:
        while True:
            with conn.transaction():
                deleted = conn.execute(
                    "DELETE FROM readings WHERE ctid = ANY(ARRAY("
                    " SELECT ctid FROM readings WHERE ts < %s LIMIT %s))",
                    (cutoff, settings.delete_batch_rows),
                ).rowcount
            raw += deleted
            if deleted < settings.delete_batch_rows:
                break
    with conn.transaction():
        hourly = conn.execute(
            "DELETE FROM readings_hourly WHERE hour < %s",
            (now - timedelta(days=settings.hourly_days),),
        ).rowcount
    return RetentionRun(cutoff, raw, hourly, engine)


def hourly_series(
    conn: psycopg.Connection[Any], device_id: str, metric: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """One device's hourly rollups of one metric for the hours starting in [since, until),
    oldest first: dicts with hour, count, sum, min, max, last (hours without readings are
    absent). Recent hours appear once the rollup job has run (every ``rollup_seconds``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(
            "SELECT hour, count, sum, min, max, last FROM readings_hourly"
            " WHERE device_id = %s AND metric = %s AND hour >= %s AND hour < %s ORDER BY hour",
            (device_id, metric, since, until),
        ).fetchall())
