"""The bad reviews page ``/reviews`` and the late follow-up reminder, on a real database through
Flask's test client: role guard, a grid worker's scope, a follow-up and an appeal recorded from
the page with every refusal beside its bad review, and the reminder written once, not before due.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dash import Dash
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.app import jobs
from cityops.cases import ratings, reviews
from cityops.cases.clock import CaseClock
from cityops.cases.tickets import Actor, NewCase, create_case, transition
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from dashboards.pages.reviews import BUTTONS, FIELDS
from tests.integration.web_client import callback, route, sign_in

pytestmark = pytest.mark.integration

SIZE = DistrictSize(streets=2, grids=3, communities=6, households_per_community=2,
                    flood_gauges=1, manhole_covers=1, cameras=1)
PASSWORD = "correct-horse-1"
SETTINGS = Settings(secret_key="reviews-test-key-0123456789abcdef")
CALENDAR = CaseClock.from_settings(SETTINGS).calendar


@dataclass
class Web:
    app: Dash
    url: str
    community: dict[str, Any]   # code, lon, lat, street
    workers: dict[str, str]      # username -> worker id

    def client(self, username: str | None = None) -> FlaskClient:
        client = self.app.server.test_client()
        if username:
            assert sign_in(client, username, PASSWORD).status_code == 302
        return client


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(1, SIZE))
        place = conn.execute(
            "SELECT code, centroid_lon AS lon, centroid_lat AS lat FROM grids"
            " WHERE level = 'community' ORDER BY code LIMIT 1").fetchone()
        assert place is not None
        street = place["code"][:9] + "000000"
        other = conn.execute("SELECT code FROM grids WHERE level = 'street' AND code <> %s"
                             " ORDER BY code LIMIT 1", (street,)).fetchone()["code"]
        pair = [r["id"] for r in conn.execute(
            "SELECT id FROM workers WHERE cell_code = %s ORDER BY id", (place["code"],))]
        users.create_user(conn, "op1", "Hu Operator", "hotline", PASSWORD)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD, cell_code=street)
        users.create_user(conn, "ops2", "Otto Elsewhere", "operations", PASSWORD,
                          cell_code=other)
        users.create_user(conn, "sup1", "Su Pervisor", "supervisor", PASSWORD)
        users.create_user(conn, "admin1", "Ada Admin", "admin", PASSWORD)
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "gw1", "Gao One", "grid_worker", PASSWORD, worker_id=pair[0])
        users.create_user(conn, "gw2", "Gao Two", "grid_worker", PASSWORD, worker_id=pair[1])
    database = Database.open(db_url, max_size=4, name="reviews-test")
    try:
        yield Web(create_app(database, SETTINGS), db_url, dict(place, street=street),
                  {"gw1": pair[0], "gw2": pair[1]})
    finally:
        database.close()


def closed_case(web: Web, handler: str, title: str) -> int:
    """A case of the first community handled by ``handler``, verified and closed."""
    place, worker = web.community, web.workers[handler]
    system, gw = Actor.system(), Actor(handler, "grid_worker", worker)
    with db.connect(web.url) as conn:
        tid = create_case(conn, NewCase(source="hotline", category="C0101", title=title,
                                        description="caller says it rocks", call_type="help",
                                        grid_code=place["code"], lon=place["lon"],
                                        lat=place["lat"], reporter_name="Li Lei",
                                        reporter_phone="13800000000"), Actor("op1", "hotline"))
        transition(conn, tid, "accepted", system)
        transition(conn, tid, "registered", system)
        conn.execute("UPDATE tickets SET worker_id = %s WHERE id = %s", (worker, tid))
        transition(conn, tid, "dispatched", system)
        transition(conn, tid, "signed_for", gw)
        transition(conn, tid, "in_progress", gw)
        transition(conn, tid, "handled", gw, "cover reseated")
        transition(conn, tid, "verified", Actor("sup1", "supervisor"), "firm now")
        transition(conn, tid, "closed", Actor("ops1", "operations"))
    return tid


def rate(web: Web, tid: int, score: int, comment: str, at: datetime | None = None) -> int:
    with db.connect(web.url) as conn:
        rating = ratings.rate_case(conn, tid, score, channel="hotline",
                                   recorded_by=Actor("op1", "hotline"), comment=comment,
                                   calendar=CALENDAR, now=at)
    return rating.id


def press(client: FlaskClient, button: str, rating_id: int, shown: list[int],
          typed: dict[str, dict[int, str]] | None = None, show: str = "open") -> TestResponse:
    """Press a bad review's button with the page showing ``shown`` and these fields typed."""
    typed = typed or {}
    pressed = {"id": {"type": button, "rating": rating_id}, "property": "n_clicks", "value": 1}
    inputs: list[Any] = [[pressed] if b == button else [] for b in BUTTONS]
    inputs += [{"id": "rv-refresh", "property": "n_clicks", "value": None},
               {"id": "rv-filter", "property": "value", "value": show}]
    state = [[{"id": {"type": f, "rating": rid}, "property": "value", "value": text}
              for rid, text in typed.get(f, {}).items()] for f in FIELDS]
    return callback(client, "rv-msg.children", inputs, state, changed=pressed,
                    wildcard_outputs=[{"id": {"type": "rv-row-msg", "rating": r},
                                       "property": "children"} for r in shown])


