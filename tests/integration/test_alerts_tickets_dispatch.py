"""Alerts, the case workflow and dispatch by grid against the real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cityops.cases import assignment as dispatch
from cityops.cases import opening, outbox, tickets
from cityops.cases.clock import CaseClock
from cityops.cases.policy import SEVERITY_PRIORITY
from cityops.cases.tickets import Actor, NewCase, TransitionError
from cityops.org.geo import distance_m
from cityops.org.grids import GridIndex
from cityops.platform import db, scheduler
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing import alerts
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SH = ZoneInfo("Asia/Shanghai")
TOPICS = Topics("test/v1")
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=4,
                     flood_gauges=3, manhole_covers=3, cameras=2)
# 2026-11-20 is a Friday; 10:00 in Shanghai is the day shift, 23:00 and 03:00 the night shift
DAY = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
OPS = Actor("ops", "operations")
SUPERVISOR = Actor("sup", "supervisor")
CLOCK = CaseClock.from_settings(Settings())


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


def open_case(conn, gauge: dict, severity: str = "medium", at: datetime = DAY) -> int:
    """A flood alert at the gauge and its case, accepted and registered by the system."""
    outcome = alerts.raise_alert(conn, gauge_signal(gauge, at, severity))
    urgent = SEVERITY_PRIORITY[severity] == "urgent"
    ticket_id = opening.create_for_alert(conn, outcome.alert_id,
                                         dispatch_due_at=CLOCK.dispatch_due(at, urgent))
    assert ticket_id is not None
    return ticket_id


def filed_case(conn, lon: float, lat: float, *, priority: str = "normal", **extra) -> int:
    """A case filed by hand (not from an alert), accepted and registered by operations."""
    case = NewCase(source="patrol", category="C0102", title="Rain grate blocked",
                   description="Leaves over the grate", priority=priority, lon=lon, lat=lat,
                   **extra)
    ticket_id = tickets.create_case(conn, case, OPS)
    tickets.transition(conn, ticket_id, "accepted", OPS)
    tickets.transition(conn, ticket_id, "registered", OPS)
    return ticket_id


def status(conn, ticket_id: int) -> str:
    return conn.execute("SELECT status FROM tickets WHERE id = %s", (ticket_id,)).fetchone()[
        "status"]


def day_worker(district, cell: str) -> str:
    return next(w["id"] for w in district.workers if w["cell_code"] == cell)


def test_alert_opens_a_case_registered_and_dispatched_by_grid(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        ticket_id = open_case(conn, gauge)
        alert_id = conn.execute("SELECT alert_id FROM tickets").fetchone()["alert_id"]
        assert opening.create_for_alert(conn, alert_id) is None
        assignment = dispatch.assign_ticket(conn, ticket_id, index, CLOCK, TOPICS, DAY)
        worker = day_worker(district, gauge["grid_code"])
        assert assignment.grid_code == gauge["grid_code"]
        assert assignment.worker_id == worker
        assert "on duty in cell" in assignment.reason and "08:00-20:00" in assignment.reason
        ticket = conn.execute("SELECT * FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
        assert ticket["status"] == "dispatched" and ticket["priority"] == "normal"
        assert ticket["worker_id"] == worker and ticket["category"] == "E0401"
        # limits in working time: dispatch and sign for 1 h, E0401 handled within 2 h
        assert ticket["dispatch_due_at"] == DAY + timedelta(hours=1)
        assert ticket["ack_due_at"] == DAY + timedelta(hours=1)
        assert ticket["due_at"] == DAY + timedelta(hours=2)
        events = conn.execute("SELECT actor, role, kind, from_status, to_status, note"
                              " FROM ticket_events WHERE ticket_id = %s ORDER BY id",
                              (ticket_id,)).fetchall()
        assert [(e["kind"], e["from_status"], e["to_status"]) for e in events] == [
            ("transition", None, "reported"), ("transition", "reported", "accepted"),
            ("transition", "accepted", "registered"),
            ("assignment", "registered", "registered"),
            ("transition", "registered", "dispatched")]
        assert events[3]["note"] == assignment.reason and events[3]["role"] == "system"
        outbox = conn.execute("SELECT topic, payload FROM dispatches").fetchone()
        assert outbox["topic"] == f"test/v1/dispatch/{worker}"
        assert outbox["payload"]["tasks"][0]["ticket_id"] == ticket_id
        with pytest.raises(TransitionError, match="only a registered or returned case"):
            dispatch.assign_ticket(conn, ticket_id, index, CLOCK, TOPICS, DAY)


def test_limits_of_an_urgent_case_run_in_clock_time(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    friday_evening = datetime(2026, 11, 20, 17, 0, tzinfo=SH)
    with db.connect(url) as conn:
        urgent = open_case(conn, gauge, "high", friday_evening)
        dispatch.assign_ticket(conn, urgent, index, CLOCK, TOPICS, friday_evening)
        row = conn.execute("SELECT dispatch_due_at, ack_due_at, due_at FROM tickets"
                           " WHERE id = %s", (urgent,)).fetchone()
        assert row["dispatch_due_at"] == friday_evening + timedelta(hours=1)
        assert row["ack_due_at"] == friday_evening + timedelta(hours=1)
        assert row["due_at"] == friday_evening + timedelta(hours=2)
        # a normal case at the same time: half an hour on Friday, the rest on Monday
        normal = filed_case(conn, gauge["lon"], gauge["lat"])
        dispatch.assign_ticket(conn, normal, index, CLOCK, TOPICS, friday_evening)
        row = conn.execute("SELECT ack_due_at, due_at FROM tickets WHERE id = %s",
                           (normal,)).fetchone()
        assert row["ack_due_at"] == datetime(2026, 11, 23, 9, 30, tzinfo=SH)
        assert row["due_at"] == datetime(2026, 11, 24, 9, 30, tzinfo=SH)  # C0102: 8 h


def test_nobody_on_duty_falls_back_to_the_neighbouring_cells(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        conn.execute("UPDATE workers SET active = false WHERE cell_code = %s",
                     (gauge["grid_code"],))
        ticket_id = open_case(conn, gauge)
        assignment = dispatch.assign_ticket(conn, ticket_id, index, CLOCK, TOPICS, DAY)
        assert assignment.worker_id is not None
        worker_cell = next(w["cell_code"] for w in district.workers
                           if w["id"] == assignment.worker_id)
        assert worker_cell != gauge["grid_code"]
        assert "nobody available in" in assignment.reason


def test_overloaded_worker_is_skipped_and_the_reason_says_so(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    busy = day_worker(district, gauge["grid_code"])
    clock = CaseClock.from_settings(Settings(cases={"max_open_per_worker": 2}))
    with db.connect(url) as conn:
        # two cases in hand (signed for, in progress) make the cell's day worker overloaded;
        # a handled one no longer counts
        for state in ("signed_for", "in_progress", "handled"):
            conn.execute(
                "INSERT INTO tickets (title, description, category, priority, status, worker_id)"
                " VALUES ('x', 'x', 'E9999', 'normal', %s, %s)", (state, busy))
        ticket_id = open_case(conn, gauge)
        assignment = dispatch.assign_ticket(conn, ticket_id, index, clock, TOPICS, DAY)
        assert assignment.worker_id not in (None, busy)
        assert f"skipped {busy} overloaded (2 cases in hand, limit 2)" in assignment.reason
        reason = conn.execute("SELECT note FROM ticket_events WHERE kind = 'assignment'"
                              " AND ticket_id = %s", (ticket_id,)).fetchone()["note"]
        assert reason == assignment.reason
        # with the default limit of 8 the same worker takes it
        second = filed_case(conn, gauge["lon"], gauge["lat"])
        assert dispatch.assign_ticket(conn, second, index, CLOCK, TOPICS, DAY).worker_id == busy


def test_urgent_case_goes_to_the_nearest_worker_by_position_or_cell_centre(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    cell = gauge["grid_code"]
    street = next(c for c in index.ancestors(cell) if index.cells[c].level == "street")
    other_cell = next(c for c in index.cells
                      if index.cells[c].level == "community" and c != cell
                      and street in index.ancestors(c))
    far = day_worker(district, other_cell)
    with db.connect(url) as conn:
        # the other cell's worker sent a position 5 minutes ago, right at the gauge
        conn.execute("UPDATE workers SET last_lon = %s, last_lat = %s, position_at = %s"
                     " WHERE id = %s", (gauge["lon"], gauge["lat"], DAY - timedelta(minutes=5),
                                        far))
        first = open_case(conn, gauge, "high")
        assignment = dispatch.assign_ticket(conn, first, index, CLOCK, TOPICS, DAY)
        assert assignment.worker_id == far
        assert assignment.reason.startswith(f"urgent: nearest available on duty in street"
                                            f" {street}: {far}, 0 m away (from the last position")
        # the position is 2 hours old: every worker counts from the centre of their cell
        conn.execute("UPDATE workers SET position_at = %s WHERE id = %s",
                     (DAY - timedelta(hours=2), far))
        second = filed_case(conn, gauge["lon"], gauge["lat"], priority="urgent")
        assignment = dispatch.assign_ticket(conn, second, index, CLOCK, TOPICS, DAY)
        day_shift = {w["id"] for w in dispatch.on_duty(
            conn, [c for c in index.cells if street in index.ancestors(c)
                   and index.cells[c].level == "community"], DAY, SH)}
        centres = {r["id"]: distance_m(r["centroid_lon"], r["centroid_lat"], gauge["lon"],
                                       gauge["lat"])
                   for r in conn.execute("SELECT w.id, g.centroid_lon, g.centroid_lat FROM"
                                         " workers w JOIN grids g ON g.code = w.cell_code")
                   if r["id"] in day_shift}
        nearest = min(centres, key=lambda w: (centres[w], w))
        assert assignment.worker_id == nearest
        assert f"{centres[nearest]:.0f} m away (from the centre of cell" in assignment.reason
        assert "no position in the last 30 min" in assignment.reason


def test_happy_path_from_dispatch_to_closed(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        tid = open_case(conn, gauge)
        worker = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY).worker_id
        me = Actor("gw", "grid_worker", worker)
        assert tickets.allowed_next("dispatched", "grid_worker") == ["returned", "signed_for"]
        dispatch.change_ticket(conn, tid, "signed_for", me, TOPICS)
        assert conn.execute("SELECT status FROM alerts").fetchone()["status"] == "acknowledged"
        dispatch.change_ticket(conn, tid, "in_progress", me, TOPICS)
        photo = tickets.add_photo(conn, tid, b"\xff\xd8 jpeg", "image/jpeg", "gw")
        dispatch.change_ticket(conn, tid, "handled", me, TOPICS, "Pumped out, drain cleared",
                               [photo])
        assert outbox.worker_tasks(conn, worker) == []  # handled: out of the worker's hands
        dispatch.change_ticket(conn, tid, "verified", SUPERVISOR, TOPICS)
        assert tickets.allowed_next("verified", "grid_worker") == []  # closing: the centre's
        with pytest.raises(TransitionError, match="a grid_worker cannot move a ticket to closed"):
            tickets.transition(conn, tid, "closed", me, "done")
        dispatch.change_ticket(conn, tid, "closed", OPS, TOPICS)
        ticket = conn.execute("SELECT * FROM tickets WHERE id = %s", (tid,)).fetchone()
        assert ticket["handled_by"] == "gw" and ticket["verified_by"] == "sup"
        assert ticket["closed_at"] is not None
        timeline = conn.execute("SELECT actor, role, to_status, note, photos FROM ticket_events"
                                " WHERE ticket_id = %s AND kind = 'transition' ORDER BY id",
                                (tid,)).fetchall()
        assert [e["to_status"] for e in timeline] == [
            "reported", "accepted", "registered", "dispatched", "signed_for", "in_progress",
            "handled", "verified", "closed"]
        assert timeline[6]["note"] == "Pumped out, drain cleared"
        assert timeline[6]["photos"] == [photo] and timeline[6]["role"] == "grid_worker"
        assert (timeline[7]["actor"], timeline[7]["role"]) == ("sup", "supervisor")
        assert tickets.allowed_next("closed", "operations") == []  # evaluated: by a rating only
        with pytest.raises(TransitionError, match=r"through cityops\.cases\.ratings"):
            tickets.transition(conn, tid, "evaluated", OPS)


def test_every_refusal_says_why(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        tid = open_case(conn, gauge)
        with pytest.raises(TransitionError, match="did not come from the hotline"):
            tickets.transition(conn, tid, "voided", Actor("h", "hotline"), "not ours")
        with pytest.raises(TransitionError, match="has no worker yet"):
            tickets.transition(conn, tid, "dispatched", OPS)
        worker = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY).worker_id
        me = Actor("gw", "grid_worker", worker)
        other = Actor("gw2", "grid_worker", "GW99999")
        with pytest.raises(TransitionError, match="not assigned to you"):
            tickets.transition(conn, tid, "signed_for", other)
        with pytest.raises(TransitionError, match="cannot become in_progress"):
            tickets.transition(conn, tid, "in_progress", me)
        with pytest.raises(TransitionError, match="civil_affairs cannot"):
            tickets.transition(conn, tid, "signed_for", Actor("c", "civil_affairs"))
        with pytest.raises(TransitionError, match="hotline cannot"):
            tickets.transition(conn, tid, "signed_for", Actor("h", "hotline"))
        with pytest.raises(TransitionError, match="say what was done or why"):
            tickets.transition(conn, tid, "returned", me, " ")
        tickets.transition(conn, tid, "signed_for", me)
        tickets.transition(conn, tid, "in_progress", me)
        with pytest.raises(TransitionError, match="say what was done or why"):
            tickets.transition(conn, tid, "handled", me, "  ")
        tickets.transition(conn, tid, "handled", me, "Pumped out")
        # the handler cannot verify their own work, nor send it to rework
        with pytest.raises(TransitionError, match="handled by you; someone else must verify"):
            tickets.transition(conn, tid, "verified", me)
        with pytest.raises(TransitionError, match="handled by you"):
            tickets.transition(conn, tid, "rework", me, "not good")
        with pytest.raises(TransitionError, match="say what was done or why"):
            tickets.transition(conn, tid, "rework", SUPERVISOR, "")
        with pytest.raises(TransitionError, match="cannot become closed"):
            tickets.transition(conn, tid, "closed", OPS)
        with pytest.raises(TransitionError, match="hotline cannot"):
            tickets.transition(conn, tid, "verified", Actor("h", "hotline"))
        assert status(conn, tid) == "handled"
        # another grid worker (on patrol) may verify
        tickets.transition(conn, tid, "verified", other)
        assert status(conn, tid) == "verified"


def test_returned_case_is_dispatched_again_to_someone_else(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        tid = open_case(conn, gauge)
        first = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY).worker_id
        me = Actor("gw", "grid_worker", first)
        dispatch.change_ticket(conn, tid, "signed_for", me, TOPICS)
        dispatch.change_ticket(conn, tid, "returned", me, TOPICS, "Not our cell: the river bank")
        row = conn.execute("SELECT status, worker_id FROM tickets").fetchone()
        assert (row["status"], row["worker_id"]) == ("returned", None)
        # the worker's phone gets a task list without the case
        last = conn.execute("SELECT payload FROM dispatches WHERE worker_id = %s"
                            " ORDER BY id DESC LIMIT 1", (first,)).fetchone()["payload"]
        assert last["event"]["type"] == "returned" and last["tasks"] == []
        assert tickets.allowed_next("returned", "operations") == ["dispatched"]
        again = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY + timedelta(hours=1))
        assert again.worker_id not in (None, first)
        assert f"skipped {first} returned the case" in again.reason
        assert status(conn, tid) == "dispatched"
        events = conn.execute("SELECT kind, to_status, note FROM ticket_events"
                              " WHERE ticket_id = %s ORDER BY id", (tid,)).fetchall()
        assert [(e["kind"], e["to_status"]) for e in events][-3:] == [
            ("transition", "returned"), ("assignment", "returned"), ("transition", "dispatched")]
        assert events[-3]["note"] == f"Not our cell: the river bank (was {first})"


def test_nobody_available_leaves_the_case_for_dispatch_by_hand(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        conn.execute("UPDATE workers SET active = false")
        tid = open_case(conn, gauge)
        assignment = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY)
        assert assignment.worker_id is None and "dispatch by hand" in assignment.reason
        assert status(conn, tid) == "registered"
        note = conn.execute("SELECT note FROM ticket_events WHERE kind = 'assignment'"
                            ).fetchone()["note"]
        assert note.startswith("not dispatched: nobody available in")
        worker = day_worker(district, gauge["grid_code"])
        with pytest.raises(TransitionError, match="not an active grid worker"):
            dispatch.dispatch_to(conn, tid, worker, OPS, CLOCK, TOPICS, DAY)
        conn.execute("UPDATE workers SET active = true WHERE id = %s", (worker,))
        with pytest.raises(TransitionError, match="grid_worker cannot dispatch"):
            dispatch.dispatch_to(conn, tid, worker, Actor("gw", "grid_worker", worker), CLOCK,
                                 TOPICS, DAY)
        by_hand = dispatch.dispatch_to(conn, tid, worker, OPS, CLOCK, TOPICS, DAY, "knows it")
        assert by_hand.reason == f"dispatched by hand by ops: {worker} (knows it)"
        row = conn.execute("SELECT status, worker_id, ack_due_at FROM tickets").fetchone()
        assert (row["status"], row["worker_id"]) == ("dispatched", worker)
        assert row["ack_due_at"] == DAY + timedelta(hours=1)
        assert [t["ticket_id"] for t in outbox.worker_tasks(conn, worker)] == [tid]


def test_rework_loop_until_verified(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        tid = open_case(conn, gauge)
        worker = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY).worker_id
        me = Actor("gw", "grid_worker", worker)
        for to, note in (("signed_for", ""), ("in_progress", ""), ("handled", "cleared")):
            dispatch.change_ticket(conn, tid, to, me, TOPICS, note)
        dispatch.change_ticket(conn, tid, "rework", SUPERVISOR, TOPICS, "Still 10 cm of water")
        assert [t["status"] for t in outbox.worker_tasks(conn, worker)] == ["rework"]
        with pytest.raises(TransitionError, match="cannot become handled"):
            tickets.transition(conn, tid, "handled", me, "done")
        dispatch.change_ticket(conn, tid, "in_progress", me, TOPICS)
        dispatch.change_ticket(conn, tid, "handled", me, TOPICS, "Pumped out completely")
        dispatch.change_ticket(conn, tid, "verified", SUPERVISOR, TOPICS)
        states = [r["to_status"] for r in conn.execute(
            "SELECT to_status FROM ticket_events WHERE ticket_id = %s AND kind = 'transition'"
            " ORDER BY id", (tid,))]
        assert states[-5:] == ["handled", "rework", "in_progress", "handled", "verified"]


def test_postponement_is_requested_by_the_worker_and_decided_by_operations(district_db) -> None:
    url, district, index = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    with db.connect(url) as conn:
        tid = open_case(conn, gauge)
        worker = dispatch.assign_ticket(conn, tid, index, CLOCK, TOPICS, DAY).worker_id
        me = Actor("gw", "grid_worker", worker)
        later = DAY + timedelta(days=3)
        with pytest.raises(TransitionError, match="cannot be postponed"):
            tickets.request_postponement(conn, tid, me, later, "pump broken")
        tickets.transition(conn, tid, "signed_for", me)
        with pytest.raises(TransitionError, match="only the case's worker"):
            tickets.request_postponement(conn, tid, Actor("x", "grid_worker", "GW99999"), later,
                                         "pump broken")
        with pytest.raises(TransitionError, match="say why"):
            tickets.request_postponement(conn, tid, me, later, " ")
        with pytest.raises(TransitionError, match="later than the current one"):
            tickets.request_postponement(conn, tid, me, DAY, "pump broken")
        with pytest.raises(TransitionError, match="through decide_postponement"):
            tickets.transition(conn, tid, "postponed", OPS, "why not")
        tickets.request_postponement(conn, tid, me, later, "Pump broken, a new one on Monday")
        with pytest.raises(TransitionError, match="already has a postponement waiting"):
            tickets.request_postponement(conn, tid, me, later, "again")
        with pytest.raises(TransitionError, match="grid_worker cannot decide"):
            tickets.decide_postponement(conn, tid, me, True)
        # refused: the case stays as it is, with the refusal on the timeline
        tickets.decide_postponement(conn, tid, OPS, False, "Borrow a pump from street 2")
        assert status(conn, tid) == "signed_for"
        with pytest.raises(TransitionError, match="no postponement waiting"):
            tickets.decide_postponement(conn, tid, OPS, True)
        # asked again and approved: postponed with the new due time, then handled
        tickets.transition(conn, tid, "in_progress", me)
        tickets.request_postponement(conn, tid, me, later, "No pump in the whole district")
        tickets.decide_postponement(conn, tid, OPS, True)
        row = conn.execute("SELECT status, due_at FROM tickets").fetchone()
        assert (row["status"], row["due_at"]) == ("postponed", later)
        assert [t["status"] for t in outbox.worker_tasks(conn, worker)] == ["postponed"]
        tickets.transition(conn, tid, "handled", me, "Pumped out on Monday")
        notes = [r["note"] for r in conn.execute(
            "SELECT note FROM ticket_events WHERE ticket_id = %s AND kind = 'postponement'"
            " ORDER BY id", (tid,))]
        assert len(notes) == 3 and notes[1] == "postponement refused: Borrow a pump from street 2"
        decisions = conn.execute("SELECT approved FROM case_postponements ORDER BY id").fetchall()
        assert [d["approved"] for d in decisions] == [False, True]


def test_fixed_on_the_spot_is_closed_by_its_reporter_only(district_db) -> None:
    url, district, _ = district_db
    gauge = next(d for d in district.devices if d["kind"] == "flood_gauge")
    worker = district.workers[0]["id"]
    with db.connect(url) as conn:
        case = NewCase(source="patrol", category="C0102", title="Grate blocked by leaves",
                       description="Cleared it", lon=gauge["lon"], lat=gauge["lat"],
                       reported_by="gw", fixed_on_spot=True)
        tid = tickets.create_case(conn, case, Actor("gw", "grid_worker", worker))
        with pytest.raises(TransitionError, match="only its reporter closes it at once"):
            tickets.transition(conn, tid, "closed", Actor("gw2", "grid_worker", "GW99999"), "ok")
        with pytest.raises(TransitionError, match="only its reporter closes it at once"):
            tickets.transition(conn, tid, "closed", OPS, "ok")
        with pytest.raises(TransitionError, match="say what was done"):
            tickets.transition(conn, tid, "closed", Actor("gw", "grid_worker", worker), "")
        tickets.transition(conn, tid, "closed", Actor("gw", "grid_worker", worker),
                           "Leaves removed")
        assert status(conn, tid) == "closed"
        # a case not fixed on the spot goes the whole way, even for its reporter
        other = tickets.create_case(conn, NewCase(
            source="patrol", category="C0102", title="Grate broken", description="Cracked",
            reported_by="gw"), Actor("gw", "grid_worker", worker))
        with pytest.raises(TransitionError, match="only its reporter closes it at once"):
            tickets.transition(conn, other, "closed", Actor("gw", "grid_worker", worker), "ok")


def test_consultation_is_closed_at_once_by_the_hotline_only(district_db) -> None:
    url, _, _ = district_db
    hotline = Actor("op1", "hotline")
    with db.connect(url) as conn:
        ask = tickets.create_case(conn, NewCase(
            source="hotline", category="E9999", title="When is the bulky waste collection?",
            description="Caller asks", call_type="consultation", reported_by="op1"), hotline)
        with pytest.raises(TransitionError, match="or the hotline a consultation"):
            tickets.transition(conn, ask, "closed", OPS, "answered")
        with pytest.raises(TransitionError, match="or the hotline a consultation"):
            tickets.transition(conn, ask, "closed", Actor("gw", "grid_worker", "GW00001"), "x")
        tickets.transition(conn, ask, "closed", hotline, "Answered: every first Saturday")
        assert status(conn, ask) == "closed"
        complaint = tickets.create_case(conn, NewCase(
            source="hotline", category="E0302", title="Night construction noise",
            description="Caller complains", call_type="complaint", reported_by="op1"), hotline)
        with pytest.raises(TransitionError, match="or the hotline a consultation"):
            tickets.transition(conn, complaint, "closed", hotline, "answered")
        tickets.transition(conn, complaint, "accepted", hotline)
        tickets.transition(conn, complaint, "registered", hotline)
        assert status(conn, complaint) == "registered"


@pytest.mark.parametrize("local_hour,shift", [(23, "night"), (3, "night"), (10, "day")])
def test_on_duty_follows_the_roster_across_midnight(district_db, local_hour, shift) -> None:
    url, district, _ = district_db
    cell = district.workers[0]["cell_code"]
    day_id, night_id = (w["id"] for w in district.workers if w["cell_code"] == cell)
    at = datetime(2026, 11, 20, local_hour, 30, tzinfo=SH)
    with db.connect(url) as conn:
        on = [w["id"] for w in dispatch.on_duty(conn, [cell], at, SH)]
    assert on == [day_id if shift == "day" else night_id]


def test_job_claims_run_each_period_once(db_url: str) -> None:
    period = scheduler.period_start(datetime(2026, 11, 20, 1, 2, 33, tzinfo=UTC), 60)
    assert period == datetime(2026, 11, 20, 1, 2, tzinfo=UTC)
    with db.connect(db_url) as a, db.connect(db_url) as b:
        assert scheduler.claim(a, "job", period, "a") is True
        a.commit()
        assert scheduler.claim(b, "job", period, "b") is False
        assert scheduler.claim(b, "job", period + timedelta(minutes=1), "b") is True
