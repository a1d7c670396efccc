"""Cameras within 300 m of a flood, on the real PostgreSQL: the search, the flood alert's details
written by the detection pipeline, and the ticket page's query."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from cityops.app.street_rules import street_rules
from cityops.cases.intake import IntakeDesk
from cityops.cases.opening import alert_opener
from cityops.org.grids import GridIndex
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.sensing.cameras import cameras_within
from cityops.sensing.detection import DetectionPipeline
from cityops.sensing.readings import Reading
from cityops.simulation.district import DistrictSize, generate_district, load_district
from cityops.views import tickets as tickets_view
from dashboards.context import AppContext
from dashboards.pages.ticket import body_view

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=2,
                     flood_gauges=2, manhole_covers=1, cameras=0)
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
# metres north and east of the gauge -> expected in the 300 m list
PLACED = {"CAM-N100": (100.0, 0.0), "CAM-E250": (0.0, 250.0), "CAM-NE295": (208.6, 208.6),
          "CAM-S305": (-305.0, 0.0), "CAM-E1K": (0.0, 1000.0)}


def offset(lon: float, lat: float, north_m: float, east_m: float) -> tuple[float, float]:
    dlat = math.degrees(north_m / 6_371_008.8)
    dlon = math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(lat))))
    return lon + dlon, lat + dlat


@pytest.fixture
def gauge_with_cameras(db_url: str):
    district = generate_district(5, SMALL)
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(db_url) as conn:
        load_district(conn, district)
        for cam_id, (north, east) in PLACED.items():
            lon, lat = offset(gauge["lon"], gauge["lat"], north, east)
            conn.execute("INSERT INTO cameras (id, grid_code, label, lon, lat, stream_url)"
                         " VALUES (%s, %s, %s, %s, %s, %s)",
                         (cam_id, gauge["grid_code"], f"Camera {cam_id}", lon, lat,
                          f"rtsp://cams.local/{cam_id}" if cam_id == "CAM-N100" else None))
        conn.commit()
    return db_url, district, gauge




def test_cameras_within_300_m_nearest_first(gauge_with_cameras) -> None:
    url, _, gauge = gauge_with_cameras
    with db.connect(url) as conn:
        found = cameras_within(conn, gauge["lon"], gauge["lat"])
        assert [c["id"] for c in found] == ["CAM-N100", "CAM-E250", "CAM-NE295"]
        assert [c["distance_m"] for c in found] == [100, 250, 295]
        assert found[0]["stream_url"] == "rtsp://cams.local/CAM-N100"
        assert [c["id"] for c in cameras_within(conn, gauge["lon"], gauge["lat"], 1200)][-1] \
            == "CAM-E1K"
        with pytest.raises(ValueError, match="positive"):
            cameras_within(conn, gauge["lon"], gauge["lat"], 0)


def test_a_flood_alert_lists_the_cameras_and_the_ticket_shows_them(gauge_with_cameras) -> None:
    url, district, gauge = gauge_with_cameras
    depths = [0.0] * 5 + [40.0 * i for i in range(1, 8)]  # up to 280 mm
    readings = [Reading(gauge["id"], "depth_mm", T0 + timedelta(minutes=i), v)
                for i, v in enumerate(depths)]
    with db.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO readings (device_id, metric, ts, value)"
                        " VALUES (%s, %s, %s, %s)", readings)
        conn.commit()
    settings = Settings()
    database = Database.open(url, max_size=2, name="cameras-test")
    try:
        pipeline = DetectionPipeline(database, street_rules(settings),
                                     on_opened=alert_opener(settings, GridIndex(district.cells)))
        pipeline.process(readings[:9])  # 160 mm: the alert opens
        pipeline.process(readings)  # 280 mm: a repeat keeps the list
        assert pipeline.stats.alerts_opened == 1 and pipeline.stats.alerts_repeated == 1
        with database.session() as conn:
            alert = conn.execute("SELECT id, severity, details FROM alerts"
                                 " WHERE source_id = %s AND kind = 'flood_depth'",
                                 (gauge["id"],)).fetchone()
            assert alert["severity"] == "high"
            assert [c["id"] for c in alert["details"]["cameras"]] == [
                "CAM-N100", "CAM-E250", "CAM-NE295"]
            ticket_id = conn.execute("SELECT id FROM tickets WHERE alert_id = %s",
                                     (alert["id"],)).fetchone()["id"]
            shown = tickets_view.ticket_cameras(conn, ticket_id)
            now = datetime.now(UTC)
        ticket = tickets_view.read_ticket(database, ticket_id, now, settings.tz)
        assert ticket is not None and ticket["cameras"] == shown
        assert shown[0] == {"id": "CAM-N100", "label": "Camera CAM-N100", "distance_m": 100,
                            "stream_url": "rtsp://cams.local/CAM-N100"}
        assert len(shown) == 3
        page = str(body_view(ticket, AppContext(database, settings, IntakeDesk(database, settings)),
                             now))
        assert "Cameras nearby" in page and "CAM-NE295 · 295 m away" in page
        assert "rtsp://cams.local/CAM-N100" in page
    finally:
        database.close()