def refresh(client: FlaskClient, show: str = "open") -> TestResponse:
    changed = {"id": "rv-filter", "property": "value", "value": show}
    inputs: list[Any] = [[] for _ in BUTTONS]
    inputs += [{"id": "rv-refresh", "property": "n_clicks", "value": None}, changed]
    return callback(client, "rv-msg.children", inputs, [[] for _ in FIELDS], changed=changed)


def out(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json["response"])


def row_messages(response: dict[str, Any], shown: list[int]) -> list[Any]:
    """The message beside each bad review shown, in order."""
    return [response[json.dumps({"rating": r, "type": "rv-row-msg"}, separators=(",", ":"))]
            ["children"] for r in shown]


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def rating_row(web: Web, rating_id: int) -> dict[str, Any]:
    with db.connect(web.url) as conn:
        row = conn.execute("SELECT * FROM case_ratings WHERE id = %s", (rating_id,)).fetchone()
    assert row is not None
    return row


def events(web: Web, tid: int, kind: str) -> list[str]:
    with db.connect(web.url) as conn:
        rows = conn.execute("SELECT note FROM ticket_events WHERE ticket_id = %s AND kind = %s"
                            " ORDER BY id", (tid, kind)).fetchall()
    return [r["note"] for r in rows]


def test_role_guard(web: Web) -> None:
    expected = {"ops1": 200, "sup1": 200, "admin1": 200, "gw1": 200, "op1": 403, "civil1": 403}
    for username, code in expected.items():
        assert web.client(username).get("/reviews").status_code == code, username
    assert "This page is not for your role" in route(web.client("op1"), "/reviews").text
    page = text(route(web.client("ops1"), "/reviews").json)
    assert "Bad reviews" in page and "within 5 working days" in page
    # the navigation of each role that may open it links it
    assert '"/reviews"' in text(route(web.client("gw1"), "/worker").json)
    # the callback checks the role too
    tid = closed_case(web, "gw1", "Cover loose")
    rid = rate(web, tid, 1, "still rocks")
    assert press(web.client("op1"), "rv-follow", rid, [rid],
                 {"rv-note": {rid: "fixed"}}).status_code == 403
    assert refresh(web.client("civil1")).status_code == 403
    assert rating_row(web, rid)["followed_up_at"] is None


def test_grid_worker_sees_only_the_bad_reviews_of_their_cases(web: Web) -> None:
    mine = closed_case(web, "gw1", "Cover loose at the school")
    theirs = closed_case(web, "gw2", "Cover loose at the market")
    good = closed_case(web, "gw1", "Bench repaired")
    r_mine, r_theirs = rate(web, mine, 1, "still rocks"), rate(web, theirs, 2, "noisy")
    rate(web, good, 5, "thank you")

    gw1 = text(route(web.client("gw1"), "/reviews").json)
    assert f"Case #{mine}" in gw1 and f"Case #{theirs}" not in gw1
    assert f"Case #{good}" not in gw1                # a good rating is no bad review
    assert "Bad reviews of the cases you had." in gw1
    assert f"/tickets/{mine}" in gw1 and "still rocks" in gw1
    assert "Li Lei" not in gw1 and "13800000000" not in gw1   # no caller's details
    gw2 = text(route(web.client("gw2"), "/reviews").json)
    assert f"Case #{theirs}" in gw2 and f"Case #{mine}" not in gw2
    # the street's operations see both; another street's none
    ops = text(route(web.client("ops1"), "/reviews").json)
    assert f"Case #{mine}" in ops and f"Case #{theirs}" in ops
    elsewhere = text(route(web.client("ops2"), "/reviews").json)
    assert "No bad reviews to act on." in elsewhere

    # a forged press on another worker's bad review is refused beside it, nothing changes
    refused = out(press(web.client("gw1"), "rv-follow", r_theirs, [r_mine, r_theirs],
                        {"rv-note": {r_theirs: "fixed it", r_mine: "half typed"}}))
    assert "rv-list" not in refused          # the list is not redrawn: nothing typed is lost
    row_msgs = row_messages(refused, [r_mine, r_theirs])
    assert row_msgs[0] == ""
    assert f"rating {r_theirs} is not one of the bad reviews you act on" in text(row_msgs[1])
    assert rating_row(web, r_theirs)["followed_up_at"] is None
    other = out(press(web.client("ops2"), "rv-appeal", r_mine, [],
                      {"rv-reason": {r_mine: "unfair"}}))
    assert "rv-list" not in other and rating_row(web, r_mine)["appeal_status"] is None


