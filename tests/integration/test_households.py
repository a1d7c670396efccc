"""Households marked away / in hospital, the water history refresh and the water evaluator,
against the real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from cityops.app.jobs import make_scheduler
from cityops.app.water_rules import water_rules
from cityops.cases import opening
from cityops.cases.intake import IntakeDesk
from cityops.cases.opening import alert_opener
from cityops.cli.main import cli
from cityops.org.grids import GridIndex
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing import alerts, retention, water_history
from cityops.sensing import away as households
from cityops.sensing.detection import DetectionPipeline, DeviceInfo, Window
from cityops.sensing.readings import Reading
from cityops.simulation.district import DistrictSize, generate_district, load_district
from cityops.views import tickets as tickets_view
from cityops.views import water
from dashboards.context import AppContext
from dashboards.pages import ticket

pytestmark = pytest.mark.integration
SH = ZoneInfo("Asia/Shanghai")
SMALL = DistrictSize(streets=1, grids=2, communities=2, households_per_community=3,
                     elderly_alone_share=1.0, flood_gauges=1, manhole_covers=1, cameras=1)
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
STEP = timedelta(minutes=15)


@pytest.fixture
def district_db(db_url: str):
    district = generate_district(5, SMALL)
    with db.connect(db_url) as conn:
        load_district(conn, district)
    meter = next(d for d in district.devices if d["kind"] == "water_meter")
    return db_url, district, meter


def store(url: str, meter: str, start: datetime, end: datetime, litres) -> list[Reading]:  # type: ignore[no-untyped-def]
    """Store 15-minute readings of ``meter`` from ``start`` to ``end``; ``litres(t)`` each; the
    hours they count in are queued for the rollup, as ingest does."""
    rows = []
    t = start
    while t <= end:
        rows.append(Reading(meter, "volume_l", t, float(litres(t))))
        t += STEP
    hours = {(r.ts - timedelta(microseconds=1)).astimezone(UTC).replace(
        minute=0, second=0, microsecond=0) for r in rows}
    with db.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO readings (device_id, metric, ts, value) VALUES (%s, %s, %s,"
                        " %s)", [tuple(r) for r in rows])
        cur.executemany("INSERT INTO readings_dirty_hours (hour) VALUES (%s)",
                        [(h,) for h in sorted(hours)])
    return rows


def ordinary(t: datetime) -> float:
    """An ordinary day: water at 07-09, 12, 18-21 local."""
    return 5.0 if t.astimezone(SH).hour in (7, 8, 12, 18, 19, 20) else 0.0


def test_mark_replace_end_and_audit(district_db) -> None:
    url, _district, meter = district_db
    hid = meter["household_id"]
    with db.connect(url) as conn:
        first = households.mark_away(conn, hid, NOW + timedelta(days=3), "away", "wang", NOW)
        assert households.current_absences(conn, NOW + timedelta(days=1)) == {hid: first}
        assert set(households.absent_meters(conn, NOW + timedelta(days=1))) == {meter["id"]}
        assert households.absent_meters(conn, NOW + timedelta(days=4)) == {}  # ended by date
        second = households.mark_away(conn, hid, NOW + timedelta(days=9), "hospital", "li",
                                      NOW + timedelta(hours=1), note="fell")
        marks = households.current_absences(conn, NOW + timedelta(days=2), [hid])
        assert marks[hid] == second and second.reason == "hospital"
        assert households.end_absence(conn, hid, "li", NOW + timedelta(days=2))
        assert households.current_absences(conn, NOW + timedelta(days=2, hours=1)) == {}
        assert not households.end_absence(conn, hid, "li", NOW + timedelta(days=2, hours=1))
        actions = [r["action"] for r in conn.execute(
            "SELECT action FROM audit_log WHERE subject = %s ORDER BY id", (f"household {hid}",))]
        assert actions == ["mark_away", "mark_hospital", "end_absence"]
        with pytest.raises(households.AbsenceError, match="reason must be one of"):
            households.mark_away(conn, hid, NOW + timedelta(days=1), "holiday", "li", NOW)
        with pytest.raises(households.AbsenceError, match="not in the future"):
            households.mark_away(conn, hid, NOW - timedelta(days=1), "away", "li", NOW)
        with pytest.raises(households.AbsenceError, match="there is no household NOPE"):
            households.mark_away(conn, "NOPE", NOW + timedelta(days=1), "away", "li", NOW)


def test_cli_marks_a_household_away(district_db, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _district, meter = district_db
    monkeypatch.setenv("CITYOPS_DATABASE_URL", url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    until = (datetime.now(SH) + timedelta(days=2)).date().isoformat()
    runner = CliRunner()
    done = runner.invoke(cli, ["household", "away", meter["household_id"], "--until", until,
                               "--reason", "hospital", "--by", "zhao"])
    assert done.exit_code == 0, done.output
    assert f"marked hospital until {until[:4]}" in done.output
    with db.connect(url) as conn:
        mark = households.current_absences(conn, datetime.now(UTC))[meter["household_id"]]
    assert mark.set_by == "zhao" and mark.until.astimezone(SH).hour == 0  # the next midnight
    bad = runner.invoke(cli, ["household", "away", meter["household_id"], "--until", "soon"])
    assert bad.exit_code == 2 and "is not a date" in bad.output
    back = runner.invoke(cli, ["household", "back", meter["household_id"]])
    assert back.exit_code == 0 and "mark ended" in back.output


def test_no_water_alert_opens_while_the_household_is_away(district_db) -> None:
    url, district, meter = district_db
    settings = Settings(database_url=url, detection={"water": {"cache_seconds": 0}})
    evaluate = water_rules(settings)
    database = Database.open(url, max_size=2)
    try:
        pipeline = DetectionPipeline(database, evaluate,
                                     on_opened=alert_opener(settings, GridIndex(district.cells)))
        evening = NOW - timedelta(hours=14)
        # water at 20:00, then nothing from 20:15 until 10:00 (a silent morning)
        rows = store(url, meter["id"], evening - timedelta(hours=2), NOW,
                     lambda t: 5.0 if t <= evening else 0.0)
        with db.connect(url) as conn:
            households.mark_away(conn, meter["household_id"], NOW + timedelta(days=2),
                                 "hospital", "wang", evening - timedelta(days=1))
        pipeline.process(rows[-4:])
        with db.connect(url) as conn:
            assert conn.execute("SELECT count(*) AS n FROM alerts").fetchone()["n"] == 0
            households.end_absence(conn, meter["household_id"], "wang", evening)
        pipeline.process(rows[-2:])
        with db.connect(url) as conn:
            alert = conn.execute("SELECT kind, message, details FROM alerts").fetchone()
        assert alert["kind"] == "water_silence"
        assert alert["message"].startswith("No water used since 20:00 (14 h);")
        assert alert["details"]["baseline"] == "population"
        assert pipeline.stats.alerts_opened == 1 and pipeline.stats.errors == 0
    finally:
        database.close()


def test_history_refresh_gives_the_household_its_own_baseline(district_db) -> None:
    url, _district, meter = district_db
    start = NOW - timedelta(days=20)
    store(url, meter["id"], start, NOW, ordinary)
    with db.connect(url) as conn:
        retention.refresh_rollups(conn, NOW.astimezone(UTC), Settings().retention)
        stored = water_history.refresh_history(conn, NOW.astimezone(UTC), days=56)
        assert stored == 1
        (history,) = water_history.histories(conn)
        assert water_history.histories(conn, history.computed_at) == []
    assert history.device_id == meter["id"] and len(history.litres) == 56 * 24
    hours = dict(zip(history.hour_ends(), history.litres, strict=True))
    eight = datetime(2026, 11, 19, 8, 0, tzinfo=SH)  # the hour 07-08: readings 07:15 ... 08:00
    assert hours[eight] == 20.0 and hours[eight - timedelta(days=30)] is None
    settings = Settings(database_url=url,
                        detection={"water": {"cache_seconds": 0, "unusual_min_days": 7}})
    evaluate = water_rules(settings)
    # on its own baseline (water every day 07-09 and at 12) 14 h without water by 10:00 is far
    # beyond its usual gap at that hour (the 4 h floor): critical
    times = [NOW - timedelta(hours=14) + i * STEP for i in range(57)]
    volumes = [5.0 if i == 0 else 0.0 for i in range(57)]
    device = DeviceInfo(meter["id"], "water_meter", "m", meter["grid_code"], 0, 0, {})
    found = evaluate(device, Window({"volume_l": times}, {"volume_l": volumes}))
    silence = next(d for d in found if d.kind == "water_silence")
    assert silence.details["baseline"] == "household"
    assert silence.severity == "critical" and silence.details["rule"] == "long_silence"
    assert 0 <= silence.details["unusual_yesterday"] <= 1  # an annotation, never a trigger
    assert silence.message == ("No water used since 20:00 (14 h); usually never more than 4 h"
                               " without water at this time of day")
    # the ticket chart reads the same history
    with db.connect(url) as conn:
        chart = water.water_day_chart(conn, meter["id"], NOW, SH)
    assert chart is not None and len(chart["band_low_l"]) == 24
    assert chart["today"][7] == 20.0 and chart["band_high_l"][7] == 20.0


def test_a_water_ticket_shows_today_against_the_usual_range(district_db) -> None:
    url, _district, meter = district_db
    store(url, meter["id"], NOW - timedelta(days=20), NOW, ordinary)
    with db.connect(url) as conn:
        retention.refresh_rollups(conn, NOW.astimezone(UTC), Settings().retention)
        water_history.refresh_history(conn, NOW.astimezone(UTC), days=56)
        signal = alerts.AlertSignal(meter["id"], "water_silence", "high", "No water used since",
                                    NOW, meter["grid_code"], meter["lon"], meter["lat"])
        alert_id = alerts.raise_alert(conn, signal).alert_id
        ticket_id = opening.create_for_alert(conn, alert_id)
        conn.commit()
        household = conn.execute("SELECT head_name, phone, address FROM households WHERE id = %s",
                                 (meter["household_id"],)).fetchone()
    database = Database.open(url, max_size=2)
    try:
        settings = Settings(database_url=url)
        ctx = AppContext(database, settings, IntakeDesk(database, settings))
        detail = tickets_view.read_ticket(database, ticket_id, NOW, SH)
        assert detail is not None
        sections = ticket.body_view(detail, ctx, NOW)
    finally:
        database.close()
    shown = str(sections)
    assert "tk-water-chart" in shown, shown[-3000:]
    figure = next(c.figure for section in sections for c in section.children
                  if getattr(c, "id", None) == "tk-water-chart")
    names = [trace.name for trace in figure.data]
    assert "today" in names and any(n and n.startswith("usual range (") for n in names)
    for personal in household.values():  # a grid worker sees the chart, never the resident
        assert personal is None or str(personal) not in shown


def test_the_scheduler_stores_the_water_history_at_start(district_db) -> None:
    url, _district, meter = district_db
    now = datetime.now(UTC)
    store(url, meter["id"], now - timedelta(days=2), now, ordinary)
    database = Database.open(url, max_size=3)
    jobs = make_scheduler(database, Settings(), Topics("test/v1"), send_outbox=lambda: 0)
    try:
        jobs.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with db.connect(url) as conn:
                if water_history.histories(conn):
                    break
            time.sleep(0.2)
        with db.connect(url) as conn:
            (history,) = water_history.histories(conn)
            claimed = conn.execute("SELECT count(*) AS n FROM job_claims"
                                   " WHERE job = 'water-history'").fetchone()["n"]
        assert history.device_id == meter["id"] and claimed == 1
    finally:
        jobs.stop()
        database.close()
