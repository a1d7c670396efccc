"""Case metrics on a known set of cases in a real database, with every figure worked out by hand.

The cases move through the real state machine (``cityops.cases.tickets``), postponements and ratings
(``cityops.cases.ratings``); after each move the event's time is set to the planned one, so the
stage times are known. Duplicate links and due times are written directly, as the linking and
dispatch code would. The web part checks the report page's role guard and the CSV it downloads.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cityops.cases import ratings, tickets
from cityops.cases.metrics import (
    STAGES,
    MetricsRow,
    Rate,
    case_metrics,
    csv_header,
    metrics_csv,
)
from cityops.cases.tickets import Actor, NewCase
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.worktime import load_calendar
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration

SIZE = DistrictSize(streets=2, grids=2, communities=4, households_per_community=2,
                    flood_gauges=1, manhole_covers=1, cameras=1)
B = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the period is [B, B + 7 days)
PERIOD = (B, B + timedelta(days=7))
DRAIN, ROADS = "Drainage company", "Road maintenance office"
PASSWORD = "correct-horse-1"

OPS = Actor("ops1", "operations")
SUPERVISOR = Actor("sup1", "supervisor")
HOTLINE = Actor("hot1", "hotline")
CALENDAR = load_calendar(None, ZoneInfo("Asia/Shanghai"), "09:00-12:00,13:30-18:00")


@dataclass
class Known:
    url: str
    cells: dict[str, str] = field(default_factory=dict)  # A/B -> community, grid, street, ...
    ids: dict[str, int] = field(default_factory=dict)


class Builder:
    """Moves one case through the real state machine, then sets each event's time."""

    def __init__(self, conn: psycopg.Connection[Any], worker: str, reported: datetime) -> None:
        self.conn, self.worker, self.t0 = conn, Actor("w1", "grid_worker", worker), reported
        self.id = 0

    def at(self, minutes: float) -> datetime:
        return self.t0 + timedelta(minutes=minutes)

    def _stamp(self, minutes: float) -> None:
        self.conn.execute(
            "UPDATE ticket_events SET at = %s WHERE id = (SELECT max(id) FROM ticket_events"
            " WHERE ticket_id = %s AND kind = 'transition')", (self.at(minutes), self.id))

    def create(self, *, cell: str | None, unit: str | None, category: str,
               fixed_on_spot: bool = False, reported_by: str | None = None) -> Builder:
        self.id = tickets.create_case(self.conn, NewCase(
            source="patrol" if fixed_on_spot else "hotline", category=category, title="case",
            description="known case", grid_code=cell, unit=unit, fixed_on_spot=fixed_on_spot,
            reported_by=reported_by), HOTLINE)
        self.conn.execute("UPDATE tickets SET created_at = %s WHERE id = %s", (self.t0, self.id))
        self._stamp(0)
        return self

    def move(self, to: str, minutes: float, actor: Actor | None = None) -> Builder:
        if actor is None:
            actor = {"accepted": OPS, "registered": OPS, "dispatched": OPS, "closed": OPS,
                     "voided": OPS, "verified": SUPERVISOR, "rework": SUPERVISOR}.get(
                         to, self.worker)
        if to == "dispatched":
            self.conn.execute("UPDATE tickets SET worker_id = %s WHERE id = %s",
                              (self.worker.worker_id, self.id))
        tickets.transition(self.conn, self.id, to, actor, f"{to} (known case)")
        self._stamp(minutes)
        if to == "handled":
            self.conn.execute("UPDATE tickets SET handled_at = %s WHERE id = %s",
                              (self.at(minutes), self.id))
        if to in ("closed", "voided"):
            self.conn.execute("UPDATE tickets SET closed_at = %s WHERE id = %s",
                              (self.at(minutes), self.id))
        return self

    def path(self, *steps: tuple[str, float]) -> Builder:
        for to, minutes in steps:
            self.move(to, minutes)
        return self

    def due(self, minutes: float) -> Builder:
        self.conn.execute("UPDATE tickets SET due_at = %s WHERE id = %s",
                          (self.at(minutes), self.id))
        return self

    def postpone(self, asked: float, decided: float, new_due: float, approve: bool) -> Builder:
        tickets.request_postponement(self.conn, self.id, self.worker, self.at(new_due),
                                     "waiting for a part")
        tickets.decide_postponement(self.conn, self.id, OPS, approve)
        if approve:
            self._stamp(decided)
        return self

    def rate(self, score: int, minutes: float) -> int:
        return ratings.rate_case(self.conn, self.id, score, channel="hotline",
                                 recorded_by=HOTLINE, calendar=CALENDAR,
                                 now=self.at(minutes)).id


