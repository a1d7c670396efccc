"""Alerts, tickets and grid dispatch against the real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cityops import alerts, db, dispatch, scheduler, tickets
from cityops.district import DistrictSize, generate_district, load_district
from cityops.grids import GridIndex
from cityops.tickets import Actor, TransitionError
from cityops.topics import Topics

pytestmark = pytest.mark.integration
SH = ZoneInfo("Asia/Shanghai")
TOPICS = Topics("test/v1")
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=4,
                     flood_gauges=3, manhole_covers=3, cameras=2)
# 2026-11-20 is a Friday; 10:00 in Shanghai is the day shift, 23:00 and 03:00 the night shift
DAY = datetime(2026, 11, 20, 10, 0, tzinfo=SH)


@pytest.fixture
def district_db(db_url: str):
    district = generate_district(4, SMALL)
    with db.connect(db_url) as conn:
        load_district(conn, district)
    return db_url, district, GridIndex(district.cells)


def gauge_signal(device: dict, at: datetime = DAY, severity: str = "high") -> alerts.AlertSignal:
    return alerts.AlertSignal(source_id=device["id"], kind="flood_depth", severity=severity,
                              message="Water 300 mm deep", observed_at=at,
                              grid_code=device["grid_code"], lon=device["lon"], lat=device["lat"])


def test_a_repeat_updates_the_open_alert(district_db) -> None:
    url, district, _ = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        first = alerts.raise_alert(conn, gauge_signal(gauge, severity="medium"))
        again = alerts.raise_alert(conn, gauge_signal(gauge, DAY + timedelta(minutes=5)))
        assert first.opened and not again.opened and first.alert_id == again.alert_id
        row = conn.execute("SELECT occurrences, severity, last_seen FROM alerts").fetchone()
        assert row["occurrences"] == 2 and row["severity"] == "high"
        assert row["last_seen"] == DAY + timedelta(minutes=5)
        alerts.clear_condition(conn, gauge["id"], "flood_depth", DAY + timedelta(hours=1), "dry")
        reopened = alerts.raise_alert(conn, gauge_signal(gauge, DAY + timedelta(hours=2)))
        assert reopened.opened and reopened.alert_id != first.alert_id


def test_concurrent_writers_cannot_open_two_alerts(district_db) -> None:
    url, district, _ = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    outcomes: list[alerts.RaiseOutcome] = []
    barrier = threading.Barrier(8)

    def writer() -> None:
        with db.connect(url) as conn:
            barrier.wait()
            outcomes.append(alerts.raise_alert(conn, gauge_signal(gauge)))

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(o.opened for o in outcomes) == 1
    assert len({o.alert_id for o in outcomes}) == 1
    with db.connect(url) as conn:
        assert conn.execute("SELECT occurrences FROM alerts").fetchone()["occurrences"] == 8


def test_alert_opens_a_ticket_placed_and_dispatched_by_grid(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        outcome = alerts.raise_alert(conn, gauge_signal(gauge))
        ticket_id = tickets.create_for_alert(conn, outcome.alert_id, ack_minutes=15,
                                             resolve_hours=2)
        assert tickets.create_for_alert(conn, outcome.alert_id, ack_minutes=15,
                                        resolve_hours=2) is None
        assignment = dispatch.assign_ticket(conn, ticket_id, index, SH, TOPICS, DAY)
        day_worker = next(w for w in district.workers if w["cell_code"] == gauge["grid_code"])
        assert assignment.grid_code == gauge["grid_code"]
        assert assignment.worker_id == day_worker["id"]
        assert "on duty in cell" in assignment.reason and "08:00-20:00" in assignment.reason
        ticket = conn.execute("SELECT * FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
        assert ticket["status"] == "dispatched" and ticket["priority"] == "urgent"
        assert ticket["worker_id"] == day_worker["id"]
        events = conn.execute("SELECT actor, from_status, to_status FROM ticket_events"
                              " WHERE ticket_id = %s ORDER BY id", (ticket_id,)).fetchall()
        assert [(e["from_status"], e["to_status"]) for e in events] == [
            (None, "new"), ("new", "dispatched")]
        outbox = conn.execute("SELECT topic, payload FROM dispatches").fetchone()
        assert outbox["topic"] == f"test/v1/dispatch/{day_worker['id']}"
        assert outbox["payload"]["tasks"][0]["ticket_id"] == ticket_id


@pytest.mark.parametrize("local_hour,shift", [(23, "night"), (3, "night"), (10, "day")])
def test_on_duty_follows_the_roster_across_midnight(district_db, local_hour, shift) -> None:
    url, district, _ = district_db
    cell = district.workers[0]["cell_code"]
    day_id, night_id = (w["id"] for w in district.workers if w["cell_code"] == cell)
    at = datetime(2026, 11, 20, local_hour, 30, tzinfo=SH)
    with db.connect(url) as conn:
        on = [w["id"] for w in dispatch.on_duty(conn, [cell], at, SH)]
    assert on == [day_id if shift == "day" else night_id]


def test_nobody_on_duty_falls_back_to_the_neighbouring_cells(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        conn.execute("UPDATE workers SET active = false WHERE cell_code = %s",
                     (gauge["grid_code"],))
        outcome = alerts.raise_alert(conn, gauge_signal(gauge))
        ticket_id = tickets.create_for_alert(conn, outcome.alert_id, ack_minutes=15,
                                             resolve_hours=2)
        assignment = dispatch.assign_ticket(conn, ticket_id, index, SH, TOPICS, DAY)
        assert assignment.worker_id is not None
        worker_cell = next(w["cell_code"] for w in district.workers
                           if w["id"] == assignment.worker_id)
        assert worker_cell != gauge["grid_code"]
        assert "nobody on duty in" in assignment.reason


def test_ticket_state_machine_checks_state_role_and_owner(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        outcome = alerts.raise_alert(conn, gauge_signal(gauge))
        tid = tickets.create_for_alert(conn, outcome.alert_id, ack_minutes=15, resolve_hours=2)
        with pytest.raises(TransitionError, match="has no worker yet"):
            tickets.transition(conn, tid, "dispatched", Actor("ops", "operations"))
        worker = dispatch.assign_ticket(conn, tid, index, SH, TOPICS, DAY).worker_id
        me = Actor("gw", "grid_worker", worker)
        other = Actor("gw2", "grid_worker", "GW99999")
        with pytest.raises(TransitionError, match="not assigned to you"):
            tickets.transition(conn, tid, "acknowledged", other)
        with pytest.raises(TransitionError, match="cannot become arrived"):
            tickets.transition(conn, tid, "arrived", me)
        with pytest.raises(TransitionError, match="civil_affairs cannot"):
            tickets.transition(conn, tid, "acknowledged", Actor("c", "civil_affairs"))
        dispatch.change_ticket(conn, tid, "acknowledged", me, TOPICS)
        assert conn.execute("SELECT status FROM alerts").fetchone()["status"] == "acknowledged"
        tickets.transition(conn, tid, "arrived", me)
        with pytest.raises(TransitionError, match="say what was done"):
            tickets.transition(conn, tid, "resolved", me, "  ")
        tickets.transition(conn, tid, "resolved", me, "Pumped out, drain cleared")
        tickets.transition(conn, tid, "closed", Actor("ops", "operations"))
        timeline = conn.execute("SELECT actor, to_status, note FROM ticket_events"
                                " WHERE ticket_id = %s ORDER BY id", (tid,)).fetchall()
        assert [e["to_status"] for e in timeline] == [
            "new", "dispatched", "acknowledged", "arrived", "resolved", "closed"]
        assert timeline[4]["note"] == "Pumped out, drain cleared"
        assert timeline[5]["actor"] == "ops"
        assert tickets.allowed_next("closed", "operations") == []


def test_job_claims_run_each_period_once(db_url: str) -> None:
    period = scheduler.period_start(datetime(2026, 11, 20, 1, 2, 33, tzinfo=UTC), 60)
    assert period == datetime(2026, 11, 20, 1, 2, tzinfo=UTC)
    with db.connect(db_url) as a, db.connect(db_url) as b:
        assert scheduler.claim(a, "job", period, "a") is True
        a.commit()
        assert scheduler.claim(b, "job", period, "b") is False
        assert scheduler.claim(b, "job", period + timedelta(minutes=1), "b") is True


def test_overdue_dispatch_gets_one_reminder(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        outcome = alerts.raise_alert(conn, gauge_signal(gauge))
        tid = tickets.create_for_alert(conn, outcome.alert_id, ack_minutes=15, resolve_hours=2)
        dispatch.assign_ticket(conn, tid, index, SH, TOPICS, DAY)
        assert scheduler.remind_overdue(conn, TOPICS) == []
        conn.execute("UPDATE tickets SET ack_due_at = now() - interval '1 minute'")
        assert scheduler.remind_overdue(conn, TOPICS) == [tid]
        assert scheduler.remind_overdue(conn, TOPICS) == []
        assert conn.execute("SELECT count(*) AS n FROM dispatches").fetchone()["n"] == 2
