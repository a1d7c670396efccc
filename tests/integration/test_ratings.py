"""Ratings (好差评) on a real database: the first rating evaluates the case, bad reviews are due
for follow-up in working days, re-rating, appeals, and the refusals with their reasons."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cityops.cases import ratings
from cityops.cases.ratings import RatingError
from cityops.cases.tickets import Actor, NewCase, create_case, transition
from cityops.platform import db
from cityops.platform.worktime import load_calendar

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = load_calendar(None, TZ, "09:00-12:00,13:30-17:30")
DISTRICT = "310101000000000"
STREET = "310101001000000"
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}

HOTLINE = Actor("op1", "hotline")
OPS = Actor("ops1", "operations")
SUPERVISOR = Actor("sup1", "supervisor")
WORKER = Actor("gw1", "grid_worker", "W1")
OTHER_WORKER = Actor("gw2", "grid_worker", "W2")


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with db.connect(db_url) as connection:
        for code, level, parent in ((DISTRICT, "district", None), (STREET, "street", DISTRICT)):
            connection.execute(
                "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
                " centroid_lat) VALUES (%s, %s, %s, %s, %s, 0.5, 0.5)",
                (code, level, level, parent, psycopg.types.json.Jsonb(SQUARE)),
            )
        for worker, name in (("W1", "gw1"), ("W2", "gw2")):
            connection.execute("INSERT INTO users (username, display_name, role, password_hash)"
                               " VALUES (%s, %s, 'grid_worker', 'x')", (name, name))
            connection.execute("INSERT INTO workers (id, name, cell_code, username)"
                               " VALUES (%s, %s, %s, %s)", (worker, name, STREET, name))
        yield connection


def closed_case(conn: psycopg.Connection[dict[str, Any]]) -> int:
    """A hotline complaint taken all the way through handling and verification to closed."""
    case = NewCase(source="hotline", category="E0401", title="Water on the road",
                   description="Caller says the underpass is flooded", call_type="complaint",
                   grid_code=STREET, reporter_name="Li Lei", reporter_phone="13800000000",
                   reported_by=HOTLINE.name)
    ticket_id = create_case(conn, case, HOTLINE)
    system = Actor.system()
    transition(conn, ticket_id, "accepted", system)
    transition(conn, ticket_id, "registered", system)
    conn.execute("UPDATE tickets SET worker_id = 'W1' WHERE id = %s", (ticket_id,))
    transition(conn, ticket_id, "dispatched", system)
    transition(conn, ticket_id, "signed_for", WORKER)
    transition(conn, ticket_id, "in_progress", WORKER)
    transition(conn, ticket_id, "handled", WORKER, "pumped out")
    transition(conn, ticket_id, "verified", SUPERVISOR, "dry now")
    transition(conn, ticket_id, "closed", OPS)
    return ticket_id


def status(conn: psycopg.Connection[dict[str, Any]], ticket_id: int) -> str:
    row = conn.execute("SELECT status FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def events(conn: psycopg.Connection[dict[str, Any]], ticket_id: int, kind: str) -> list[str]:
    rows = conn.execute("SELECT note FROM ticket_events WHERE ticket_id = %s AND kind = %s"
                        " ORDER BY id", (ticket_id, kind)).fetchall()
    return [r["note"] for r in rows]


def test_first_rating_evaluates_the_case_and_a_good_one_needs_no_follow_up(conn: Any) -> None:
    ticket_id = closed_case(conn)
    rating = ratings.rate_case(conn, ticket_id, 5, channel="hotline", recorded_by=HOTLINE,
                               comment="quick and polite", calendar=CALENDAR)
    assert status(conn, ticket_id) == "evaluated"
    assert rating.score == 5 and not rating.bad and rating.follow_up_due_at is None
    assert rating.follow_up_state(datetime.now(UTC)) == ""
    assert events(conn, ticket_id, "rating") == ["rated 5/5 (hotline): quick and polite"]
    last = conn.execute("SELECT from_status, to_status, kind, role FROM ticket_events"
                        " WHERE ticket_id = %s AND kind = 'transition' ORDER BY id DESC LIMIT 1",
                        (ticket_id,)).fetchone()
    assert last == {"from_status": "closed", "to_status": "evaluated", "kind": "transition",
                    "role": "hotline"}
    # a citizen's own channel records as the system
    again = ratings.rate_case(conn, ticket_id, 4, channel="open311", recorded_by=Actor.system(),
                              calendar=CALENDAR)
    assert ratings.latest_rating(conn, ticket_id) == again
    assert status(conn, ticket_id) == "evaluated"


def test_bad_review_is_due_in_five_working_days_across_a_weekend(conn: Any) -> None:
    ticket_id = closed_case(conn)
    friday = datetime(2026, 11, 13, 10, 0, tzinfo=TZ)  # no holiday near it
    rating = ratings.rate_case(conn, ticket_id, 2, channel="hotline", recorded_by=HOTLINE,
                               comment="water came back", calendar=CALENDAR, now=friday)
    assert rating.bad and rating.counts_against
    # Fri 10:00 + 5 working days (Sat and Sun do not count) = next Fri 10:00
    assert rating.follow_up_due_at == datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
    assert "follow up by 2026-11-20 10:00" in events(conn, ticket_id, "rating")[0]
    assert rating.follow_up_state(friday + timedelta(days=3)) == "due"
    assert ratings.overdue_follow_ups(conn, datetime(2026, 11, 20, 9, 59, tzinfo=TZ)) == []
    late = datetime(2026, 11, 20, 10, 1, tzinfo=TZ)
    assert [r.id for r in ratings.overdue_follow_ups(conn, late)] == [rating.id]
    assert rating.follow_up_state(late) == "overdue"

    # a five-day limit set in the settings is used as given
    other = closed_case(conn)
    longer = ratings.rate_case(conn, other, 1, channel="web", recorded_by=Actor.system(),
                               calendar=CALENDAR, now=friday, follow_up_days=1)
    assert longer.follow_up_due_at == datetime(2026, 11, 16, 10, 0, tzinfo=TZ)


def test_follow_up_then_re_rating_counts_the_latest(conn: Any) -> None:
    ticket_id = closed_case(conn)
    bad = ratings.rate_case(conn, ticket_id, 1, channel="hotline", recorded_by=HOTLINE,
                            comment="still flooded", calendar=CALENDAR)

    with pytest.raises(RatingError, match="say what was fixed"):
        ratings.record_follow_up(conn, bad.id, OPS, "  ")
    with pytest.raises(RatingError, match="not yours to follow up"):
        ratings.record_follow_up(conn, bad.id, OTHER_WORKER, "cleared the drain")
    done = ratings.record_follow_up(conn, bad.id, WORKER, "cleared the drain")
    assert done.followed_up_by == "gw1" and done.follow_up_note == "cleared the drain"
    assert done.follow_up_state(datetime.now(UTC)) == "followed up"
    assert ratings.overdue_follow_ups(conn, datetime.now(UTC) + timedelta(days=30)) == []
    with pytest.raises(RatingError, match="already followed up by gw1"):
        ratings.record_follow_up(conn, bad.id, OPS, "again")
    assert "followed up: cleared the drain" in events(conn, ticket_id, "follow_up")[0]

    good = ratings.rate_case(conn, ticket_id, 4, channel="hotline", recorded_by=HOTLINE,
                             comment="fixed now", calendar=CALENDAR)
    assert [r.id for r in ratings.ratings_of(conn, ticket_id)] == [bad.id, good.id]
    assert ratings.latest_rating(conn, ticket_id) == good
    assert events(conn, ticket_id, "rating")[1] == "rated again 4/5 (hotline): fixed now"
    with pytest.raises(RatingError, match="not a bad review"):
        ratings.record_follow_up(conn, good.id, OPS, "nothing")


def test_appeal_upheld_and_overturned(conn: Any) -> None:
    first, second = closed_case(conn), closed_case(conn)
    bad1 = ratings.rate_case(conn, first, 2, channel="hotline", recorded_by=HOTLINE,
                             comment="slow", calendar=CALENDAR)
    bad2 = ratings.rate_case(conn, second, 1, channel="hotline", recorded_by=HOTLINE,
                             comment="wanted a new road", calendar=CALENDAR)

    with pytest.raises(RatingError, match="a hotline cannot appeal"):
        ratings.appeal(conn, bad1.id, HOTLINE, "unfair")
    with pytest.raises(RatingError, match="was not yours"):
        ratings.appeal(conn, bad1.id, OTHER_WORKER, "unfair")
    with pytest.raises(RatingError, match="say why"):
        ratings.appeal(conn, bad1.id, WORKER, " ")
    with pytest.raises(RatingError, match="no appeal waiting"):
        ratings.decide_appeal(conn, bad1.id, SUPERVISOR, True, "n/a")

    pending = ratings.appeal(conn, bad1.id, WORKER, "handled within the limit")
    assert pending.appeal_status == "pending" and pending.appealed_by == "gw1"
    with pytest.raises(RatingError, match="already appealed"):
        ratings.appeal(conn, bad1.id, OPS, "again")
    with pytest.raises(RatingError, match="cannot decide an appeal"):
        ratings.decide_appeal(conn, bad1.id, OPS, True, "no")
    with pytest.raises(RatingError, match="give the reason"):
        ratings.decide_appeal(conn, bad1.id, SUPERVISOR, True, "")
    upheld = ratings.decide_appeal(conn, bad1.id, SUPERVISOR, True, "it did take 4 days")
    assert upheld.appeal_status == "upheld" and upheld.counts_against
    assert upheld.appeal_decided_by == "sup1"

    ratings.appeal(conn, bad2.id, OPS, "outside our remit: road rebuilding")
    overturned = ratings.decide_appeal(conn, bad2.id, Actor("admin1", "admin"), False,
                                       "the request was out of scope")
    assert overturned.appeal_status == "overturned" and not overturned.counts_against
    # an overturned bad review needs no follow-up and counts neither way
    far = datetime.now(UTC) + timedelta(days=30)
    assert [r.id for r in ratings.overdue_follow_ups(conn, far)] == [bad1.id]
    assert overturned.follow_up_state(far) == "overturned"
    notes = events(conn, second, "appeal")
    assert notes[0].startswith("appeals the bad review 1/5")
    assert "overturned: it does not count against satisfaction" in notes[1]
    with pytest.raises(RatingError, match="only a bad review"):
        good = ratings.rate_case(conn, second, 5, channel="hotline", recorded_by=HOTLINE,
                                 calendar=CALENDAR)
        ratings.appeal(conn, good.id, OPS, "x")


def test_refusals_say_why(conn: Any) -> None:
    ticket_id = closed_case(conn)
    for score in (0, 6, 2.5, True):
        with pytest.raises(RatingError, match="whole number from 1 to 5"):
            ratings.rate_case(conn, ticket_id, score, channel="hotline",  # type: ignore[arg-type]
                              recorded_by=HOTLINE, calendar=CALENDAR)
    with pytest.raises(RatingError, match="channel must be one of"):
        ratings.rate_case(conn, ticket_id, 3, channel="sms", recorded_by=HOTLINE,
                          calendar=CALENDAR)
    with pytest.raises(RatingError, match="a grid_worker cannot record a rating"):
        ratings.rate_case(conn, ticket_id, 5, channel="web", recorded_by=WORKER,
                          calendar=CALENDAR)
    with pytest.raises(RatingError, match="case 999999 does not exist"):
        ratings.rate_case(conn, 999999, 3, channel="web", recorded_by=Actor.system(),
                          calendar=CALENDAR)
    with pytest.raises(RatingError, match="rating 999999 does not exist"):
        ratings.appeal(conn, 999999, OPS, "x")

    open_case = create_case(conn, NewCase(source="hotline", category="E0401", title="t",
                                          description="d", call_type="help"), HOTLINE)
    with pytest.raises(RatingError, match=f"case {open_case} is reported; only a closed case"):
        ratings.rate_case(conn, open_case, 4, channel="hotline", recorded_by=HOTLINE,
                          calendar=CALENDAR)
    assert status(conn, ticket_id) == "closed"
    assert conn.execute("SELECT count(*) AS n FROM case_ratings").fetchone() == {"n": 0}
