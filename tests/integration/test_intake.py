"""Filing cases from people (cityops.cases.intake) on a real database: what each source's case
becomes, the checks, and duplicate linking."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from shapely.geometry import Point

from cityops.cases.clock import CaseClock
from cityops.cases.intake import Intake, IntakeError, file_case
from cityops.cases.photos import Photo
from cityops.cases.tickets import Actor, NewCase
from cityops.org.geo import distance_m
from cityops.org.grids import GridIndex
from cityops.platform import db
from cityops.platform.settings import Settings
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration

SIZE = DistrictSize(streets=1, grids=2, communities=3, households_per_community=3,
                    flood_gauges=2, manhole_covers=2, cameras=1)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PATROL = Actor("gw-user", "grid_worker", "GW00001")
OPERATOR = Actor("op7", "hotline")
OPEN311 = Actor("open311", "system")


@dataclass
class Desk:
    conn: psycopg.Connection[dict[str, Any]]
    settings: Settings
    index: GridIndex
    clock: CaseClock
    point: Point     # well inside a community (200 m from its border)

    def file(self, case: NewCase, actor: Actor, **kwargs: Any) -> Intake:
        intake = file_case(self.conn, case, actor, settings=self.settings, index=self.index,
                           clock=self.clock, **kwargs)
        self.conn.commit()
        return intake

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
        assert row is not None
        return row

    def events(self, ticket_id: int) -> list[dict[str, Any]]:
        return self.conn.execute(
            "SELECT * FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,)
        ).fetchall()


@pytest.fixture
def desk(db_url: str) -> Iterator[Desk]:
    district = generate_district(3, SIZE)
    with db.connect(db_url) as conn:
        load_district(conn, district)
        conn.commit()
        index = GridIndex.from_rows(conn.execute(
            "SELECT code, level, name, parent_code, geometry FROM grids").fetchall())
        inner = max((c.geometry.buffer(-0.002) for c in index.cells.values()
                     if c.level == "community"), key=lambda g: g.area)
        assert not inner.is_empty
        settings = Settings()
        yield Desk(conn, settings, index, CaseClock.from_settings(settings),
                   inner.representative_point())


def moved(point: Point, north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    """(lon, lat) of a point this many metres north and east of ``point``."""
    lat = point.y + north_m / 111_320
    lon = point.x + east_m / (111_320 * math.cos(math.radians(point.y)))
    return lon, lat


def case(source: str, category: str = "C0201", **kw: Any) -> NewCase:
    return NewCase(source=source, category=category, title=kw.pop("title", "Pothole"),
                   description=kw.pop("description", "A deep pothole in the bike lane"),
                   lon=kw.pop("lon", None), lat=kw.pop("lat", None), **kw)


def at(desk: Desk, source: str, category: str = "C0201", north_m: float = 0.0,
       east_m: float = 0.0, **kw: Any) -> NewCase:
    lon, lat = moved(desk.point, north_m, east_m)
    return case(source, category, lon=lon, lat=lat, **kw)


def test_patrol_case_is_accepted_registered_and_dispatched(desk: Desk) -> None:
    intake = desk.file(at(desk, "patrol", reported_by="gw-user"), PATROL,
                       photos=[Photo(JPEG, "image/png")])
    assert intake.status == "dispatched" and intake.duplicate_of is None
    assert intake.assignment is not None and intake.assignment.worker_id
    row = desk.ticket(intake.ticket_id)
    assert row["status"] == "dispatched" and row["source"] == "patrol"
    assert row["unit"] == "Road maintenance office" and row["priority"] == "normal"
    assert row["grid_code"] == desk.index.locate(row["lon"], row["lat"])
    assert row["dispatch_due_at"] > row["created_at"]
    assert row["worker_id"] == intake.assignment.worker_id
    moves = [(e["actor"], e["from_status"], e["to_status"]) for e in desk.events(intake.ticket_id)
             if e["kind"] == "transition"]
    assert moves == [("gw-user", None, "reported"), ("system", "reported", "accepted"),
                     ("system", "accepted", "registered"), ("system", "registered", "dispatched")]
    photo = desk.conn.execute("SELECT content_type, uploaded_by FROM case_photos WHERE id = %s",
                              (intake.photo_ids[0],)).fetchone()
    assert photo == {"content_type": "image/jpeg", "uploaded_by": "gw-user"}  # by its bytes


def test_urgent_category_makes_the_case_urgent(desk: Desk) -> None:
    intake = desk.file(at(desk, "patrol", "C0101", priority="low"), PATROL)
    row = desk.ticket(intake.ticket_id)
    assert row["priority"] == "urgent" and row["unit"] == "Drainage company"
    # urgent: the dispatch limit runs in clock time, 1 hour from the report
    now = datetime.now(UTC)
    assert abs((row["dispatch_due_at"] - now).total_seconds() - 3600) < 120


def test_citizen_report_waits_for_the_centre(desk: Desk) -> None:
    intake = desk.file(at(desk, "citizen", reporter_name="Li Na", reporter_phone="13900000000"),
                       OPEN311)
    assert (intake.status, intake.assignment) == ("reported", None)
    row = desk.ticket(intake.ticket_id)
    assert row["status"] == "reported" and row["worker_id"] is None
    assert row["dispatch_due_at"] is not None


def test_hotline_case_is_accepted_by_the_operator(desk: Desk) -> None:
    intake = desk.file(at(desk, "hotline", "E0101", call_type="complaint", reported_by="op7"),
                       OPERATOR)
    assert intake.status == "dispatched"
    accepted = [e for e in desk.events(intake.ticket_id) if e["to_status"] == "accepted"]
    assert [(e["actor"], e["role"]) for e in accepted] == [("op7", "hotline")]


def test_case_fixed_on_the_spot_is_closed_at_once(desk: Desk) -> None:
    intake = desk.file(at(desk, "patrol", "E0103", reported_by="gw-user", fixed_on_spot=True),
                       PATROL, closing_note="swept it up")
    assert (intake.status, intake.assignment) == ("closed", None)
    assert desk.events(intake.ticket_id)[-1]["note"] == "swept it up"


def test_every_problem_is_listed(desk: Desk) -> None:
    with pytest.raises(IntakeError) as err:
        desk.file(case("citizen", "X1234", lon=0.0, lat=0.0, title=" "), OPEN311,
                  photos=[Photo(b"GIF89a....", "image/gif"),
                          Photo(b"\xff\xd8\xff" + b"0" * 6_000_000, "image/jpeg")])
    fields = [name for name, _ in err.value.problems]
    assert fields == ["category", "title", "lon", "photos", "photos"]
    text = str(err.value)
    assert "X1234" in text and "outside every grid cell" in text
    assert "JPEG, PNG or WebP" in text and "5 MB" in text
    with pytest.raises(IntakeError, match="say where"):
        desk.file(case("citizen"), OPEN311)
    with pytest.raises(IntakeError, match="sensor cases come from alerts"):
        desk.file(at(desk, "sensor"), Actor.system())
    assert desk.conn.execute("SELECT count(*) AS n FROM tickets").fetchone() == {"n": 0}


def test_address_only_is_enough_for_a_citizen(desk: Desk) -> None:
    intake = desk.file(case("citizen", address="No. 5, Lane 100, Xizang Road"), OPEN311)
    assert intake.status == "reported"


# -- duplicates ---------------------------------------------------------------------------------

def dispatch_count(desk: Desk) -> int:
    row = desk.conn.execute("SELECT count(*) AS n FROM dispatches").fetchone()
    assert row is not None
    return int(row["n"])


def test_same_thing_nearby_is_linked_not_dispatched_twice(desk: Desk) -> None:
    first = desk.file(at(desk, "patrol"), PATROL)
    sent = dispatch_count(desk)
    lon, lat = moved(desk.point, 30, 30)
    assert distance_m(desk.point.x, desk.point.y, lon, lat) == pytest.approx(42.4, abs=0.5)
    second = desk.file(case("hotline", lon=lon, lat=lat, call_type="report"), OPERATOR)
    assert (second.status, second.duplicate_of, second.assignment) == (
        "voided", first.ticket_id, None)
    assert dispatch_count(desk) == sent
    row = desk.ticket(second.ticket_id)
    assert row["duplicate_of"] == first.ticket_id and row["worker_id"] is None
    last = desk.events(second.ticket_id)[-1]
    assert (last["from_status"], last["to_status"], last["note"]) == (
        "reported", "voided", f"duplicate of case #{first.ticket_id}")
    links = [e for e in desk.events(first.ticket_id) + desk.events(second.ticket_id)
             if e["kind"] == "link"]
    assert sorted(e["ticket_id"] for e in links) == sorted([first.ticket_id, second.ticket_id])
    assert desk.ticket(first.ticket_id)["status"] == "dispatched"  # untouched

    # a third report links to the original, not to the duplicate
    third = desk.file(at(desk, "citizen", north_m=-10), OPEN311)
    assert third.duplicate_of == first.ticket_id


def test_citizen_reports_waiting_for_acceptance_are_linked_too(desk: Desk) -> None:
    first = desk.file(at(desk, "citizen"), OPEN311)
    second = desk.file(at(desk, "citizen", east_m=49), OPEN311)
    assert second.duplicate_of == first.ticket_id and second.status == "voided"


def test_not_duplicates(desk: Desk) -> None:
    first = desk.file(at(desk, "patrol"), PATROL)
    far = desk.file(at(desk, "patrol", north_m=80), PATROL)
    other_category = desk.file(at(desk, "patrol", "C0203"), PATROL)
    assert far.duplicate_of is None and far.status == "dispatched"
    assert other_category.duplicate_of is None
    # a case reported 25 hours ago is too old to be the same thing
    desk.conn.execute("UPDATE tickets SET created_at = created_at - interval '25 hours'"
                      " WHERE id = ANY(%s)", ([first.ticket_id, far.ticket_id],))
    desk.conn.commit()
    later = desk.file(at(desk, "patrol", north_m=5), PATROL)
    assert later.duplicate_of is None and later.status == "dispatched"
    # a closed case is not open any more
    desk.conn.execute("UPDATE tickets SET status = 'closed' WHERE id = %s", (later.ticket_id,))
    desk.conn.commit()
    again = desk.file(at(desk, "patrol", north_m=5), PATROL)
    assert again.duplicate_of is None


def test_nearest_open_case_wins(desk: Desk) -> None:
    west = desk.file(at(desk, "patrol", east_m=-40), PATROL)
    east = desk.file(at(desk, "patrol", east_m=45), PATROL)  # 85 m from west: its own case
    assert east.duplicate_of is None
    near_east = desk.file(at(desk, "citizen", east_m=20), OPEN311)
    assert near_east.duplicate_of == east.ticket_id
    assert west.duplicate_of is None


def test_radius_and_hours_come_from_the_settings(desk: Desk) -> None:
    desk.settings = Settings(cases={"duplicate_radius_m": 100, "duplicate_hours": 1})
    first = desk.file(at(desk, "patrol"), PATROL)
    assert desk.file(at(desk, "patrol", north_m=80), PATROL).duplicate_of == first.ticket_id




def test_two_reports_at_the_same_moment_see_each_other(desk: Desk, db_url: str) -> None:
    """The second filing waits on the category's lock until the first commits, then links."""
    first = file_case(desk.conn, at(desk, "patrol"), PATROL, settings=desk.settings,
                      index=desk.index, clock=desk.clock)  # not committed yet
    result: list[Intake] = []

    def second() -> None:
        with db.connect(db_url) as other:
            result.append(file_case(other, at(desk, "citizen", north_m=10), OPEN311,
                                    settings=desk.settings, index=desk.index, clock=desk.clock))
            other.commit()

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive() and not result  # waiting for the lock
    desk.conn.commit()
    thread.join(10)
    assert result and result[0].duplicate_of == first.ticket_id
