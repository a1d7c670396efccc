"""The web app's read-side queries against a real, migrated PostgreSQL.

``build_scenario`` loads a small district and makes alerts, tickets (created and dispatched with
the real functions), readings, dead letters and users; the web and browser tests use it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cityops.cases import assignment as dispatch
from cityops.cases import opening, tickets
from cityops.cases import worker as worker_cases
from cityops.cases.clock import CaseClock
from cityops.org import grids
from cityops.org.grids import GridIndex
from cityops.platform import db, users
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.alerts import AlertSignal, raise_alert
from cityops.sensing.device_health import health_report
from cityops.simulation.district import DistrictSize, generate_district, load_district
from cityops.views import admin, civil, wall
from cityops.views import tickets as tickets_view

pytestmark = pytest.mark.integration

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


@pytest.fixture
def scenario(db_url: str) -> Scenario:
    return build_scenario(db_url)


def test_wall_snapshot_figures(scenario: Scenario) -> None:
    with db.connect(scenario.url) as conn:
        snap = wall.wall_snapshot(conn, scenario.now)
    vitals = snap["vitals"]
    by_kind = {s["kind"]: s for s in vitals["sensors"]}
    assert by_kind["water_meter"] == {"kind": "water_meter", "online": 0, "total": 4}
    assert by_kind["flood_gauge"] == {"kind": "flood_gauge", "online": 3, "total": 3}
    assert by_kind["manhole_cover"] == {"kind": "manhole_cover", "online": 2, "total": 3}
    assert (vitals["sensors_online"], vitals["sensors_total"]) == (5, 10)
    assert vitals["alerts_by_severity"] == {"low": 1, "medium": 1, "high": 1, "critical": 1}
    assert vitals["alerts_open"] == 4
    assert vitals["tickets_open"] == 3
    assert vitals["tickets_overdue"] == 1  # the manhole case: not signed for, 30 min late
    assert vitals["readings_last_hour"] == 5
    assert vitals["latest_reading_at"] == max(scenario.reading_times)
    assert vitals["last_heard_at"] == scenario.now - timedelta(minutes=2)

    board = snap["board"]
    assert board["counts"]["dispatched"] == 3 and board["total"] == 3
    first = board["rows"][0]
    assert first["id"] == scenario.tickets["manhole"] and first["overdue"]
    assert first["deadline_kind"] == "sign"
    assert first["deadline"] == scenario.now - timedelta(minutes=30)
    assert [r["id"] for r in board["rows"][1:]] == [scenario.tickets["flood"],
                                                    scenario.tickets["water"]]
    assert all(r["worker"] and r["cell"] for r in board["rows"])


def test_map_data_and_feed(scenario: Scenario) -> None:
    with db.connect(scenario.url) as conn:
        cells = grids.cell_shapes(conn)
        snap = wall.wall_snapshot(conn, scenario.now)
    assert len(cells) == SIZE.communities
    assert {c["geometry"]["type"] for c in cells} <= {"Polygon", "MultiPolygon"}
    codes = {c["code"] for c in cells}
    counts = snap["alerts_by_cell"]
    assert sum(counts.values()) == 4 and set(counts) <= codes
    for name in ("flood", "manhole", "water", "gauge"):
        device = {"flood": "FG000001", "manhole": "MC000001", "water": "WM000001",
                  "gauge": "FG000002"}[name]
        assert counts[scenario.devices[device]["grid_code"]] >= 1
    feed = snap["alerts"]
    assert [a["id"] for a in feed] == [scenario.alerts[n] for n in
                                       ("gauge", "flood", "manhole", "water")]  # newest first
    assert feed[0]["ticket_id"] is None
    assert feed[1]["ticket_id"] == scenario.tickets["flood"]
    assert all(a["cell"] and a["lon"] is not None for a in feed)


def test_ticket_detail_and_timeline(scenario: Scenario) -> None:
    ticket_id = scenario.tickets["flood"]
    worker = scenario.workers["flood"]
    with db.connect(scenario.url) as conn:
        dispatch.change_ticket(conn, ticket_id, "signed_for",
                               tickets.Actor("gw1", "grid_worker", worker), Topics(), "on my way")
        conn.commit()
        detail = tickets_view.ticket_detail(conn, ticket_id, scenario.now)
        assert tickets_view.ticket_worker(conn, ticket_id) == worker
        assert tickets_view.ticket_detail(conn, 999_999, scenario.now) is None
    assert detail is not None
    assert detail["status"] == "signed_for" and detail["priority"] == "urgent"
    assert detail["title"].startswith("Street flooding")
    assert (detail["category"], detail["source"]) == ("E0401", "sensor")
    assert detail["worker_id"] == worker and detail["worker"]
    assert detail["assigned_reason"].startswith("urgent: nearest available on duty in street")
    assert detail["cell"] and detail["deadline_kind"] == "handle" and not detail["overdue"]
    # urgent: clock time from the dispatch; sign for within 1 h, E0401 handled within 2 h
    assert detail["dispatch_due_at"] == scenario.now + timedelta(hours=1)
    assert detail["ack_due_at"] == scenario.now + timedelta(hours=1)
    assert detail["due_at"] == detail["deadline"] == scenario.now + timedelta(hours=2)
    assert detail["postponement"] is None
    assert detail["alert"]["message"] == "Water 230 mm deep at the flood gauge (alert at 150 mm)"
    assert detail["alert"]["status"] == "acknowledged"
    steps = [(e["actor"], e["kind"], e["from_status"], e["to_status"]) for e in detail["events"]]
    assert steps == [
        ("system", "transition", None, "reported"),
        ("system", "transition", "reported", "accepted"),
        ("system", "transition", "accepted", "registered"),
        ("system", "assignment", "registered", "registered"),
        ("system", "transition", "registered", "dispatched"),
        ("gw1", "transition", "dispatched", "signed_for")]
    last = detail["events"][-1]
    assert (last["role"], last["note"], last["photos"]) == ("grid_worker", "on my way", [])
    assert detail["events"][3]["note"] == detail["assigned_reason"]


def test_worker_view(scenario: Scenario) -> None:
    worker = scenario.workers["flood"]
    mine = [name for name, w in scenario.workers.items() if w == worker]
    with db.connect(scenario.url) as conn:
        rows = worker_cases.my_tasks(conn, worker, scenario.now)
        assert {r["id"] for r in rows} == {scenario.tickets[n] for n in mine}
        assert rows[0]["priority"] == "urgent"
        assert all(r["cell"] and r["deadline"] for r in rows)
        actor = tickets.Actor("gw1", "grid_worker", worker)
        ticket_id = scenario.tickets["flood"]
        for to, note in (("signed_for", ""), ("in_progress", ""), ("handled", "pumped out")):
            dispatch.change_ticket(conn, ticket_id, to, actor, Topics(), note)
        after = worker_cases.my_tasks(conn, worker, scenario.now)
    assert ticket_id not in {r["id"] for r in after}  # handled: waits for verification


def test_the_limit_of_the_current_stage_decides_overdue(scenario: Scenario) -> None:
    now = scenario.now
    ops = tickets.Actor("ops1", "operations")
    flood = scenario.tickets["flood"]
    with db.connect(scenario.url) as conn:
        # a citizen's case not yet dispatched: its dispatch limit runs (passed 5 minutes ago)
        late = tickets.create_case(conn, tickets.NewCase(
            source="citizen", category="C0103", title="Street light out", description="dark",
            dispatch_due_at=now - timedelta(minutes=5), reporter_name="Wu Citizen"), ops)
        tickets.transition(conn, late, "accepted", ops)
        conn.execute("UPDATE tickets SET due_at = %s WHERE id = %s",
                     (now - timedelta(days=1), late))  # not this stage's limit: ignored

        def row(ticket_id: int) -> dict[str, Any]:
            board = wall.ticket_board(conn, now, limit=50)
            return next(r for r in board["rows"] if r["id"] == ticket_id)

        assert (row(late)["deadline_kind"], row(late)["overdue"]) == ("dispatch", True)
        assert row(late)["deadline"] == now - timedelta(minutes=5)
        conn.execute("UPDATE tickets SET dispatch_due_at = %s WHERE id = %s",
                     (now + timedelta(minutes=5), late))
        assert row(late)["overdue"] is False
        # the flood case once handled: no limit runs, it waits for verification
        worker = tickets.Actor("gw1", "grid_worker", scenario.workers["flood"])
        for to, note in (("signed_for", ""), ("in_progress", ""), ("handled", "pumped out")):
            tickets.transition(conn, flood, to, worker, note)
        conn.execute("UPDATE tickets SET due_at = %s WHERE id = %s",
                     (now - timedelta(hours=1), flood))
        handled = row(flood)
        assert (handled["deadline"], handled["deadline_kind"], handled["overdue"]) == (
            None, None, False)
        assert wall.ticket_board(conn, now, limit=50)["counts"]["handled"] == 1
        # workers of a cell for dispatch by hand, with their cases in hand
        cell = conn.execute("SELECT cell_code FROM workers WHERE id = %s",
                            (scenario.workers["manhole"],)).fetchone()["cell_code"]
        listed = {w["id"]: w["in_hand"] for w in tickets_view.cell_workers(conn, cell)}
        assert listed[scenario.workers["manhole"]] >= 1 and len(listed) == 2
        assert tickets_view.cell_workers(conn, None) == []


def test_wall_ticket_and_worker_queries_hold_no_personal_data(scenario: Scenario) -> None:
    with db.connect(scenario.url) as conn:
        answers: list[Any] = [
            wall.wall_snapshot(conn, scenario.now),
            grids.cell_shapes(conn),
            [tickets_view.ticket_detail(conn, t, scenario.now) for t in scenario.tickets.values()],
        ]
        phones = [worker_cases.my_tasks(conn, w, scenario.now) for w in scenario.workers.values()]
    text = json.dumps(answers, default=str)
    for key in ("head_name", "phone", "address", "household_id", "birth_year"):
        assert f'"{key}"' not in text
    # the phone's task list carries the case's own address, never one of a welfare case
    assert all(t["address"] is None for tasks in phones for t in tasks if t["welfare"])
    text += json.dumps(phones, default=str).replace('"address"', '"case address"')
    for key in ("head_name", "phone", "address", "household_id", "birth_year"):
        assert f'"{key}"' not in text
    leaked = [value for value in scenario.personal if value and value in text]
    assert leaked == []


def test_civil_and_admin_views(scenario: Scenario) -> None:
    with db.connect(scenario.url) as conn:
        elderly = civil.elderly_alone_water_alerts(conn, scenario.now)
        health = health_report(conn, scenario.now, Settings().device_health)
        dead = admin.dead_letter_summary(conn, scenario.now)
        people = admin.users_list(conn)
    assert elderly["total"] == scenario.elderly and elderly["with_alerts"] == 1
    assert len(elderly["rows"]) == scenario.elderly
    top = elderly["rows"][0]
    assert top["meters"] == ["WM000001"] and top["water_alerts"] == 1 and top["open_alerts"] == 1
    assert top["head_name"] and top["address"]
    assert all(r["water_alerts"] == 0 for r in elderly["rows"][1:])
    with db.connect(scenario.url) as conn:
        first = civil.elderly_alone_water_alerts(conn, scenario.now, limit=1)
    assert first["rows"] == [top] and first["total"] == scenario.elderly

    by_kind = {k["kind"]: k for k in health["by_kind"]}
    meters = by_kind["water_meter"]
    assert (meters["total"], meters["online"], meters["offline"], meters["never"]) == (4, 0, 0, 4)
    covers = by_kind["manhole_cover"]
    assert (covers["offline"], covers["silent"]) == (1, 1)  # MC000003, 3 days without a word
    mc3 = next(d for d in health["problems"] if d["id"] == "MC000003")
    assert mc3["silent"] and "offline" in mc3["status"]
    street = [d for d in health["problems"] if not d["id"].startswith("WM")]
    # the sensors heard from 2 minutes ago are listed for their rejected payloads only
    assert all(not d["silent"] and "rejected" in d["status"] for d in street if d is not mc3)

    assert dead["total"] == 3
    assert [(r["reason"], r["n"]) for r in dead["by_reason"]] == [("invalid JSON", 2),
                                                                  ("unknown device", 1)]
    assert len(dead["latest"]) == 3 and dead["latest"][0]["preview"] == "{not json"
    assert dead["latest"][0]["size"] == len(b"{not json")

    assert {u["username"]: u["role"] for u in people} == {
        "admin1": "admin", "civil1": "civil_affairs", "gw1": "grid_worker",
        "gw2": "grid_worker", "ops1": "operations"}
    assert next(u for u in people if u["username"] == "gw1")["worker_id"]