def test_follow_up_recorded_from_the_page(web: Web) -> None:
    first = closed_case(web, "gw1", "Cover loose")
    second = closed_case(web, "gw1", "Drain blocked")
    r1, r2 = rate(web, first, 2, "took too long"), rate(web, second, 1, "still blocked")
    client = web.client("gw1")
    page = text(route(client, "/reviews").json)
    assert "Record follow-up" in page and "waiting" in page and "Appeal" in page
    assert "Uphold" not in page          # a worker does not decide appeals

    empty = out(press(client, "rv-follow", r1, [r1, r2], {"rv-note": {r1: "  ", r2: "draft"}}))
    row_msgs = row_messages(empty, [r1, r2])
    assert "Not done: say what was fixed in the follow-up." in text(row_msgs[0])
    assert row_msgs[1] == "" and "rv-list" not in empty
    assert rating_row(web, r1)["followed_up_at"] is None

    done = out(press(client, "rv-follow", r1, [r1, r2],
                     {"rv-note": {r1: "cover replaced, checked with the caller", r2: "draft"},
                      "rv-reason": {r1: "", r2: "draft reason"}}))
    assert "Follow-up of the bad review of case" in text(done["rv-msg"]["children"])
    row = rating_row(web, r1)
    assert row["followed_up_by"] == "gw1"
    assert row["follow_up_note"] == "cover replaced, checked with the caller"
    assert events(web, first, "follow_up")[0].endswith(": cover replaced, checked with the"
                                                       " caller")
    # redrawn: the followed-up one leaves the open list; what was typed in the other stays
    redrawn = text(done["rv-list"]["children"])
    assert f"Case #{second}" in redrawn and f"Case #{first}:" not in redrawn
    assert '"value": "draft"' in redrawn and '"value": "draft reason"' in redrawn
    settled = text(out(refresh(client, "all"))["rv-list"]["children"])
    assert "followed up" in settled and "cover replaced" in settled
    again = out(press(client, "rv-follow", r1, [r1], {"rv-note": {r1: "again"}}))
    assert "already followed up by gw1" in text(again)

    # re-rated after the follow-up: the old bad review reads "re-rated"
    rate(web, first, 4, "fine now")
    settled = text(out(refresh(client, "all"))["rv-list"]["children"])
    assert "re-rated" in settled and "4/5" in settled


