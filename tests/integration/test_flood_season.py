"""Flood season: key sites of the synthetic district, pre-season inspections, flood events and
their reports, and the wall's flood view in headless Chromium (tests/artifacts/wall-flood.png)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cityops.cases import opening
from cityops.cases.tickets import Actor, NewCase, create_case, transition
from cityops.flood import events as flood_events
from cityops.flood import key_sites
from cityops.flood import season as flood_season
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import FloodSeasonSettings, Settings
from cityops.platform.topics import Topics
from cityops.sensing.alerts import AlertSignal, raise_alert
from cityops.simulation.district import DistrictSize, generate_district, load_district

SMALL = DistrictSize(streets=3, grids=6, communities=15, households_per_community=6,
                     flood_gauges=4, manhole_covers=5, cameras=3)
TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings()
INSPECTED = ("underpass", "low_road", "basement")


# --- key sites ---------------------------------------------------------------------------------





@pytest.mark.integration
def test_load_district_loads_the_key_sites(db_url: str) -> None:
    district = generate_district(2, SMALL)
    with db.connect(db_url) as conn:
        load_district(conn, district)
        rows = conn.execute("SELECT id, kind, name, grid_code, lon, lat, capacity, notes"
                            " FROM key_sites ORDER BY id").fetchall()
        assert rows == sorted(district.key_sites, key=lambda k: k["id"])
        listed = key_sites.key_sites(conn)
        assert len(listed) == len(rows) and all(k["cell"] for k in listed)


# --- inspections -------------------------------------------------------------------------------

def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)




def _inspections(conn: Any) -> list[dict[str, Any]]:
    return list(conn.execute(
        "SELECT t.id, t.key_site_id, t.title, t.status, t.source, t.category, t.worker_id,"
        " t.unit, k.kind FROM tickets t JOIN key_sites k ON k.id = t.key_site_id"
        " WHERE t.category = 'C0206' ORDER BY t.key_site_id, t.id").fetchall())


@pytest.mark.integration
def test_inspections_once_per_site_and_season(db_url: str) -> None:
    with db.connect(db_url, autocommit=True) as conn:
        load_district(conn, generate_district(2, SMALL))
        sites = [r["id"] for r in conn.execute(
            "SELECT id FROM key_sites WHERE kind = ANY(%s) ORDER BY id", (list(INSPECTED),))]
        assert len(sites) == 21
        # 15 days before the season: not yet
        assert flood_season.create_inspections(conn, _local("2027-05-17 10:00"), SETTINGS) == []
        created = flood_season.create_inspections(conn, _local("2027-05-18 10:00"), SETTINGS)
        assert len(created) == 21
        cases = _inspections(conn)
        assert [c["key_site_id"] for c in cases] == sites
        for c in cases:
            assert c["source"] == "scheduled" and c["title"].startswith(
                "Flood-season inspection 2027: ")
            assert c["status"] == "dispatched" and c["worker_id"] is not None  # 10:00: day shift
            assert c["unit"] == "District flood control office"
        events = conn.execute(
            "SELECT actor, from_status, to_status FROM ticket_events WHERE ticket_id = %s"
            " AND kind = 'transition' ORDER BY id", (created[0],)).fetchall()
        assert [(e["actor"], e["to_status"]) for e in events] == [
            ("system", "reported"), ("system", "accepted"), ("system", "registered"),
            ("system", "dispatched")]
        # run again the same day, a week later, during the season: nothing new
        for when in ("2027-05-18 10:00", "2027-05-25 10:00", "2027-07-01 10:00"):
            assert flood_season.create_inspections(conn, _local(when), SETTINGS) == []
        # a site added during the season gets its inspection; after the season nothing
        conn.execute("INSERT INTO key_sites (id, kind, name, grid_code, lon, lat)"
                     " SELECT 'UP9901', 'underpass', 'Underpass, new', grid_code, lon, lat"
                     " FROM key_sites WHERE id = %s", (sites[0],))
        assert flood_season.create_inspections(conn, _local("2027-10-01 10:00"), SETTINGS) == []
        assert len(flood_season.create_inspections(conn, _local("2027-08-02 10:00"),
                                                   SETTINGS)) == 1
        # next year's season: a new round
        assert len(flood_season.create_inspections(conn, _local("2028-05-20 10:00"),
                                                   SETTINGS)) == 22
        per_site = Counter(c["key_site_id"] for c in _inspections(conn))
        assert set(per_site.values()) == {2} and len(per_site) == 22


@pytest.mark.integration
def test_inspections_created_by_concurrent_runs_are_not_doubled(db_url: str) -> None:
    with db.connect(db_url, autocommit=True) as conn:
        load_district(conn, generate_district(2, SMALL))
    now = _local("2027-06-03 09:30")
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            with db.connect(db_url) as conn:
                barrier.wait()
                with conn.transaction():
                    results.append(flood_season.create_inspections(conn, now, SETTINGS))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(len(r) for r in results)[-1] == 21 and sum(len(r) for r in results) == 21
    with db.connect(db_url) as conn:
        per_site = Counter(c["key_site_id"] for c in _inspections(conn))
    assert len(per_site) == 21 and set(per_site.values()) == {1}


# --- flood events ------------------------------------------------------------------------------

BASE = datetime(2026, 7, 14, 0, 0, tzinfo=UTC)


def _at(hhmm: str) -> datetime:
    h, m = hhmm.split(":")
    return BASE + timedelta(hours=int(h), minutes=int(m))


def _alert(conn: Any, device: str, start: str, end: str | None, *, kind: str = "flood_depth",
           severity: str = "high", details: dict[str, Any] | None = None,
           by_hand: bool = False) -> int:
    dev = conn.execute("SELECT * FROM devices WHERE id = %s", (device,)).fetchone()
    alert_id = raise_alert(conn, AlertSignal(
        source_id=device, kind=kind, severity=severity, message=f"water at {device}",
        observed_at=_at(start), grid_code=dev["grid_code"], lon=dev["lon"], lat=dev["lat"],
        details={"levels_mm": [150, 270, 500], **(details or {})})).alert_id
    if end is not None:
        if by_hand:
            conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = %s WHERE id = %s",
                         (_at(end), alert_id))
        else:
            conn.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = now(),"
                " details = details || jsonb_build_object('cleared_at', %s::timestamptz)"
                " WHERE id = %s", (_at(end), alert_id))
    return alert_id


def _case(conn: Any, worker: str, times: dict[str, str], *, alert_id: int | None = None,
          opened: str | None = None) -> int:
    """A flood case moved through the workflow, its events then put at the given times."""
    ops = Actor("ops1", "operations")
    gw = Actor("gw", "grid_worker", worker_id=worker)
    if alert_id is not None:
        ticket_id = opening.create_for_alert(conn, alert_id)
        assert ticket_id is not None
    else:
        ticket_id = create_case(conn, NewCase(source="citizen", category="E0401",
                                              title="Water on the road", description="deep"),
                                ops)
        transition(conn, ticket_id, "accepted", ops)
        transition(conn, ticket_id, "registered", ops)
    conn.execute("UPDATE tickets SET worker_id = %s WHERE id = %s", (worker, ticket_id))
    transition(conn, ticket_id, "dispatched", Actor.system(), "test")
    if "signed_for" in times:
        transition(conn, ticket_id, "signed_for", gw)
    if "handled" in times:
        transition(conn, ticket_id, "in_progress", gw)
        transition(conn, ticket_id, "handled", gw, "pumped out")
    for status, hhmm in times.items():
        conn.execute("UPDATE ticket_events SET at = %s WHERE ticket_id = %s AND to_status = %s",
                     (_at(hhmm), ticket_id, status))
    if opened is not None:
        conn.execute("UPDATE tickets SET created_at = %s WHERE id = %s", (_at(opened), ticket_id))
        conn.execute("UPDATE ticket_events SET at = %s WHERE ticket_id = %s"
                     " AND to_status IN ('reported', 'accepted', 'registered')",
                     (_at(opened), ticket_id))
    return ticket_id


def _known_floods(conn: Any) -> dict[str, Any]:
    load_district(conn, generate_district(2, SMALL))
    worker = conn.execute("SELECT id FROM workers ORDER BY id LIMIT 1").fetchone()["id"]
    for hhmm, mm in [("08:00", 160), ("08:10", 280), ("08:20", 310), ("08:40", 200),
                     ("09:00", 60), ("13:00", 155)]:
        conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                     " VALUES ('FG000001', 'depth_mm', %s, %s)", (_at(hhmm), mm))
    for hhmm, mm in [("08:30", 150), ("08:50", 220), ("09:40", 40)]:
        conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                     " VALUES ('FG000002', 'depth_mm', %s, %s)", (_at(hhmm), mm))
    a = {
        "a1": _alert(conn, "FG000001", "08:00", "09:00", severity="critical"),
        "a2": _alert(conn, "FG000002", "08:30", "10:00"),
        # 45 min after the event's end so far: the same event; depth only in its details
        "a3": _alert(conn, "FG000003", "10:45", "11:30", severity="medium",
                     details={"depth_mm": 180}, by_hand=True),
        # 90 min later: a new event ...
        "a4": _alert(conn, "FG000001", "13:00", "13:20", severity="medium"),
        # ... joined by an alert exactly 60 min after its end
        "a5": _alert(conn, "FG000004", "14:20", "14:40", severity="medium"),
        # a manhole alert in between is no flood
        "m1": _alert(conn, "MC000001", "12:00", "12:10", kind="manhole_tilt"),
        "a6": _alert(conn, "FG000002", "18:00", None, severity="medium",
                     details={"depth_mm": 170}),
    }
    t = {
        "t1": _case(conn, worker, {"dispatched": "08:05", "signed_for": "08:15",
                                   "handled": "09:05"}, alert_id=a["a1"], opened="08:01"),
        "t2": _case(conn, worker, {"dispatched": "08:35", "signed_for": "08:55",
                                   "handled": "10:35"}, alert_id=a["a2"], opened="08:31"),
        "t3": _case(conn, worker, {"dispatched": "09:20", "signed_for": "09:50"},
                    opened="09:10"),
        "t4": _case(conn, worker, {"dispatched": "12:05"}, opened="12:00"),  # between events
    }
    return {"alerts": a, "tickets": t}


@pytest.mark.integration
def test_flood_events_merge_and_split(db_url: str) -> None:
    with db.connect(db_url, autocommit=True) as conn:
        k = _known_floods(conn)
        a = k["alerts"]
        events = flood_events.flood_events(conn, _at("00:00"), _at("23:59"), detail=False)
        assert [(e["id"], e["start"], e["end"]) for e in events] == [
            (a["a1"], _at("08:00"), _at("11:30")),
            (a["a4"], _at("13:00"), _at("14:40")),
            (a["a6"], _at("18:00"), None),
        ]
        assert [[x["id"] for x in e["alerts"]] for e in events] == [
            [a["a1"], a["a2"], a["a3"]], [a["a4"], a["a5"]], [a["a6"]]]
        # a window inside an event finds all of it; a window between events finds none
        inside = flood_events.flood_events(conn, _at("09:30"), _at("09:40"), detail=False)
        assert [(e["start"], e["end"]) for e in inside] == [(_at("08:00"), _at("11:30"))]
        assert flood_events.flood_events(conn, _at("12:00"), _at("12:30")) == []
        assert flood_events.current_flood(conn, _at("12:00"), TZ) is None
        flood = flood_events.current_flood(conn, _at("19:00"))  # a6 is open
        assert flood is not None and flood["id"] == a["a6"] and flood["active"]
        assert [g["depth_mm"] for g in flood["gauges"]] == [170]
        assert flood["streets"] and flood["crews"]
        # a low alert (a river's action stage) is no flood: neither an event nor the wall's view
        gauge = conn.execute("SELECT source_id FROM alerts WHERE id = %s", (a["a1"],)).fetchone()
        _alert(conn, gauge["source_id"], "15:50", "16:10", kind="flood_depth", severity="low")
        assert flood_events.flood_events(conn, _at("15:00"), _at("17:00"), detail=False) == []
        # split at exactly 60 min + 1 s
        assert len(flood_events.merge_alerts([
            {"id": 1, "first_seen": _at("01:00"), "ended": _at("02:00")},
            {"id": 2, "first_seen": _at("03:00") + timedelta(seconds=1), "ended": _at("04:00")},
        ])) == 2


@pytest.mark.integration
def test_flood_report_numbers(db_url: str) -> None:
    with db.connect(db_url, autocommit=True) as conn:
        k = _known_floods(conn)
        a, t = k["alerts"], k["tickets"]
        event = flood_events.flood_event(conn, str(a["a1"]), _at("23:00"))
        assert event is not None
        assert event["id"] == a["a1"] and not event["active"]
        assert event["duration_s"] == 3.5 * 3600
        gauges = {g["device_id"]: g for g in event["gauges"]}
        assert list(gauges) == ["FG000001", "FG000002", "FG000003"]  # by peak, deepest first
        g1 = gauges["FG000001"]
        assert (g1["peak_mm"], g1["peak_at"]) == (310, _at("08:20"))
        assert g1["peak_level"] == "level 2 of 3 (270 mm)"
        assert [(c["level"], c["at"]) for c in g1["crossed"]] == [(1, _at("08:00")),
                                                                  (2, _at("08:10"))]
        assert gauges["FG000002"]["peak_mm"] == 220
        assert gauges["FG000003"]["peak_mm"] == 180  # from the alert's details
        assert [(c["level"], c["at"]) for c in gauges["FG000003"]["crossed"]] == [
            (1, _at("10:45"))]
        assert event["peak_mm"] == 310
        assert [c["id"] for c in event["cases"]] == [t["t1"], t["t2"], t["t3"]]
        cases = {c["id"]: c for c in event["cases"]}
        assert [cases[t[x]]["sign_s"] for x in ("t1", "t2", "t3")] == [600, 1200, 1800]
        assert [cases[t[x]]["handle_s"] for x in ("t1", "t2")] == [3600, 7200]
        assert cases[t["t3"]]["handle_s"] is None and cases[t["t3"]]["open"]
        assert event["response"] == {
            "sign": {"n": 3, "median_s": 1200, "max_s": 1800},
            "handle": {"n": 2, "median_s": 5400, "max_s": 5400 + 1800},
        }
        timeline = event["timeline"]
        assert (timeline[0]["kind"], timeline[0]["at"]) == ("first_alert", _at("08:00"))
        assert (timeline[-1]["kind"], timeline[-1]["at"]) == ("last_resolved", _at("11:30"))
        kinds = Counter(x["kind"] for x in timeline)
        assert kinds["level"] == 4 and kinds["case_reported"] == 3 and kinds["case_dispatched"] == 3
        assert kinds["case_signed_for"] == 3 and kinds["case_handled"] == 2
        assert kinds["resolved"] == 2 and kinds["alert"] == 2
        assert [x["at"] for x in timeline] == sorted(x["at"] for x in timeline)
        # the same event found by a time inside it; no event at a time outside any
        by_alert = flood_events.flood_event(conn, str(a["a3"]), _at("23:00"))
        assert by_alert is not None and by_alert["id"] == a["a1"]
        by_time = flood_events.flood_event(conn, _at("10:15").isoformat(), _at("23:00"))
        assert by_time is not None and by_time["id"] == a["a1"]
        assert flood_events.flood_event(conn, _at("12:30").isoformat(), _at("23:00")) is None
        assert flood_events.flood_event(conn, str(a["m1"]), _at("23:00")) is None


# --- the wall's flood view in Chromium ----------------------------------------------------------





@pytest.mark.integration
def test_the_scheduler_job_files_the_inspections_once(db_url: str) -> None:
    from cityops.app.jobs import make_scheduler

    with db.connect(db_url, autocommit=True) as conn:
        load_district(conn, generate_district(2, SMALL))
    # a season of the whole year: the job files today
    settings = Settings(flood_season=FloodSeasonSettings(season_start="01-01",
                                                         season_end="12-31"))
    database = Database.open(db_url, max_size=4)
    try:
        schedulers = [make_scheduler(database, settings, Topics("test/v1"), send_outbox=lambda: 0)
                      for _ in range(2)]
        jobs = [s.job("flood-inspections") for s in schedulers]
        assert all(j is not None and j.next_run_time is not None for j in jobs)
        barrier = threading.Barrier(2)

        def tick(job: Any) -> None:
            barrier.wait()
            job.func()

        threads = [threading.Thread(target=tick, args=(j,)) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for job in jobs:  # again the same day: the day is claimed
            job.func()
    finally:
        database.close()
    with db.connect(db_url) as conn:
        per_site = Counter(c["key_site_id"] for c in _inspections(conn))
        claims = conn.execute("SELECT count(*) AS n FROM job_claims"
                              " WHERE job = 'flood-inspections'").fetchone()["n"]
    assert len(per_site) == 21 and set(per_site.values()) == {1}
    assert claims in (1, 2)  # two only if the runs straddled midnight UTC
