"""The detection pipeline on the real database: readings -> alert -> ticket, and the clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityops.app.wiring import make_evaluator
from cityops.cases.opening import alert_opener
from cityops.org.grids import GridIndex
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.sensing.detection import DetectionPipeline
from cityops.sensing.readings import Reading
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SIZE = DistrictSize(streets=2, grids=3, communities=6, households_per_community=4,
                    flood_gauges=3, manhole_covers=3, cameras=2)
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: the day shift


def store(url: str, readings: list[Reading]) -> None:
    with db.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (device_id, metric, ts, value) VALUES (%s, %s, %s, %s)", readings)


def gauge_minutes(device: str, start: datetime, depths: list[float]) -> list[Reading]:
    return [Reading(device, "depth_mm", start + timedelta(minutes=i), d)
            for i, d in enumerate(depths)]


def test_a_flood_opens_one_alert_and_ticket_and_the_drain_resolves_it(db_url: str) -> None:
    district = generate_district(3, SIZE)
    with db.connect(db_url) as conn:
        load_district(conn, district)
    gauge, dry = [d["id"] for d in district.devices if d["kind"] == "flood_gauge"][:2]
    settings = Settings(database_url=db_url)
    database = Database.open(db_url, max_size=2)
    try:
        pipeline = DetectionPipeline(database, make_evaluator(settings, db_url),
                                     on_opened=alert_opener(settings, GridIndex(district.cells)))
        rising = gauge_minutes(gauge, T0, [0, 0, 40, 120, 200, 260, 300, 320, 330, 330])
        calm = gauge_minutes(dry, T0, [0, 3, 0, 2, 0, 4, 0, 0, 1, 0])
        store(db_url, rising + calm)
        pipeline.process(rising + calm)
        pipeline.process(rising[-3:])  # a repeat updates the alert, opens nothing new
        assert pipeline.stats.alerts_opened == 1 and pipeline.stats.tickets_dispatched == 1
        assert pipeline.stats.alerts_cleared == 0  # the dry gauge had nothing to clear
        with db.connect(db_url) as conn:
            alert = conn.execute("SELECT source_id, status, severity FROM alerts").fetchone()
            assert alert == {"source_id": gauge, "status": "open", "severity": "high"}
            ticket = conn.execute("SELECT status, worker_id FROM tickets").fetchone()
            assert ticket["status"] == "dispatched" and ticket["worker_id"] is not None

        drained = gauge_minutes(gauge, T0 + timedelta(minutes=10), [60] + [0] * 14)
        store(db_url, drained)
        pipeline.process(drained)
        assert pipeline.stats.alerts_cleared == 1
        with db.connect(db_url) as conn:
            assert conn.execute("SELECT status FROM alerts").fetchone()["status"] == "resolved"
            # the ticket stays: the work is for people to close
            assert conn.execute("SELECT status FROM tickets").fetchone()["status"] == "dispatched"
    finally:
        database.close()
