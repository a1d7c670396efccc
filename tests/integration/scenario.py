"""A small district with alerts, dispatched cases, readings, dead letters and users, made with
the real functions: the read-model, web and browser tests share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cityops.cases import assignment as dispatch
from cityops.cases import opening
from cityops.cases.clock import CaseClock
from cityops.org.grids import GridIndex
from cityops.platform import db, users
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.alerts import AlertSignal, raise_alert
from cityops.simulation.district import DistrictSize, generate_district, load_district

SIZE = DistrictSize(streets=2, grids=3, communities=6, households_per_community=4,
                    flood_gauges=3, manhole_covers=3, cameras=2)
TZ_INFO = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-1"
CLOCK = CaseClock.from_settings(Settings())


@dataclass
class Scenario:
    """What ``build_scenario`` made, for the assertions."""

    url: str
    now: datetime
    alerts: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, int] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)  # ticket name -> worker id
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    personal: list[str] = field(default_factory=list)  # every resident name, phone, address
    elderly: int = 0
    reading_times: list[datetime] = field(default_factory=list)


def build_scenario(url: str) -> Scenario:
    """A small district with 4 open alerts, 3 dispatched cases (one not signed for in time: the
    manhole, dispatched 90 minutes ago), users."""
    district = generate_district(1, SIZE)
    now = datetime.now(UTC).replace(microsecond=0)
    sc = Scenario(url=url, now=now)
    sc.personal = [h[k] for h in district.households for k in ("head_name", "phone", "address")]
    sc.elderly = sum(h["elderly_alone"] for h in district.households)
    with db.connect(url) as conn:
        load_district(conn, district)
        index = GridIndex.from_rows(
            conn.execute("SELECT code, level, name, parent_code, geometry FROM grids").fetchall()
        )
        for dev in conn.execute("SELECT * FROM devices ORDER BY id"):
            sc.devices[dev["id"]] = dev
        conn.execute("UPDATE devices SET online = true, last_seen = %s WHERE kind <> 'water_meter'",
                     (now - timedelta(minutes=2),))
        conn.execute("UPDATE devices SET online = false, last_seen = %s WHERE id = 'MC000003'",
                     (now - timedelta(days=3),))
        sc.reading_times = [now - timedelta(minutes=m) for m in (50, 40, 30, 20, 10)]
        for ts in [*sc.reading_times, now - timedelta(hours=2)]:
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES ('FG000001', 'depth_mm', %s, 12)", (ts,))

        def alert(name: str, device: str, kind: str, severity: str, message: str,
                  minutes_ago: int) -> int:
            dev = sc.devices[device]
            outcome = raise_alert(conn, AlertSignal(
                source_id=device, kind=kind, severity=severity, message=message,
                observed_at=now - timedelta(minutes=minutes_ago), grid_code=dev["grid_code"],
                lon=dev["lon"], lat=dev["lat"]))
            sc.alerts[name] = outcome.alert_id
            return outcome.alert_id

        def ticket(name: str, alert_id: int, urgent: bool, minutes_ago: int = 0) -> None:
            at = now - timedelta(minutes=minutes_ago)
            # the workers of the alert's cell sent their position from beside the sensor, so
            # an urgent case goes to the one on duty there (0 m away)
            dev = sc.devices[{"flood": "FG000001", "manhole": "MC000001",
                              "water": "WM000001"}[name]]
            conn.execute("UPDATE workers SET last_lon = %s, last_lat = %s, position_at = %s"
                         " WHERE cell_code = %s", (dev["lon"], dev["lat"], at, dev["grid_code"]))
            ticket_id = opening.create_for_alert(conn, alert_id,
                                                 dispatch_due_at=CLOCK.dispatch_due(at, urgent))
            assert ticket_id is not None
            assignment = dispatch.assign_ticket(conn, ticket_id, index, CLOCK, Topics(), at)
            assert assignment.worker_id is not None
            sc.tickets[name] = ticket_id
            sc.workers[name] = assignment.worker_id

        ticket("flood", alert("flood", "FG000001", "flood_depth", "critical",
                              "Water 230 mm deep at the flood gauge (alert at 150 mm)", 5), True)
        ticket("manhole", alert("manhole", "MC000001", "manhole_tilt", "high",
                                "Manhole cover tilted 32 degrees: it may be open", 90), True, 90)
        ticket("water", alert("water", "WM000001", "water_silence", "medium",
                              "No water used for 11 hours at water meter WM000001", 180), False)
        # the manhole case was dispatched 90 minutes ago and nobody signed for it in the hour
        conn.execute(
            "UPDATE tickets SET created_at = created_at - interval '90 minutes' WHERE id = %s",
            (sc.tickets["manhole"],),
        )
        alert("gauge", "FG000002", "flood_depth", "low", "Water 40 mm deep at the flood gauge", 1)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
        users.create_user(conn, "admin1", "Adam Admin", "admin", PASSWORD)
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "gw1", "Gao Worker", "grid_worker", PASSWORD,
                          worker_id=sc.workers["flood"])
        other = conn.execute("SELECT id FROM workers WHERE id <> ALL(%s) ORDER BY id LIMIT 1",
                             (list(sc.workers.values()),)).fetchone()
        assert other is not None
        users.create_user(conn, "gw2", "Guo Other", "grid_worker", PASSWORD,
                          worker_id=other["id"])
        for i, reason in enumerate(["invalid JSON", "invalid JSON", "unknown device"]):
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, payload, reason, device_id)"
                " VALUES (%s, %s, %s, %s, %s)",
                (now - timedelta(minutes=i + 1), f"cityops/v1/flood_gauge/FG00000{i + 1}/telemetry",
                 b"{not json" if i < 2 else b'{"depth_mm": 3}', reason,
                 None if i == 2 else f"FG00000{i + 1}"),
            )
    return sc
