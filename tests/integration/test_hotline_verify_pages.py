"""The 12345 hotline page and the verification page, through Flask's test client on a real
database: role guards, filing a call with its call type's deadline, every invalid field reported,
ratings recorded, and verification refused to the handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from dash import Dash
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.cases.clock import CaseClock
from cityops.cases.tickets import Actor, NewCase, create_case, transition
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.worktime import working_days
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from dashboards.pages.hotline import FIELDS
from tests.integration.web_client import callback, route, sign_in

pytestmark = pytest.mark.integration

SIZE = DistrictSize(streets=2, grids=3, communities=6, households_per_community=2,
                    flood_gauges=1, manhole_covers=1, cameras=1)
PASSWORD = "correct-horse-1"
SETTINGS = Settings(secret_key="hotline-test-key-0123456789abcdef")


@dataclass
class Web:
    app: Dash
    url: str
    communities: list[dict[str, Any]]   # code, name, street, lon, lat
    workers: dict[str, str]              # username -> worker id
    streets: list[str]

    def client(self, username: str | None = None) -> FlaskClient:
        client = self.app.server.test_client()
        if username:
            assert sign_in(client, username, PASSWORD).status_code == 302
        return client


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    district = generate_district(1, SIZE)
    with db.connect(db_url) as conn:
        load_district(conn, district)
        rows = conn.execute(
            "SELECT code, name, parent_code, centroid_lon AS lon, centroid_lat AS lat"
            " FROM grids WHERE level = 'community' ORDER BY code").fetchall()
        streets = [r["code"] for r in conn.execute(
            "SELECT code FROM grids WHERE level = 'street' ORDER BY code").fetchall()]
        communities = [dict(r, street=r["code"][:9] + "000000") for r in rows]
        first = communities[0]["code"]
        pair = [r["id"] for r in conn.execute(
            "SELECT id FROM workers WHERE cell_code = %s ORDER BY id", (first,)).fetchall()]
        users.create_user(conn, "op1", "Hu Operator", "hotline", PASSWORD)
        users.create_user(conn, "sup1", "Su Pervisor", "supervisor", PASSWORD)
        other = next(s for s in streets if s != communities[0]["street"])
        users.create_user(conn, "sup2", "Other Street", "supervisor", PASSWORD, cell_code=other)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "gw1", "Gao One", "grid_worker", PASSWORD, worker_id=pair[0])
        users.create_user(conn, "gw2", "Gao Two", "grid_worker", PASSWORD, worker_id=pair[1])
    database = Database.open(db_url, max_size=4, name="hotline-test")
    try:
        yield Web(create_app(database, SETTINGS), db_url, communities,
                  {"gw1": pair[0], "gw2": pair[1]}, streets)
    finally:
        database.close()


FORM_STATES = ("hl-name", "hl-phone", "hl-call-type", "hl-category", "hl-description",
               "hl-address", "hl-lat", "hl-lon", "hl-cell", "hl-urgent", "hl-answered",
               "hl-answer")


def submit(client: FlaskClient, **values: Any) -> TestResponse:
    """Press "File the case" with these form values (the rest empty)."""
    props = {"hl-call-type": "value", "hl-category": "value"}
    state = [{"id": ident, "property": props.get(ident, "value"),
              "value": values.get(ident.removeprefix("hl-").replace("-", "_"))}
             for ident in FORM_STATES]
    state.append({"id": "hl-done", "property": "data", "value": 0})
    return callback(client, "hl-name-err.children...",
                    [{"id": "hl-submit", "property": "n_clicks", "value": 1}], state)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def rate(client: FlaskClient, case: Any, score: Any, comment: str = "") -> TestResponse:
    """Press "Record rating"."""
    return callback(
        client, "hl-rate-msg.children",
        [{"id": "hl-rate-submit", "property": "n_clicks", "value": 1}],
        [{"id": "hl-rate-case", "property": "value", "value": case},
         {"id": "hl-rate-score", "property": "value", "value": score},
         {"id": "hl-rate-comment", "property": "value", "value": comment},
         {"id": "hl-done", "property": "data", "value": 3}])


def outputs(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return {ident: props for ident, props in response.json["response"].items()}


def good_call(web: Web, **changes: Any) -> dict[str, Any]:
    place = web.communities[0]
    call = {"name": "Wang Fang", "phone": "138 0013 8000", "call_type": "help",
            "category": "C0201", "description": "A deep pothole outside the school gate",
            "address": "12 Harbour Road", "lat": str(place["lat"]), "lon": str(place["lon"]),
            "urgent": [], "answered": []}
    return call | changes


def ticket(url: str, ticket_id: int) -> dict[str, Any]:
    with db.connect(url) as conn:
        row = conn.execute("SELECT * FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
    assert row is not None
    return row


def handled_case(web: Web, handler: str) -> int:
    """A case in the first community, handled by ``handler`` (a grid worker)."""
    place = web.communities[0]
    worker = web.workers[handler]
    with db.connect(web.url) as conn:
        tid = create_case(conn, NewCase(source="patrol", category="C0101", title="Cover loose",
                                        description="rocking", grid_code=place["code"],
                                        lon=place["lon"], lat=place["lat"]), Actor.system())
        system, gw = Actor.system(), Actor(handler, "grid_worker", worker)
        transition(conn, tid, "accepted", system)
        transition(conn, tid, "registered", system)
        conn.execute("UPDATE tickets SET worker_id = %s WHERE id = %s", (worker, tid))
        transition(conn, tid, "dispatched", system)
        transition(conn, tid, "signed_for", gw)
        transition(conn, tid, "in_progress", gw)
        transition(conn, tid, "handled", gw, "cover reseated and locked")
    return tid


def test_role_guards(web: Web) -> None:
    expected = {
        "op1": {"/hotline": 200, "/verify": 403, "/": 403},
        "sup1": {"/verify": 200, "/hotline": 403, "/": 403},
        "ops1": {"/verify": 200, "/hotline": 403},
        "gw1": {"/verify": 200, "/hotline": 403},
        "civil1": {"/verify": 403, "/hotline": 403},
    }
    for username, pages in expected.items():
        client = web.client(username)
        assert {p: client.get(p).status_code for p in pages} == pages, username
    assert sign_in(web.client(), "op1", PASSWORD).headers["Location"] == "/hotline"
    assert sign_in(web.client(), "sup1", PASSWORD).headers["Location"] == "/verify"

    # the callbacks check the role too
    ops = web.client("ops1")
    assert submit(ops, **good_call(web)).status_code == 403
    assert rate(ops, 1, 5).status_code == 403
    assert callback(web.client("op1"), "vf-msg.children",
                    [[], [], {"id": "vf-refresh", "property": "n_clicks", "value": 1}],
                    [[]], changed={"id": "vf-refresh", "property": "n_clicks"}
                    ).status_code == 403
    with db.connect(web.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM tickets").fetchone() == {"n": 0}
    # the page itself, through the router: the form with each call type's limit
    page = dumps(route(web.client("op1"), "/hotline").json)
    for text in ("Complaint — 5 working days", "Consultation — 1 working day",
                 "Suggestion — 15 working days", "C0101"):
        assert text in page
    assert "This page is not for your role" in route(web.client("sup1"), "/hotline").text


def test_hotline_call_is_filed_with_its_call_types_deadline(web: Web) -> None:
    client = web.client("op1")
    out = outputs(submit(client, **good_call(web)))
    assert all(out[f"hl-{f}-err"]["children"] == "" for f in FIELDS)
    result = dumps(out["hl-result"])
    with db.connect(web.url) as conn:
        row = conn.execute("SELECT * FROM tickets ORDER BY id DESC LIMIT 1").fetchone()
        event = conn.execute("SELECT at FROM ticket_events WHERE ticket_id = %s AND"
                             " to_status = 'dispatched'", (row["id"],)).fetchone()
    assert f"Case #{row['id']}" in result and "Deadline" in result
    assert "the help request limit is 3 working days" in result
    assert row["source"] == "hotline" and row["call_type"] == "help"
    assert row["reported_by"] == "op1" and row["reporter_name"] == "Wang Fang"
    assert row["reporter_phone"] == "138 0013 8000"
    assert row["status"] == "dispatched" and row["grid_code"] == web.communities[0]["code"]
    # a pothole has 24 working hours, a help request 3 working days (21 h): the sooner counts
    clock = CaseClock.from_settings(SETTINGS)
    expected = working_days(clock.calendar, event["at"], 3)
    assert expected == clock.handle_due(event["at"], "C0201", False, "help")
    assert row["priority"] == "normal"
    assert abs(row["due_at"] - expected) < timedelta(minutes=1)
    assert out["hl-done"]["data"] == 1

    # the same thing again, near the same place: linked, not dispatched twice
    again = dumps(outputs(submit(client, **good_call(web, name="Li Lei")))["hl-result"])
    assert f"Linked to case #{row['id']}" in again

    # a consultation answered on the call is closed at once with the answer as the note
    answered = good_call(web, call_type="consultation", category="E9999", address="", lat="",
                         lon="", description="Asks when the bulky-waste collection is",
                         answered=["answered"], answer="Every second Saturday, 8-11 am")
    closed = dumps(outputs(submit(client, **answered))["hl-result"])
    assert "consultation answered on the call and closed" in closed
    with db.connect(web.url) as conn:
        last = conn.execute("SELECT t.status, e.note FROM tickets t JOIN ticket_events e ON"
                            " e.ticket_id = t.id AND e.to_status = 'closed'"
                            " ORDER BY t.id DESC LIMIT 1").fetchone()
    assert last == {"status": "closed", "note": "Every second Saturday, 8-11 am"}

    # my recent calls list them, with the link
    page = dumps(route(client, "/hotline").json)
    assert f"linked to #{row['id']}" in page and "Li Lei" in page


def test_invalid_fields_each_get_their_message(web: Web) -> None:
    client = web.client("op1")
    out = outputs(submit(client, name="  ", phone="12ab", description="hm", lat="31.2"))
    errors = {f: out[f"hl-{f}-err"]["children"] for f in FIELDS}
    assert errors == {
        "name": "Enter the caller's name, or “anonymous”.",
        "phone": "A phone number has 7 to 15 digits (spaces, dashes and a leading + are fine).",
        "call-type": "Choose the call type.",
        "category": "Choose the category.",
        "description": "Write down what the caller says (at least a few words).",
        "address": "Enter the address or a landmark.",
        "location": "Give both latitude and longitude, or neither.",
        "answer": "",
    }
    assert "Not filed: 7 fields to correct" in dumps(out["hl-result"])
    # the typed values are not outputs of the callback: nothing typed is lost
    assert not set(out) & {"hl-name", "hl-phone", "hl-description", "hl-lat"}
    assert "hl-done" not in out

    more = outputs(submit(client, **good_call(web, address="", lat="", lon="", phone="",
                                              answered=["answered"])))
    assert more["hl-address-err"]["children"] == "Enter the address or a landmark."
    assert more["hl-location-err"]["children"].startswith("Pick the community")
    assert more["hl-phone-err"]["children"].startswith("Enter the caller's phone")
    assert more["hl-answer-err"]["children"] == ""   # only a consultation is answered at once

    # a point outside the district: intake's reason, beside the location
    far = outputs(submit(client, **good_call(web, lat="10.0", lon="10.0")))
    assert "outside every grid cell" in far["hl-location-err"]["children"]
    answer = outputs(submit(client, **good_call(web, call_type="consultation",
                                                answered=["answered"], answer="")))
    assert answer["hl-answer-err"]["children"] == "Write down the answer given on the call."
    with db.connect(web.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM tickets").fetchone() == {"n": 0}


def test_callbacks_record_ratings(web: Web) -> None:
    client = web.client("op1")
    answered = good_call(web, call_type="consultation", category="E9999",
                         description="Asks about the parking permit", answered=["answered"],
                         answer="Apply at the street office with the car's papers")
    outputs(submit(client, **answered))
    with db.connect(web.url) as conn:
        tid = conn.execute("SELECT id FROM tickets").fetchone()["id"]
    page = dumps(route(client, "/hotline").json)
    assert "Closed cases waiting for the caller's rating" in page and f"#{tid}" in page

    missing = outputs(rate(client, None, None))
    assert missing["hl-rate-case-err"]["children"] == "Choose the case the caller rates."
    assert missing["hl-rate-score-err"]["children"] == "Choose the caller's score, 1 to 5."
    bad = outputs(rate(client, tid, 2, "the office was closed"))
    text = dumps(bad["hl-rate-msg"])
    assert f"Rating 2/5 recorded for case #{tid}" in text and "followed up by" in text
    assert bad["hl-done"]["data"] == 4
    assert ticket(web.url, tid)["status"] == "evaluated"
    page = dumps(route(client, "/hotline").json)
    assert "the office was closed" in page and "rate again (was 2/5)" in page
    refused = outputs(rate(client, tid + 100, 5))
    assert f"Not recorded: case {tid + 100} does not exist" in dumps(refused)


def verify(client: FlaskClient, tid: int, ok: bool, reason: str = "") -> TestResponse:
    button = {"id": {"type": "vf-verify" if ok else "vf-rework", "ticket": tid},
              "property": "n_clicks", "value": 1}
    verify_in = [button] if ok else [{"id": {"type": "vf-verify", "ticket": tid},
                                      "property": "n_clicks", "value": None}]
    rework_in = [button] if not ok else [{"id": {"type": "vf-rework", "ticket": tid},
                                          "property": "n_clicks", "value": None}]
    return callback(client, "vf-msg.children",
                    [verify_in, rework_in, {"id": "vf-refresh", "property": "n_clicks",
                                            "value": None}],
                    [[{"id": {"type": "vf-reason", "ticket": tid}, "property": "value",
                       "value": reason}]], changed=button)


def test_verify_page_refuses_the_handler_and_scopes_by_area(web: Web) -> None:
    tid = handled_case(web, "gw1")
    handler, colleague = web.client("gw1"), web.client("gw2")
    assert f"Case #{tid}" not in route(handler, "/verify").text
    shown = route(colleague, "/verify").text
    assert f"Case #{tid}" in shown and "cover reseated and locked" in shown
    assert "0 photos with the case" in shown

    refused = verify(handler, tid, True)
    assert refused.status_code == 200
    assert f"Not changed: you handled case {tid} yourself; someone else must verify it" \
        in refused.text
    assert ticket(web.url, tid)["status"] == "handled"

    # a supervisor of another street neither sees nor verifies it; one of the district does
    other = web.client("sup2")
    assert f"Case #{tid}" not in route(other, "/verify").text
    assert f"case {tid} is outside your area" in verify(other, tid, True).text
    district = web.client("sup1")
    assert f"Case #{tid}" in route(district, "/verify").text

    no_reason = verify(colleague, tid, False, "  ")
    assert "say what is still wrong" in no_reason.text
    back = verify(colleague, tid, False, "cover still rocks")
    assert f"Case {tid} sent back to the handler for rework" in back.text
    row = ticket(web.url, tid)
    assert row["status"] == "rework"

    # handled again, then verified by the supervisor
    gw = Actor("gw1", "grid_worker", web.workers["gw1"])
    with db.connect(web.url) as conn:
        transition(conn, tid, "in_progress", gw)
        transition(conn, tid, "handled", gw, "new cover fitted")
    done = verify(district, tid, True)
    assert f"Case {tid} verified." in done.text
    row = ticket(web.url, tid)
    assert row["status"] == "verified" and row["verified_by"] == "sup1"
