"""Hourly rollups and retention on the real database (the engine this machine has). No mocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cityops.platform import db
from cityops.platform.settings import RetentionSettings
from cityops.sensing import retention
from cityops.sensing.readings import rollup_time_sql

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 2, 30, tzinfo=UTC)
H = timedelta(hours=1)
HOUR0 = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
SETTINGS = RetentionSettings(raw_days=90, hourly_days=730, delete_batch_rows=100)
GEOMETRY = json.dumps({"type": "Polygon", "coordinates": [[[121.47, 31.2], [121.51, 31.2],
                                                           [121.51, 31.25], [121.47, 31.2]]]})


@pytest.fixture
def conn(db_url: str) -> Any:
    """An autocommit connection to a database with a grid and devices wm-1 and fg-1."""
    with db.connect(db_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
            " centroid_lat) VALUES ('310101000000000', 'district', 'D', NULL, %s, 121.49, 31.2)",
            (GEOMETRY,))
        for device_id, kind in (("wm-1", "water_meter"), ("fg-1", "flood_gauge")):
            connection.execute(
                "INSERT INTO devices (id, kind, grid_code, lon, lat, label)"
                " VALUES (%s, %s, '310101000000000', 121.49, 31.22, 'x')", (device_id, kind))
        yield connection


def insert(conn: psycopg.Connection[Any], rows: list[tuple[str, str, datetime, float]]) -> None:
    """Store readings the way ingest does: the reading and the hour it counts in, dirty."""
    with conn.transaction():
        for device_id, metric, ts, value in rows:
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES (%s, %s, %s, %s)", (device_id, metric, ts, value))
            conn.execute("INSERT INTO readings_dirty_hours (hour) SELECT date_trunc('hour', "
                         + rollup_time_sql("%(ts)s::timestamptz", "%(metric)s::text") + ", 'UTC')",
                         {"ts": ts, "metric": metric})


def hourly(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in conn.execute(
        "SELECT device_id, metric, hour, count, sum, min, max, last FROM readings_hourly"
        " ORDER BY device_id, metric, hour").fetchall()]


def test_rollups_are_correct_incremental_and_idempotent(conn: psycopg.Connection[Any]) -> None:
    # litres readings cover the 15 minutes before them: 00:15 ... 01:00 make the hour 00:00
    insert(conn, [("wm-1", "volume_l", HOUR0 + timedelta(minutes=m), v)
                  for m, v in ((15, 2.0), (30, 0.0), (45, 7.5), (60, 1.0))])
    insert(conn, [("wm-1", "volume_l", HOUR0 + H + timedelta(minutes=5), 3.0),
                  ("fg-1", "depth_mm", HOUR0 + H + timedelta(minutes=59, seconds=59), 40.0),
                  ("fg-1", "depth_mm", HOUR0 + H + timedelta(minutes=1), 10.0)])
    run = retention.refresh_rollups(conn, NOW, SETTINGS)
    assert run.hours == [HOUR0, HOUR0 + H] and run.rows == 3
    assert hourly(conn) == [
        ("fg-1", "depth_mm", HOUR0 + H, 2, 50.0, 10.0, 40.0, 40.0),
        ("wm-1", "volume_l", HOUR0, 4, 10.5, 0.0, 7.5, 1.0),
        ("wm-1", "volume_l", HOUR0 + H, 1, 3.0, 3.0, 3.0, 3.0),
    ]
    # nothing new: nothing to do; recomputing a range changes nothing either
    assert retention.refresh_rollups(conn, NOW, SETTINGS) == retention.RollupRun([], 0)
    assert retention.rollup_range(conn, HOUR0, HOUR0 + 2 * H) == 0
    # a late reading recomputes its hour only
    insert(conn, [("wm-1", "volume_l", HOUR0 + timedelta(minutes=20), 4.0)])
    late = retention.refresh_rollups(conn, NOW, SETTINGS)
    assert late == retention.RollupRun([HOUR0], 1)
    assert hourly(conn)[1] == ("wm-1", "volume_l", HOUR0, 5, 14.5, 0.0, 7.5, 1.0)
    assert retention.hourly_series(conn, "wm-1", "volume_l", HOUR0, HOUR0 + 2 * H) == [
        {"hour": HOUR0, "count": 5, "sum": 14.5, "min": 0.0, "max": 7.5, "last": 1.0},
        {"hour": HOUR0 + H, "count": 1, "sum": 3.0, "min": 3.0, "max": 3.0, "last": 3.0},
    ]
    assert retention.hourly_series(conn, "wm-1", "volume_l", HOUR0 + H, HOUR0 + 2 * H)[0][
        "hour"] == HOUR0 + H


def test_interval_readings_count_in_the_hour_their_interval_ends_in(
    conn: psycopg.Connection[Any],
) -> None:
    eight = HOUR0 + 8 * H
    insert(conn, [("wm-1", "volume_l", eight, 5.0), ("fg-1", "depth_mm", eight, 30.0)])
    run = retention.refresh_rollups(conn, NOW + 8 * H, SETTINGS)
    assert run.hours == [eight - H, eight]
    assert [(r[0], r[2]) for r in hourly(conn)] == [("fg-1", eight), ("wm-1", eight - H)]


def test_ingest_writes_the_dirty_hours(conn: psycopg.Connection[Any], db_url: str) -> None:
    from cityops.platform.topics import Topics
    from ingest.writer import BatchWriter, Delivery

    topics = Topics("t/v1")
    writer = BatchWriter(db_url, topics=topics, ack=lambda batch: None, batch_ms=5)
    writer.start()
    received = datetime.now(UTC)
    ts = [received - timedelta(hours=h) for h in (0, 3)]
    payload = json.dumps([{"ts": t.isoformat(), "values": {"volume_l": 1}} for t in ts])
    writer.submit(Delivery(topics.telemetry("water_meter", "wm-1"), payload.encode(), received))
    writer.stop()
    run = retention.refresh_rollups(conn, received, SETTINGS)
    assert run.hours == sorted(t.replace(minute=0, second=0, microsecond=0) for t in ts)
    assert run.rows == 2


def test_retention_deletes_only_old_raw_readings_and_keeps_rollups(
    conn: psycopg.Connection[Any],
) -> None:
    cutoff = NOW - timedelta(days=SETTINGS.raw_days)
    old = [("wm-1", "volume_l", cutoff - timedelta(minutes=15 * i + 1), 1.0) for i in range(250)]
    young = [("wm-1", "volume_l", cutoff + timedelta(minutes=15 * i), 2.0) for i in range(20)]
    insert(conn, old + young)
    retention.refresh_rollups(conn, NOW - timedelta(days=SETTINGS.raw_days + 5), SETTINGS)
    rolled = hourly(conn)
    assert sum(r[3] for r in rolled) == 270

    run = retention.drop_old_data(conn, NOW, SETTINGS)
    assert run.raw_cutoff == cutoff
    left = conn.execute("SELECT min(ts) AS first, count(*) AS n FROM readings").fetchone()
    if run.engine == "postgresql":  # a delete in batches of 100 rows
        assert run.raw_deleted == 250 and left["n"] == 20 and left["first"] >= cutoff
    else:  # whole one-day chunks entirely before the cutoff
        assert left["n"] >= 20 and left["first"] >= cutoff - timedelta(days=1)
    assert hourly(conn) == rolled and run.hourly_deleted == 0  # rollups are kept

    # a late reading for an hour whose raw readings are gone does not shrink its rollup
    insert(conn, [("wm-1", "volume_l", cutoff - timedelta(hours=10, minutes=7), 9.0)])
    assert retention.refresh_rollups(conn, NOW, SETTINGS).hours == []
    assert hourly(conn) == rolled

    # rollups older than hourly_days go too
    far = NOW + timedelta(days=SETTINGS.hourly_days - SETTINGS.raw_days + 1)
    assert retention.drop_old_data(conn, far, SETTINGS).hourly_deleted == len(rolled)
