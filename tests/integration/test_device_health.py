"""Device health on the real database: silent devices (alert and clear), bad-only devices,
offline and battery, and the admin page's figures. No mocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cityops.cases.opening import alert_opener
from cityops.platform import db
from cityops.platform.settings import DeviceHealthSettings, Settings
from cityops.sensing import device_health
from cityops.views import admin

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
SETTINGS = DeviceHealthSettings()  # meters and covers every 15 min, gauges every minute, x3
GEOMETRY = json.dumps({"type": "Polygon", "coordinates": [[[121.47, 31.2], [121.51, 31.2],
                                                           [121.51, 31.25], [121.47, 31.2]]]})


@pytest.fixture
def conn(db_url: str) -> Any:
    """An autocommit connection to a database with a district and these devices:
    wm-ok (heard 10 min ago), wm-quiet (heard 50 min ago: silent), fg-ok (1 min ago),
    fg-slow (5 min ago: silent for a gauge), mc-new (installed 10 min ago, never heard),
    mc-old (installed a day ago, never heard: silent), fg-bad (only rejected payloads)."""
    with db.connect(db_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
            " centroid_lat) VALUES ('310101000000000', 'district', 'D', NULL, %s, 121.49, 31.2)",
            (GEOMETRY,))
        devices = [
            ("wm-ok", "water_meter", NOW - timedelta(minutes=10), NOW - timedelta(days=30)),
            ("wm-quiet", "water_meter", NOW - timedelta(minutes=50), NOW - timedelta(days=30)),
            ("fg-ok", "flood_gauge", NOW - timedelta(minutes=1), NOW - timedelta(days=30)),
            ("fg-slow", "flood_gauge", NOW - timedelta(minutes=5), NOW - timedelta(days=30)),
            ("mc-new", "manhole_cover", None, NOW - timedelta(minutes=10)),
            ("mc-old", "manhole_cover", None, NOW - timedelta(days=1)),
            ("fg-bad", "flood_gauge", None, NOW - timedelta(minutes=2)),
        ]
        for device_id, kind, last_seen, installed in devices:
            connection.execute(
                "INSERT INTO devices (id, kind, grid_code, lon, lat, label, last_seen,"
                " installed_at) VALUES (%s, %s, '310101000000000', 121.49, 31.22, %s, %s, %s)",
                (device_id, kind, f"test {device_id}", last_seen, installed))
        yield connection


def dead_letter(conn: psycopg.Connection[Any], device_id: str, code: str, minutes_ago: float,
                reason: str = "a reason") -> None:
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, payload, reason, device_id, code)"
        " VALUES (%s, 't', 'x', %s, %s, %s)",
        (NOW - timedelta(minutes=minutes_ago), reason, device_id, code))


def open_alerts(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    rows = conn.execute("SELECT * FROM alerts WHERE kind = 'device_silent'"
                        " AND status <> 'resolved'").fetchall()
    return {r["source_id"]: r for r in rows}


def test_silent_devices_per_kind_interval(conn: psycopg.Connection[Any]) -> None:
    assert device_health.silent_device_ids(conn, NOW, SETTINGS) == {"wm-quiet", "fg-slow",
                                                                    "mc-old"}
    # a per-device interval in devices.config overrides the kind's
    conn.execute("UPDATE devices SET config = '{\"reporting_interval_s\": 3600}'"
                 " WHERE id = 'wm-quiet'")
    assert "wm-quiet" not in device_health.silent_device_ids(conn, NOW, SETTINGS)


def test_silent_device_opens_a_low_alert_without_a_ticket_then_clears(
    conn: psycopg.Connection[Any],
) -> None:
    with conn.transaction():
        check = device_health.check_silent_devices(conn, NOW, SETTINGS)
    assert sorted(check.opened) == ["fg-slow", "mc-old", "wm-quiet"] and check.cleared == []
    alerts = open_alerts(conn)
    meter = alerts["wm-quiet"]
    assert meter["severity"] == "low"
    assert meter["message"] == (
        "Water meter wm-quiet (test wm-quiet) has sent no reading for 50 min (expected every"
        " 15 min). A device fault: check its power and connection. Its silence does not mean"
        " that no water was used.")
    assert alerts["mc-old"]["message"].startswith(
        "Manhole cover mc-old (test mc-old) has sent no reading since it was installed")
    assert conn.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0

    # a repeat updates the open alert; nothing new opens
    later = NOW + timedelta(minutes=1)
    with conn.transaction():
        again = device_health.check_silent_devices(conn, later, SETTINGS)
    assert again.opened == [] and open_alerts(conn)["wm-quiet"]["occurrences"] == 2

    # the meter reports again: its alert is resolved, the others stay
    conn.execute("UPDATE devices SET last_seen = %s WHERE id = 'wm-quiet'", (later,))
    with conn.transaction():
        cleared = device_health.check_silent_devices(conn, later, SETTINGS)
    assert cleared.cleared == ["wm-quiet"]
    assert set(open_alerts(conn)) == {"fg-slow", "mc-old"}
    resolved = conn.execute("SELECT details FROM alerts WHERE source_id = 'wm-quiet'").fetchone()
    assert resolved["details"]["resolved_because"] == "the device reports again"

    # silent again later: a new alert opens
    much_later = later + timedelta(hours=2)
    with conn.transaction():
        reopened = device_health.check_silent_devices(conn, much_later, SETTINGS)
    assert "wm-quiet" in reopened.opened


def test_with_the_policy_each_silent_device_gets_a_case_for_the_technical_team(
    conn: psycopg.Connection[Any],
) -> None:
    opener = alert_opener(Settings())
    with conn.transaction():
        check = device_health.check_silent_devices(conn, NOW, SETTINGS, on_opened=opener)
    cases = conn.execute("SELECT t.*, a.source_id FROM tickets t JOIN alerts a"
                         " ON a.id = t.alert_id ORDER BY a.source_id").fetchall()
    assert [c["source_id"] for c in cases] == ["fg-slow", "mc-old", "wm-quiet"]
    assert sorted(check.cases) == sorted(c["id"] for c in cases)
    for case in cases:  # registered for the unit; no grid worker sent, no dispatch limit
        assert (case["category"], case["priority"], case["status"]) == ("C0109", "low",
                                                                      "registered")
        assert case["unit"] == "Operations centre technical team"
        assert case["worker_id"] is None and case["dispatch_due_at"] is None
        assert case["assigned_reason"].startswith("for the Operations centre technical team")
        assert case["title"].startswith("Monitoring sensor silent")
    assert conn.execute("SELECT count(*) AS n FROM dispatches").fetchone()["n"] == 0
    # a repeat of the same silence opens no second case
    with conn.transaction():
        again = device_health.check_silent_devices(conn, NOW + timedelta(minutes=1), SETTINGS,
                                                   on_opened=opener)
    assert again.cases == []
    assert conn.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 3


def test_most_devices_silent_at_once_is_not_an_alert_storm(
    conn: psycopg.Connection[Any],
) -> None:
    for i in range(6):  # 13 devices, 9 of them silent: ingest or the broker is down
        conn.execute(
            "INSERT INTO devices (id, kind, grid_code, lon, lat, label, last_seen)"
            " VALUES (%s, 'water_meter', '310101000000000', 121.49, 31.22, 'x', %s)",
            (f"wm-{i}", NOW - timedelta(hours=2)))
    with conn.transaction():
        check = device_health.check_silent_devices(conn, NOW, SETTINGS,
                                                   on_opened=alert_opener(Settings()))
    assert check.suppressed and len(check.silent) == 9 and check.opened == []
    assert open_alerts(conn) == {} and check.cases == []
    assert conn.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0


def test_device_sending_only_bad_payloads_shows_in_health(conn: psycopg.Connection[Any]) -> None:
    for minutes in (1, 2, 3):
        dead_letter(conn, "fg-bad", "out_of_range", minutes)
    dead_letter(conn, "fg-bad", "unknown_unit", 0.5)
    dead_letter(conn, "fg-ok", "malformed_json", 5)  # it also sends good readings
    dead_letter(conn, "fg-404", "unknown_device", 3)
    dead_letter(conn, "fg-404", "unknown_device", 2)
    report = device_health.health_report(conn, NOW, SETTINGS)
    problems = {p["id"]: p for p in report["problems"]}
    assert problems["fg-bad"]["status"] == "no valid reading, 4 rejected in 24 h (latest:" \
                                           " unknown_unit)"
    assert problems["fg-ok"]["status"] == "1 payload rejected in 24 h (latest: malformed_json)"
    assert problems["wm-quiet"]["status"] == "silent for 50 min (expected every 15 min)"
    assert "mc-new" not in problems  # installed recently, not yet due
    assert [u["device_id"] for u in report["unregistered"]] == ["fg-404"]
    gauges = next(k for k in report["by_kind"] if k["kind"] == "flood_gauge")
    assert (gauges["total"], gauges["silent"], gauges["bad_only"]) == (3, 1, 1)
    # worst first: silent devices, then the bad-only one
    order = [p["id"] for p in report["problems"]]
    assert order.index("fg-bad") > max(order.index(i) for i in ("wm-quiet", "fg-slow", "mc-old"))
    assert order.index("fg-bad") < order.index("fg-ok")


def test_offline_and_low_battery(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE devices SET online = false, status_at = %s, battery_pct = 12"
                 " WHERE id = 'wm-ok'", (NOW,))
    report = device_health.health_report(conn, NOW, SETTINGS)
    [row] = [p for p in report["problems"] if p["id"] == "wm-ok"]
    assert row["status"] == "offline by its status or last will; battery 12 %"
    meters = next(k for k in report["by_kind"] if k["kind"] == "water_meter")
    assert (meters["offline"], meters["low_battery"]) == (1, 1)


def test_dead_letter_summary_counts_by_code(conn: psycopg.Connection[Any]) -> None:
    for minutes in (1, 2, 3):
        dead_letter(conn, "fg-bad", "out_of_range", minutes)
    dead_letter(conn, "fg-ok", "out_of_range", 4)
    dead_letter(conn, None, "bad_topic", 5)  # type: ignore[arg-type]
    dead_letter(conn, "fg-ok", "malformed_json", 60 * 30)  # older than 24 h
    summary = admin.dead_letter_summary(conn, NOW)
    assert [(c["code"], c["n"], c["devices"]) for c in summary["by_code"]] == [
        ("out_of_range", 4, 2), ("bad_topic", 1, 0)]
    assert summary["total"] == 5 and summary["latest"][0]["code"] == "out_of_range"