FULL = (("accepted", 10), ("registered", 20), ("dispatched", 50), ("signed_for", 80),
        ("in_progress", 120), ("handled", 180), ("verified", 240), ("closed", 300))


def build(url: str) -> Known:
    """The known cases (times in minutes after each case was reported):

    ====  ====  ========  =====  ==========================================================
    case  cell  unit      cat.   what happens
    ====  ====  ========  =====  ==========================================================
    c1    A     drainage  C0101  whole path on time (due 360), rated 5
    c2    A     drainage  C0101  handled 300 (due 360) then rework, closed 600 (late);
                                 rated 2, then 5 after the follow-up
    c3    B     roads     C0201  postponed (due 360 -> 1440), handled 500, closed 700: on time
                                 by the new due time; rated 2, then 3
    c4    B     roads     C0201  signed for, still open; a postponement refused
    c5    A     drainage  C0101  voided: reported, never registered
    c6    A     drainage  C0101  a duplicate of c1: left out of everything
    c7    none  none      E0401  fixed on the spot (reported -> closed), no grid cell
    c10   A     drainage  C0101  handled 400, closed 480 (due 360: both late); rated 4, then
                                 1, the bad review overturned on appeal (the 4 counts)
    c8    A     drainage  C0101  reported a day before the period (left out)
    c9    A     drainage  C0101  reported at the end of the period (left out)
    ====  ====  ========  =====  ==========================================================
    """
    known = Known(url)
    with db.connect(url) as conn:
        load_district(conn, generate_district(3, SIZE))
        cells = conn.execute(
            "SELECT c.code AS community, g.code AS grid, s.code AS street, d.code AS district"
            " FROM grids c JOIN grids g ON g.code = c.parent_code"
            " JOIN grids s ON s.code = g.parent_code JOIN grids d ON d.code = s.parent_code"
            " WHERE c.level = 'community' ORDER BY c.code").fetchall()
        a = cells[0]
        b = next(c for c in cells if c["street"] != a["street"])
        for name, cell in (("A", a), ("B", b)):
            for level in ("community", "grid", "street", "district"):
                known.cells[f"{name}.{level}"] = cell[level].strip()
        worker = conn.execute("SELECT id FROM workers ORDER BY id LIMIT 1").fetchone()
        assert worker is not None
        for name, role in (("ops1", "operations"), ("sup1", "supervisor"),
                           ("admin1", "admin"), ("hot1", "hotline"),
                           ("civil1", "civil_affairs")):
            users.create_user(conn, name, name.title(), role, PASSWORD)
        users.create_user(conn, "gw1", "Gw1", "grid_worker", PASSWORD, worker_id=worker["id"])
        cell_a, cell_b = known.cells["A.community"], known.cells["B.community"]

        def case(name: str, reported: datetime, cell: str | None, unit: str | None,
                 category: str, **kw: Any) -> Builder:
            builder = Builder(conn, worker["id"], reported).create(
                cell=cell, unit=unit, category=category, **kw)
            known.ids[name] = builder.id
            return builder

        c1 = case("c1", B, cell_a, DRAIN, "C0101").path(*FULL[:3]).due(360).path(*FULL[3:])
        c1.rate(5, 1440)
        ratings_c1 = conn.execute("SELECT count(*) AS n FROM case_ratings").fetchone()
        assert ratings_c1 is not None and ratings_c1["n"] == 1

        c2 = case("c2", B + timedelta(minutes=60), cell_a, DRAIN, "C0101")
        c2.path(("accepted", 10), ("registered", 30), ("dispatched", 60)).due(360)
        c2.path(("signed_for", 120), ("in_progress", 150), ("handled", 300), ("rework", 360),
                ("in_progress", 370), ("handled", 480), ("verified", 540), ("closed", 600))
        bad = c2.rate(2, 1000)
        ratings.record_follow_up(conn, bad, OPS, "cleared the drain again",
                                 now=c2.at(1100))
        c2.rate(5, 1200)

        c3 = case("c3", B + timedelta(days=1), cell_b, ROADS, "C0201")
        c3.path(("accepted", 5), ("registered", 40), ("dispatched", 70)).due(360)
        c3.path(("signed_for", 100), ("in_progress", 130))
        c3.postpone(200, 210, 1440, approve=True)
        c3.path(("in_progress", 220), ("handled", 500), ("verified", 560), ("closed", 700))
        c3.rate(2, 800)
        c3.rate(3, 900)

        c4 = case("c4", B + timedelta(days=2), cell_b, ROADS, "C0201")
        c4.path(("accepted", 10), ("registered", 20), ("dispatched", 40)).due(360)
        c4.path(("signed_for", 60))
        c4.postpone(80, 90, 2000, approve=False)

        case("c5", B + timedelta(days=2, hours=1), cell_a, DRAIN, "C0101").path(("voided", 15))

        c6 = case("c6", B + timedelta(minutes=65), cell_a, DRAIN, "C0101")
        conn.execute("UPDATE tickets SET duplicate_of = %s WHERE id = %s", (c1.id, c6.id))
        c6.path(("voided", 5))

        case("c7", B + timedelta(days=3), None, None, "E0401", fixed_on_spot=True,
             reported_by="w1").move("closed", 30, Actor("w1", "grid_worker", worker["id"]))

        c10 = case("c10", B + timedelta(days=4), cell_a, DRAIN, "C0101")
        c10.path(("accepted", 10), ("registered", 60), ("dispatched", 100)).due(360)
        c10.path(("signed_for", 150), ("in_progress", 160), ("handled", 400), ("verified", 420),
                 ("closed", 480))
        c10.rate(4, 600)
        unfair = c10.rate(1, 650)
        ratings.appeal(conn, unfair, OPS, "the caller rated the weather")
        ratings.decide_appeal(conn, unfair, SUPERVISOR, upheld=False, note="not our doing",
                              now=c10.at(700))

        for name, reported in (("c8", B - timedelta(days=1)), ("c9", B + timedelta(days=7))):
            case(name, reported, cell_a, DRAIN, "C0101").path(*FULL)
    return known


