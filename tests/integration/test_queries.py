"""The web app's read-side queries against a real, migrated PostgreSQL.

The scenario is :func:`tests.integration.scenario.build_scenario`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from cityops.cases import assignment as dispatch
from cityops.cases import tickets
from cityops.cases import worker as worker_cases
from cityops.org import grids
from cityops.platform import db
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.device_health import health_report
from cityops.views import admin, civil, wall
from cityops.views import tickets as tickets_view
from tests.integration.scenario import SIZE, Scenario, build_scenario

pytestmark = pytest.mark.integration


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
