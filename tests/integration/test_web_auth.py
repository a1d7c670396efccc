"""Sign-in and access control of the web app, through Flask's test client on a real database."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.cases import tickets
from cityops.cases.tickets import Actor
from cityops.platform import db
from tests.integration.scenario import PASSWORD
from tests.integration.web_client import Web, callback, route, sign_in

pytestmark = pytest.mark.integration


def wall_refresh(client: FlaskClient) -> TestResponse:
    return callback(client, "wall-vitals",
                    [{"id": "wall-tick", "property": "n_intervals", "value": 1}],
                    [{"id": "wall-cells", "property": "data", "value": []}])


def test_anonymous_pages_redirect_and_dash_requests_get_401(web: Web) -> None:
    client = web.client()
    for path in ("/", "/admin", "/civil", "/worker", f"/tickets/{web.scenario.tickets['flood']}",
                 "/login-not", "/assets-not"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == f"/login?next={path}"
    for path in ("/_dash-layout", "/_dash-dependencies"):
        assert client.get(path).status_code == 401
    assert client.post("/_dash-update-component", json={}).status_code == 401
    for path in ("/login", "/assets/style.css", "/_favicon.ico",
                 "/_dash-component-suites/plotly/package_data/plotly.min.js"):
        assert client.get(path).status_code == 200, path


def test_sign_in_lands_each_role_on_its_page(web: Web) -> None:
    for username, landing in (("ops1", "/"), ("admin1", "/"), ("gw1", "/worker"),
                              ("civil1", "/civil")):
        client = web.client()
        response = sign_in(client, username)
        assert response.status_code == 302 and response.headers["Location"] == landing
        assert client.get(landing).status_code == 200
    ticket = f"/tickets/{web.scenario.tickets['manhole']}"
    assert sign_in(web.client(), "ops1", next_path=ticket).headers["Location"] == ticket
    for unsafe in ("//evil.example/", "https://evil.example/", "/civil"):
        assert sign_in(web.client(), "ops1", next_path=unsafe).headers["Location"] == "/"


def test_bad_password_and_forged_form_are_refused(web: Web) -> None:
    client = web.client()
    for username, password in (("ops1", "wrong-password"), ("nobody", PASSWORD)):
        response = sign_in(client, username, password)
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
    assert client.get("/").status_code == 302
    forged = web.client().post("/login", data={"username": "ops1", "password": PASSWORD})
    assert forged.status_code == 400
    with db.connect(web.scenario.url) as conn:
        rows = conn.execute("SELECT username FROM audit_log WHERE action = 'sign_in'").fetchall()
    assert rows == []


def test_wrong_role_gets_403(web: Web) -> None:
    sc = web.scenario
    own, other = sc.tickets["flood"], sc.tickets["manhole"]
    assert sc.workers["manhole"] != sc.workers["flood"]
    cases = {
        "ops1": {"/": 200, "/admin": 403, "/civil": 403, "/worker": 403, f"/tickets/{other}": 200},
        "admin1": {"/": 200, "/admin": 200, "/civil": 403, "/worker": 403},
        "civil1": {"/": 403, "/admin": 403, "/civil": 200, f"/tickets/{own}": 403},
        "gw1": {"/": 403, "/worker": 200, f"/tickets/{own}": 200, f"/tickets/{other}": 403},
        "gw2": {f"/tickets/{own}": 403, "/worker": 200},
    }
    for username, expected in cases.items():
        client = web.client()
        sign_in(client, username)
        got = {path: client.get(path).status_code for path in expected}
        assert got == expected, username
        assert client.get("/no-such-page").status_code == 404


def test_data_callbacks_refuse_the_wrong_role(web: Web) -> None:
    ops, civil, gw2 = web.client(), web.client(), web.client()
    sign_in(ops, "ops1")
    sign_in(civil, "civil1")
    sign_in(gw2, "gw2")

    allowed = wall_refresh(ops)
    assert allowed.status_code == 200
    vitals = json.dumps(allowed.json["response"]["wall-vitals"])
    assert "5 / 10" in vitals
    assert wall_refresh(civil).status_code == 403
    assert wall_refresh(gw2).status_code == 403

    civil_refresh = [{"id": "civil-refresh", "property": "n_clicks", "value": 1}]
    assert callback(ops, "civil-table", civil_refresh).status_code == 403
    assert callback(civil, "civil-table", civil_refresh).status_code == 200

    admin = web.client()
    sign_in(admin, "admin1")
    admin_tick = [{"id": "admin-tick", "property": "n_intervals", "value": 1}]
    assert callback(ops, "admin-content", admin_tick).status_code == 403
    assert "Dead letters: 3 in the last 24 h" in callback(admin, "admin-content", admin_tick).text

    # a grid worker can neither read nor change a ticket assigned to somebody else
    ticket_id = web.scenario.tickets["flood"]
    ticket_tick = ([{"id": "tk-tick", "property": "n_intervals", "value": 1}],
                   [{"id": "tk-id", "property": "data", "value": ticket_id},
                    {"id": "tk-state", "property": "data", "value": "dispatched"}])
    assert callback(gw2, "tk-body.children@", *ticket_tick).status_code == 403
    assert "Timeline" in callback(ops, "tk-body.children@", *ticket_tick).text
    click = {"id": {"type": "tk-action", "to": "signed_for"}, "property": "n_clicks",
             "value": 1}
    state = [{"id": "tk-note", "property": "value", "value": "mine now"},
             {"id": "tk-id", "property": "data", "value": ticket_id}]
    assert callback(gw2, "tk-note.value", [[click]], state, changed=click).status_code == 403
    with db.connect(web.scenario.url) as conn:
        status = conn.execute("SELECT status FROM tickets WHERE id = %s",
                              (ticket_id,)).fetchone()
    assert status is not None and status["status"] == "dispatched"

    # operations may: the change is made, and a refused one says why
    done = callback(ops, "tk-note.value", [[click]], state, changed=click)
    assert done.status_code == 200 and "now signed for" in done.text
    close = click | {"id": {"type": "tk-action", "to": "closed"}}
    refused = callback(ops, "tk-note.value", [[close]], state, changed=close)
    assert refused.status_code == 200
    assert "Not changed: ticket" in refused.text and "cannot become closed" in refused.text
    with db.connect(web.scenario.url) as conn:
        last = conn.execute("SELECT actor, to_status, note FROM ticket_events WHERE ticket_id = %s"
                            " ORDER BY id DESC LIMIT 1", (ticket_id,)).fetchone()
    assert last == {"actor": "ops1", "to_status": "signed_for", "note": "mine now"}


def test_ticket_page_decides_postponements_and_dispatches_by_hand(web: Web) -> None:
    sc = web.scenario
    ops, gw1 = web.client(), web.client()
    sign_in(ops, "ops1")
    sign_in(gw1, "gw1")
    flood, worker = sc.tickets["flood"], sc.workers["flood"]
    me = Actor("gw1", "grid_worker", worker)
    with db.connect(sc.url) as conn:
        tickets.transition(conn, flood, "signed_for", me)
        tickets.request_postponement(conn, flood, me, sc.now + timedelta(days=2),
                                     "The pump truck is at another site")
    page = json.dumps(route(ops, f"/tickets/{flood}").json)
    assert "The pump truck is at another site" in page and "Approve the postponement" in page
    assert "Approve the postponement" not in json.dumps(route(gw1, f"/tickets/{flood}").json)

    def decide(client: FlaskClient, approve: int, note: str) -> TestResponse:
        click = {"id": {"type": "tk-postpone", "approve": approve}, "property": "n_clicks",
                 "value": 1}
        state = [{"id": "tk-note", "property": "value", "value": note},
                 {"id": "tk-id", "property": "data", "value": flood}]
        return callback(client, "tk-msg.children@", [[click]], state, changed=click,
                        input_part="tk-postpone")

    assert decide(gw1, 1, "").status_code == 403
    assert "say in the note why" in decide(ops, 0, " ").text
    refused = decide(ops, 0, "Borrow the pump of street 2")
    assert "postponement is refused" in refused.text
    with db.connect(sc.url) as conn:
        tickets.request_postponement(conn, flood, me, sc.now + timedelta(days=2), "Still none")
    assert "postponement is approved" in decide(ops, 1, "").text
    with db.connect(sc.url) as conn:
        row = conn.execute("SELECT status, due_at FROM tickets WHERE id = %s",
                           (flood,)).fetchone()
        assert (row["status"], row["due_at"]) == ("postponed", sc.now + timedelta(days=2))
        # the manhole case's worker returns it: operations dispatch it by hand
        manhole, first = sc.tickets["manhole"], sc.workers["manhole"]
        tickets.transition(conn, manhole, "returned", Actor("gw", "grid_worker", first),
                           "Not my cell")
        cell = conn.execute("SELECT grid_code FROM tickets WHERE id = %s",
                            (manhole,)).fetchone()["grid_code"]
        other = conn.execute("SELECT id FROM workers WHERE cell_code = %s AND id <> %s"
                             " ORDER BY id LIMIT 1", (cell, first)).fetchone()["id"]
    page = json.dumps(route(ops, f"/tickets/{manhole}").json)
    assert "Dispatch by hand to a worker of the cell" in page and other in page

    def by_hand(client: FlaskClient, chosen: str | None) -> TestResponse:
        click = {"id": {"type": "tk-dispatch", "n": 0}, "property": "n_clicks", "value": 1}
        state = [[{"id": {"type": "tk-worker", "n": 0}, "property": "value", "value": chosen}],
                 {"id": "tk-note", "property": "value", "value": "lives next door"},
                 {"id": "tk-id", "property": "data", "value": manhole}]
        return callback(client, "tk-msg.children@", [[click]], state, changed=click,
                        input_part="tk-dispatch")

    assert by_hand(gw1, other).status_code == 403
    assert "choose a worker first" in by_hand(ops, None).text
    assert f"dispatched to {other}" in by_hand(ops, other).text
    with db.connect(sc.url) as conn:
        row = conn.execute("SELECT status, worker_id, assigned_reason FROM tickets WHERE id = %s",
                           (manhole,)).fetchone()
    assert (row["status"], row["worker_id"]) == ("dispatched", other)
    assert row["assigned_reason"] == f"dispatched by hand by ops1: {other} (lives next door)"


def test_map_click_opens_the_ticket(web: Web) -> None:
    ops, civil = web.client(), web.client()
    sign_in(ops, "ops1")
    sign_in(civil, "civil1")
    ticket_id = web.scenario.tickets["manhole"]
    click = [{"id": "wall-map", "property": "clickData",
              "value": {"points": [{"customdata": ticket_id, "lon": 121.48, "lat": 31.22}]}}]
    opened = callback(ops, "url.pathname", click)
    assert opened.json["response"]["url"]["pathname"] == f"/tickets/{ticket_id}"
    cell = [{"id": "wall-map", "property": "clickData", "value": {"points": [{"z": 2}]}}]
    assert callback(ops, "url.pathname", cell).status_code == 204  # a cell, not an alert
    assert callback(civil, "url.pathname", click).status_code == 403


def test_worker_refresh_keeps_the_cards_and_updates_time_left(web: Web) -> None:
    gw1 = web.client()
    sign_in(gw1, "gw1")
    mine = [t for name, t in web.scenario.tickets.items()
            if web.scenario.workers[name] == web.scenario.workers["flood"]]
    lefts = [{"id": {"type": "wk-left", "ticket": t}, "property": "children"} for t in mine]
    inputs = [{"id": "wk-tick", "property": "n_intervals", "value": 1},
              {"id": "wk-done", "property": "data", "value": 0}]

    def refresh(shown: list[Any]) -> dict[str, Any]:
        response = callback(gw1, "wk-list.children", inputs,
                            [{"id": "wk-sig", "property": "data", "value": shown},
                             {"id": "wk-open", "property": "data", "value": None}],
                            wildcard_outputs=lefts)
        assert response.status_code == 200
        return response.json["response"]

    changed = refresh([])  # the page showed something else: cards are redrawn
    assert {"wk-list", "wk-sig", "wk-cell-list"} <= set(changed)
    assert "wk-left" not in json.dumps(list(changed))
    same = refresh(changed["wk-sig"]["data"])  # nothing changed: only the clocks move
    assert "wk-list" not in same and "updated" in same
    left = [v for k, v in same.items() if k.startswith("{")]
    assert len(left) == len(mine) and all("left" in json.dumps(v) for v in left)


def test_page_layouts_check_the_role_and_household_views_are_audited(web: Web) -> None:
    ops, civil = web.client(), web.client()
    sign_in(ops, "ops1")
    sign_in(civil, "civil1")
    wall = json.dumps(route(ops, "/").json)
    assert "vital-sensors" in wall
    refused = json.dumps(route(civil, "/").json)
    assert "Not allowed" in refused and "vital-sensors" not in refused
    assert "Not allowed" in json.dumps(route(ops, "/civil").json)

    households = json.dumps(route(civil, "/civil").json)
    assert any(name in households for name in web.scenario.personal)
    for screen in (wall, json.dumps(route(ops, f"/tickets/{web.scenario.tickets['water']}").json)):
        assert not any(value in screen for value in web.scenario.personal)
    with db.connect(web.scenario.url) as conn:
        audit = conn.execute("SELECT username, action, subject, details FROM audit_log"
                             " WHERE action = 'view'").fetchall()
    assert [(a["username"], a["subject"]) for a in audit] == [("civil1",
                                                               "households.elderly_alone")]
    assert len(audit[0]["details"]["households"]) == web.scenario.elderly


def test_sign_out(web: Web) -> None:
    client = web.client()
    sign_in(client, "ops1")
    assert client.get("/").status_code == 200
    assert client.get("/logout").headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    assert client.post("/_dash-update-component", json={}).status_code == 401