@pytest.fixture
def known(db_url: str) -> Known:
    return build(db_url)


def metrics(known: Known, group_by: str, start: datetime = PERIOD[0],
            end: datetime = PERIOD[1]) -> list[MetricsRow]:
    with db.connect(known.url) as conn:
        return case_metrics(conn, start=start, end=end, group_by=group_by)  # type: ignore[arg-type]


def figures(row: MetricsRow) -> dict[str, Any]:
    """Everything a row says, as plain values to compare."""
    return {
        "counts": (row.reported, row.duplicates, row.registered, row.closed),
        "registration": (row.registration.numerator, row.registration.denominator),
        "closure": (row.closure.numerator, row.closure.denominator),
        "on_time_closure": (row.on_time_closure.numerator, row.on_time_closure.denominator),
        "on_time_handling": (row.on_time_handling.numerator, row.on_time_handling.denominator),
        "rework": (row.rework.numerator, row.rework.denominator),
        "postponement": (row.postponement.numerator, row.postponement.denominator),
        "satisfaction": (row.satisfaction.numerator, row.satisfaction.denominator),
        "stages": [(s.median_s, s.cases) for s in row.stages],
    }


def expected(counts: tuple[int, int, int, int], registration: tuple[int, int],
             closure: tuple[int, int], on_time_closure: tuple[int, int],
             on_time_handling: tuple[int, int], rework: tuple[int, int],
             postponement: tuple[int, int], satisfaction: tuple[int, int],
             stage_minutes: list[tuple[float | None, int]]) -> dict[str, Any]:
    return {
        "counts": counts, "registration": registration, "closure": closure,
        "on_time_closure": on_time_closure, "on_time_handling": on_time_handling,
        "rework": rework, "postponement": postponement, "satisfaction": satisfaction,
        "stages": [(None if m is None else m * 60.0, n) for m, n in stage_minutes],
    }