def test_appeal_then_decision(web: Web) -> None:
    tid = closed_case(web, "gw1", "Cover loose")
    other = closed_case(web, "gw1", "Drain blocked")
    rid, rid2 = rate(web, tid, 1, "nobody came"), rate(web, other, 2, "slow")
    worker = web.client("gw1")
    no_reason = out(press(worker, "rv-appeal", rid, [rid, rid2], {"rv-reason": {rid: ""}}))
    assert "say why the bad review is unfair" in text(no_reason)
    appealed = out(press(worker, "rv-appeal", rid, [rid, rid2],
                         {"rv-reason": {rid: "photos show the cover fixed on the day"}}))
    assert "Appeal against the bad review" in text(appealed["rv-msg"])
    assert rating_row(web, rid)["appeal_status"] == "pending"
    assert "appealed" in text(appealed["rv-list"])

    # operations may not decide, even by forging the press; the supervisor may
    ops = web.client("ops1")
    assert "Uphold" not in text(route(ops, "/reviews").json)
    forged = out(press(ops, "rv-overturn", rid, [rid, rid2], {"rv-decision": {rid: "ok"}}))
    assert "a operations cannot decide an appeal" in text(forged)
    sup = web.client("sup1")
    assert "Uphold (the bad review stands)" in text(route(sup, "/reviews").json)
    no_note = out(press(sup, "rv-overturn", rid, [rid, rid2], {"rv-decision": {rid: " "}}))
    assert "give the reason for the decision" in text(no_note)
    decided = out(press(sup, "rv-overturn", rid, [rid, rid2],
                        {"rv-decision": {rid: "the photos are dated and clear"}}))
    assert "overturned: it does not count against satisfaction" in text(decided["rv-msg"])
    row = rating_row(web, rid)
    assert row["appeal_status"] == "overturned" and row["appeal_decided_by"] == "sup1"
    assert any("overturned" in n for n in events(web, tid, "appeal"))
    settled = text(out(refresh(sup, "all"))["rv-list"]["children"])
    assert "overturned" in settled

    # operations appeal the other one; the administrator upholds it: it stands, still owed
    out(press(ops, "rv-appeal", rid2, [rid2], {"rv-reason": {rid2: "the caller was away"}}))
    upheld = out(press(web.client("admin1"), "rv-uphold", rid2, [rid2],
                       {"rv-decision": {rid2: "the caller was at home all day"}}))
    assert "Appeal refused: the bad review of case" in text(upheld["rv-msg"])
    assert rating_row(web, rid2)["appeal_status"] == "upheld"
    page = text(upheld["rv-list"])
    assert "appeal upheld" in page and "Record follow-up" in page


def test_late_follow_up_reminded_once_and_not_before_due(web: Web) -> None:
    topics = Topics(SETTINGS.topic_prefix)
    late_case = closed_case(web, "gw1", "Cover loose")
    fresh_case = closed_case(web, "gw2", "Drain blocked")
    rated = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)          # Monday 10:00 Shanghai
    late = rate(web, late_case, 1, "still rocks", at=rated)
    fresh = rate(web, fresh_case, 2, "slow", at=rated + timedelta(days=7))
    due = rating_row(web, late)["follow_up_due_at"]
    fresh_due = rating_row(web, fresh)["follow_up_due_at"]
    assert due == datetime(2026, 3, 9, 2, 0, tzinfo=UTC)   # 5 working days later

    def run(now: datetime) -> list[reviews.Reminder]:
        with db.connect(web.url) as conn, conn.transaction():
            return reviews.remind_overdue(conn, now, SETTINGS, topics)

    assert run(due - timedelta(minutes=1)) == []              # not before due
    assert events(web, late_case, "reminder") == []
    first = run(due + timedelta(hours=1))
    assert [(r.ticket_id, r.rating_id, r.centre) for r in first] == [
        (late_case, late, web.community["street"])]
    assert run(due + timedelta(hours=2)) == []                # once only
    notes = events(web, late_case, "reminder")
    assert len(notes) == 1
    assert notes[0].startswith(f"follow-up of the bad review of 2026-03-02 (rating #{late})"
                               " overdue since 2026-03-09 10:00")
    assert "ops1" in notes[0]                   # the street centre's staff are named
    with db.connect(web.url) as conn:
        sent = conn.execute("SELECT topic, payload, channel FROM dispatches WHERE ticket_id = %s"
                            " AND topic LIKE '%%/centre/%%'", (late_case,)).fetchall()
    assert [(s["topic"], s["channel"]) for s in sent] == [
        (topics.centre(web.community["street"]), "mqtt")]
    assert sent[0]["payload"]["type"] == "follow_up_overdue"
    assert sent[0]["payload"]["rating_id"] == late

    # the page shows it late, and that the centre was reminded
    page = text(route(web.client("ops1"), "/reviews").json)
    assert "overdue" in page and "centre reminded" in page

    # the scheduler's job, run twice (as two schedulers would): the other one, now late, once;
    # a followed-up bad review is never reminded
    with db.connect(web.url) as conn:
        ratings.record_follow_up(conn, late, Actor("ops1", "operations"), "fixed", now=due)
    assert fresh_due < datetime.now(UTC)
    database = Database.open(web.url, max_size=2, name="reviews-scheduler")
    try:
        jobs.review_reminders(database, SETTINGS, topics)
        jobs.review_reminders(database, SETTINGS, topics)
    finally:
        database.close()
    assert len(events(web, fresh_case, "reminder")) == 1
    assert len(events(web, late_case, "reminder")) == 1