# Stage minutes per case (reported->registered, registered->dispatched, dispatched->signed for,
# signed for->handled (first time), handled->verified, verified->closed):
#   c1: 20, 30, 30, 100, 60, 60      c2: 30, 30, 60, 180, 240, 60
#   c3: 40, 30, 30, 400, 60, 140     c4: 20, 20, 20, -, -, -
#   c10: 60, 40, 50, 250, 20, 60
ALL = expected(
    counts=(7, 1, 5, 4),                 # c1 c2 c3 c4 c5 c7 c10; c6; c1-c4 c10; c1 c2 c3 c10
    registration=(5, 7), closure=(4, 5),
    on_time_closure=(2, 4),              # c1, c3 (by its postponed due time)
    on_time_handling=(3, 4),             # c1, c2 (first handled 300 <= 360), c3
    rework=(1, 4),                       # c2
    postponement=(1, 5),                 # c3 (c4's was refused)
    satisfaction=(3, 4),                 # c1 5, c2 5 (its latest), c10 4 (its latest but
                                         # the overturned 1): yes; c3 3: no
    stage_minutes=[(30, 5), (30, 5), (30, 5), (215, 4), (60, 4), (60, 4)],
)
GROUP_A = expected(
    counts=(4, 1, 3, 3),                 # c1 c2 c5 c10; c6; c1 c2 c10; c1 c2 c10
    registration=(3, 4), closure=(3, 3), on_time_closure=(1, 3), on_time_handling=(2, 3),
    rework=(1, 3), postponement=(0, 3), satisfaction=(3, 3),
    stage_minutes=[(30, 3), (30, 3), (50, 3), (180, 3), (60, 3), (60, 3)],
)
GROUP_B = expected(
    counts=(2, 0, 2, 1),                 # c3 c4; -; c3 c4; c3
    registration=(2, 2), closure=(1, 2), on_time_closure=(1, 1), on_time_handling=(1, 1),
    rework=(0, 1), postponement=(1, 2), satisfaction=(0, 1),
    stage_minutes=[(30, 2), (25, 2), (25, 2), (400, 1), (60, 1), (140, 1)],
)
ON_THE_SPOT = expected(               # c7: reported and closed at once, never registered
    counts=(1, 0, 0, 0), registration=(0, 1), closure=(0, 0), on_time_closure=(0, 0),
    on_time_handling=(0, 0), rework=(0, 0), postponement=(0, 0), satisfaction=(0, 0),
    stage_minutes=[(None, 0)] * 6,
)


def by_key(rows: list[MetricsRow]) -> dict[str | None, dict[str, Any]]:
    keys = [r.key for r in rows]
    assert len(keys) == len(set(keys)), keys
    return {r.key: figures(r) for r in rows}


def test_every_metric_of_the_whole_period(known: Known) -> None:
    rows = metrics(known, "all")
    assert len(rows) == 1 and rows[0].key is None and rows[0].label == "All cases"
    assert figures(rows[0]) == ALL


def test_by_grid_and_street(known: Known) -> None:
    for level in ("grid", "street"):
        rows = metrics(known, level)
        assert by_key(rows) == {known.cells[f"A.{level}"]: GROUP_A,
                                known.cells[f"B.{level}"]: GROUP_B,
                                None: ON_THE_SPOT}, level
        assert rows[-1].key is None and rows[-1].label == "(no grid cell)"
        assert all(r.label and r.label != r.key for r in rows[:-1])  # the cell's name


def test_by_district(known: Known) -> None:
    a_and_b = expected(
        counts=(6, 1, 5, 4), registration=(5, 6), closure=(4, 5), on_time_closure=(2, 4),
        on_time_handling=(3, 4), rework=(1, 4), postponement=(1, 5), satisfaction=(3, 4),
        stage_minutes=[(30, 5), (30, 5), (30, 5), (215, 4), (60, 4), (60, 4)],
    )
    assert known.cells["A.district"] == known.cells["B.district"]
    assert by_key(metrics(known, "district")) == {known.cells["A.district"]: a_and_b,
                                                  None: ON_THE_SPOT}


def test_by_unit_and_category(known: Known) -> None:
    assert by_key(metrics(known, "unit")) == {DRAIN: GROUP_A, ROADS: GROUP_B, None: ON_THE_SPOT}
    rows = metrics(known, "category")
    assert by_key(rows) == {"C0101": GROUP_A, "C0201": GROUP_B, "E0401": ON_THE_SPOT}
    labels = {r.key: r.label for r in rows}
    assert labels["E0401"].startswith("E0401 ") and len(labels["E0401"]) > 6


def test_empty_denominators_are_none(known: Known) -> None:
    row = next(r for r in metrics(known, "category") if r.key == "E0401")
    assert row.registration.value == 0.0
    for name in ("closure", "on_time_closure", "on_time_handling", "rework", "postponement",
                 "satisfaction"):
        assert row.rate(name).value is None, name
        assert row.rate(name).percent() == "—"
    assert all(s.median_s is None for s in row.stages)
    assert Rate(2, 3).percent() == "66.7 %"


def test_periods_leave_out_cases_reported_outside(known: Known) -> None:
    # [B + 1 day, B + 3 days): c3, c4, c5 (c7 is reported at B + 3 days exactly: left out)
    rows = metrics(known, "all", B + timedelta(days=1), B + timedelta(days=3))
    row = rows[0]
    assert (row.reported, row.duplicates, row.registered, row.closed) == (3, 0, 2, 1)
    assert (row.registration.numerator, row.registration.denominator) == (2, 3)
    # the day before the period holds c8 only; the day after it, c9 only (whole path, on time)
    for start in (B - timedelta(days=1), B + timedelta(days=7)):
        day = metrics(known, "all", start, start + timedelta(days=1))[0]
        assert (day.reported, day.registered, day.closed) == (1, 1, 1)
        assert (day.on_time_closure.numerator, day.on_time_closure.denominator) == (0, 0)
    # nothing reported: one empty row for "all", no rows for a grouping
    empty = metrics(known, "all", B - timedelta(days=30), B - timedelta(days=20))
    assert figures(empty[0]) == expected(
        counts=(0, 0, 0, 0), registration=(0, 0), closure=(0, 0), on_time_closure=(0, 0),
        on_time_handling=(0, 0), rework=(0, 0), postponement=(0, 0), satisfaction=(0, 0),
        stage_minutes=[(None, 0)] * 6)
    assert metrics(known, "grid", B - timedelta(days=30), B - timedelta(days=20)) == []


def test_bad_arguments(known: Known) -> None:
    with db.connect(known.url) as conn:
        with pytest.raises(ValueError, match="group_by"):
            case_metrics(conn, start=B, end=B + timedelta(days=1), group_by="ward")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            case_metrics(conn, start=B, end=B, group_by="all")
        with pytest.raises(ValueError, match="aware"):
            case_metrics(conn, start=B.replace(tzinfo=None), end=B + timedelta(days=1),
                         group_by="all")


def test_csv_has_a_header_and_a_row_per_group(known: Known) -> None:
    rows = metrics(known, "unit")
    data = metrics_csv(rows)
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == csv_header()
    assert len(table) == 1 + 3
    head = table[0]
    drain = dict(zip(head, next(t for t in table[1:] if t[1] == DRAIN), strict=True))
    assert drain["group"] == "Unit" and drain["reported"] == "4"
    assert drain["duplicates left out"] == "1"
    assert (drain["Registration rate %"], drain["Registration rate numerator"],
            drain["Registration rate denominator"]) == ("75.0", "3", "4")
    assert drain["On-time closure rate %"] == "33.3"
    assert drain["median h signed for to handled"] == "3.00"
    assert drain["cases signed for to handled"] == "3"
    nothing = dict(zip(head, table[-1], strict=True))
    assert nothing["code"] == "" and nothing["name"] == "(no unit)"
    assert nothing["Closure rate %"] == "" and nothing["Closure rate denominator"] == "0"
    assert len(STAGES) == 6


def test_csv_keeps_chinese_names(known: Known) -> None:
    with db.connect(known.url) as conn:
        conn.execute("UPDATE grids SET name = '南京东路街道' WHERE code = %s",
                     (known.cells["A.street"],))
    data = metrics_csv(metrics(known, "street"))
    assert "南京东路街道".encode() in data and data.startswith(b"\xef\xbb\xbf")


# ---- the report page: who may open it, and the CSV it downloads ----

def _web(known: Known) -> Any:
    from cityops.platform.settings import Settings
    from dashboards.app import create_app

    database = Database.open(known.url, max_size=3, name="metrics-test")
    return database, create_app(database, Settings(secret_key="metrics-test-key-0123456789abcdef"))


def test_report_page_roles_and_csv(known: Known) -> None:
    from tests.integration.web_client import callback, route, sign_in

    database, app = _web(known)
    try:
        for username in ("ops1", "admin1", "sup1"):
            client = app.server.test_client()
            sign_in(client, username, PASSWORD)
            assert client.get("/report").status_code == 200, username
            assert "report-table" in route(client, "/report").text, username
        for username in ("gw1", "civil1", "hot1"):
            client = app.server.test_client()
            sign_in(client, username, PASSWORD)
            assert client.get("/report").status_code == 403, username
            assert "report-table" not in route(client, "/report").text, username
            denied = callback(client, "report-download", [
                {"id": "report-csv", "property": "n_clicks", "value": 1}],
                [{"id": "report-from", "property": "date", "value": "2026-03-02"},
                 {"id": "report-to", "property": "date", "value": "2026-03-08"},
                 {"id": "report-group", "property": "value", "value": "unit"}])
            assert denied.status_code == 403, username
        anonymous = app.server.test_client()
        assert anonymous.get("/report").status_code == 302

        client = app.server.test_client()
        sign_in(client, "sup1", PASSWORD)
        # the district's local dates: 2026-03-02 00:00 +08:00 is B - 8 h, so the period
        # 2 March .. 8 March holds c1 .. c7 and c10 and not c9 (B + 7 days is 8 a.m. on 9 March)
        response = callback(client, "report-download", [
            {"id": "report-csv", "property": "n_clicks", "value": 1}],
            [{"id": "report-from", "property": "date", "value": "2026-03-02"},
             {"id": "report-to", "property": "date", "value": "2026-03-08"},
             {"id": "report-group", "property": "value", "value": "unit"}])
        assert response.status_code == 200
        download = response.json["response"]["report-download"]["data"]
        assert download["filename"] == "case-metrics-unit-2026-03-02-to-2026-03-08.csv"
        data = base64.b64decode(download["content"]) if download["base64"] \
            else download["content"].encode()
        assert data.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert table[0] == csv_header()
        # a row per unit (the cases with none last), then the total
        assert [(t[0], t[1], t[3]) for t in table[1:]] == [
            ("Unit", DRAIN, "4"), ("Unit", ROADS, "2"), ("Unit", "", "1"), ("All cases", "", "7")]

        shown = callback(client, "report-table", [
            {"id": "report-from", "property": "date", "value": "2026-03-02"},
            {"id": "report-to", "property": "date", "value": "2026-03-08"},
            {"id": "report-group", "property": "value", "value": "unit"}])
        assert shown.status_code == 200
        text = json.dumps(shown.json, ensure_ascii=False)
        assert DRAIN in text and "3 / 4" in text and "75.0 %" in text
        backwards = callback(client, "report-table", [
            {"id": "report-from", "property": "date", "value": "2026-03-08"},
            {"id": "report-to", "property": "date", "value": "2026-03-02"},
            {"id": "report-group", "property": "value", "value": "unit"}])
        assert "The last day is before the first day." in backwards.text
    finally:
        database.close()


def test_wall_metrics_strip(known: Known) -> None:
    from tests.integration.web_client import callback, route, sign_in

    database, app = _web(known)
    try:
        client = app.server.test_client()
        sign_in(client, "ops1", PASSWORD)
        wall = json.dumps(route(client, "/").json, ensure_ascii=False)
        for ident in ("wall-metrics", "wm-closure", "wm-handling", "wm-satisfaction",
                      "wm-reported"):
            assert ident in wall
        tick = [{"id": "wall-metrics-tick", "property": "n_intervals", "value": 1}]
        refreshed = callback(client, "wall-metrics.children", tick)
        assert refreshed.status_code == 200
        # the known cases were reported in March 2026, long before the last 7 days
        strip = json.dumps(refreshed.json, ensure_ascii=False)
        assert "Last 7 days" in strip and "0 / 0" in strip
        other = app.server.test_client()
        sign_in(other, "sup1", PASSWORD)
        assert callback(other, "wall-metrics.children", tick).status_code == 403
    finally:
        database.close()
