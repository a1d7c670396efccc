"""The grid worker's phone page without a browser: what a worker may read and do
(cityops.cases.worker, on the real database), the page's callbacks through Flask's test client,
the photo checks and the SVG pictures."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from cityops.cases import worker as worker_cases
from cityops.cases.photos import Photo
from cityops.cases.tickets import Actor, TransitionError
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from tests.integration.web_client import callback, sign_in
from tests.integration.worker_scenario import WorkerScenario, build

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.fixture
def sc(db_url: str) -> WorkerScenario:
    return build(db_url)


def _actor(sc: WorkerScenario, username: str) -> Actor:
    return Actor(username, "grid_worker", sc.workers[username])


def test_a_worker_reads_only_their_own_and_their_cells_cases(sc: WorkerScenario) -> None:
    a = sc.workers["gw1"]
    with db.connect(sc.url) as conn:
        mine = worker_cases.my_tasks(conn, a, sc.now)
        cell = worker_cases.cell_cases(conn, a, sc.now)
        foreign = worker_cases.case_for_worker(conn, a, sc.cases["elsewhere"], sc.now)
        colleague = worker_cases.case_for_worker(conn, a, sc.cases["colleague"], sc.now)
        own = worker_cases.case_for_worker(conn, a, sc.cases["flood"], sc.now)
        missing = worker_cases.case_for_worker(conn, a, 999_999, sc.now)
        c_cell = worker_cases.cell_cases(conn, sc.workers["gw3"], sc.now)
    # most urgent first: the overdue manhole, then urgent by limit, then the normal welfare case
    assert [t["id"] for t in mine] == [sc.cases[n] for n in ("manhole", "flood", "water")]
    assert mine[0]["overdue"] and mine[0]["deadline_kind"] == "sign"
    assert not mine[1]["overdue"] and mine[1]["deadline"] is not None
    assert [t["id"] for t in cell] == [sc.cases["colleague"]]
    assert all(t["worker_id"] != a for t in cell)
    assert foreign is None and missing is None
    assert colleague is not None and not colleague["mine"]
    assert worker_cases.phone_moves(colleague) == []
    assert own is not None and own["mine"]
    assert worker_cases.phone_moves(own) == ["signed_for", "returned"]
    assert [t["id"] for t in c_cell] == []  # C's cell has no other case; X's never show


def test_welfare_cases_carry_no_household_details(sc: WorkerScenario) -> None:
    with db.connect(sc.url) as conn:
        water = worker_cases.case_for_worker(conn, sc.workers["gw1"], sc.cases["water"], sc.now)
        everything = [*worker_cases.my_tasks(conn, sc.workers["gw1"], sc.now),
                      *worker_cases.cell_cases(conn, sc.workers["gw1"], sc.now),
                      *worker_cases.cell_cases(conn, sc.workers["gw2"], sc.now)]
    assert water is not None and water["welfare"] and water["address"] is None
    assert water["device_id"] and water["cell"]
    text = json.dumps(everything, default=str)
    leaked = [p for p in sc.personal if p and p in text]
    assert leaked == []
    colleague = next(t for t in everything if t["id"] == sc.cases["colleague"])
    assert colleague["address"] == "Corner of Park Road"  # a street place is fine to show


def test_a_worker_acts_only_on_their_own_cases(sc: WorkerScenario) -> None:
    a = _actor(sc, "gw1")
    topics = Topics()
    with db.connect(sc.url) as conn:
        for name in ("elsewhere", "colleague"):
            with pytest.raises(TransitionError, match="not assigned to you"):
                worker_cases.act(conn, sc.cases[name], "signed_for", a, topics)
            with pytest.raises(TransitionError, match="not assigned to you"):
                worker_cases.ask_for_time(conn, sc.cases[name], a,
                                          sc.now + timedelta(days=2), "need a crane")
        with pytest.raises(TransitionError, match="cannot become handled"):
            worker_cases.act(conn, sc.cases["flood"], "handled", a, topics, "done")
        flood = sc.cases["flood"]
        worker_cases.act(conn, flood, "signed_for", a, topics)
        worker_cases.act(conn, flood, "in_progress", a, topics)
        with pytest.raises(TransitionError, match="say what was done"):
            worker_cases.act(conn, flood, "handled", a, topics, "  ")
        ids = worker_cases.act(conn, flood, "handled", a, topics, "pumped out",
                               [Photo(JPEG, "image/jpeg")])
        event = conn.execute("SELECT actor, to_status, note, photos FROM ticket_events"
                             " WHERE ticket_id = %s ORDER BY id DESC LIMIT 1", (flood,)).fetchone()
        worker_cases.act(conn, sc.cases["manhole"], "signed_for", a, topics)
        request = worker_cases.ask_for_time(conn, sc.cases["manhole"], a,
                                            sc.now + timedelta(days=1), "waiting for a lid")
        with pytest.raises(TransitionError, match="phone page"):
            worker_cases.act(conn, flood, "signed_for", Actor("ops1", "operations"), topics)
        states = {r["id"]: r["status"] for r in conn.execute(
            "SELECT id, status FROM tickets WHERE id = ANY(%s)",
            ([sc.cases["elsewhere"], sc.cases["colleague"]],))}
    assert event is not None and event["to_status"] == "handled" and event["actor"] == "gw1"
    assert list(event["photos"]) == ids and len(ids) == 1
    assert request > 0
    assert set(states.values()) == {"dispatched"}  # nothing changed on the others' cases


def test_position_is_stored(sc: WorkerScenario) -> None:
    with db.connect(sc.url) as conn:
        worker_cases.record_position(conn, sc.workers["gw1"], 121.47, 31.23, sc.now)
        row = conn.execute("SELECT last_lon, last_lat, position_at FROM workers WHERE id = %s",
                           (sc.workers["gw1"],)).fetchone()
        with pytest.raises(ValueError):
            worker_cases.record_position(conn, sc.workers["gw1"], 500, 31.23, sc.now)
    assert row == {"last_lon": 121.47, "last_lat": 31.23, "position_at": sc.now}


# ---------- the callbacks, as the browser calls them ----------

@pytest.fixture
def client(sc: WorkerScenario) -> Iterator[FlaskClient]:
    from dashboards.app import create_app

    database = Database.open(sc.url, max_size=3, name="worker-page-test")
    try:
        app = create_app(database, Settings(secret_key="worker-page-key-0123456789abcdef"))
        test_client = app.server.test_client()
        assert sign_in(test_client, "gw1").status_code == 302
        yield test_client
    finally:
        database.close()


def _call(client: FlaskClient, trigger: str, inputs: list[Any], state: list[Any],
          changed: dict[str, Any]) -> str:
    """Call the callback one of whose inputs names ``trigger``, as the browser would."""
    deps = client.get("/_dash-dependencies").json
    assert isinstance(deps, list)
    dep = next(d for d in deps if any(trigger in json.dumps(i["id"]) for i in d["inputs"])
               and not d.get("clientside_function"))
    outputs = []
    for part in dep["output"].strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        outputs.append({"id": json.loads(ident) if ident.startswith("{") else ident,
                        "property": prop.split("@")[0]})
    ident = changed["id"]
    changed_id = json.dumps(ident, separators=(",", ":"), sort_keys=True) \
        if isinstance(ident, dict) else ident
    response = client.post("/_dash-update-component", json={
        "output": dep["output"], "outputs": outputs, "inputs": inputs, "state": state,
        "changedPropIds": [f"{changed_id}.{changed['property']}"]})
    assert response.status_code == 200, response.text
    return response.text


def _show(client: FlaskClient, ticket_id: int) -> str:
    response = callback(client, "wk-task-body.children",
                        [{"id": "wk-open", "property": "data", "value": ticket_id},
                         {"id": "wk-done", "property": "data", "value": 0}])
    assert response.status_code == 200, response.text
    return response.text


def _move(client: FlaskClient, ticket_id: int, to: str, note: str = "",
          photo: str | None = None) -> str:
    button = {"type": "wk-move", "to": to}
    return _call(
        client, "wk-move",
        [[{"id": button, "property": "n_clicks", "value": 1}]],
        [{"id": "wk-open", "property": "data", "value": ticket_id},
         [{"id": {"type": "wk-note", "for": "case"}, "property": "value", "value": note}],
         [{"id": {"type": "wk-upload", "for": "handled"}, "property": "contents",
           "value": photo}] if photo else [],
         [{"id": {"type": "wk-upload", "for": "handled"}, "property": "filename",
           "value": "site.jpg"}] if photo else [],
         {"id": "wk-done", "property": "data", "value": 0}],
        changed={"id": button, "property": "n_clicks"},
    )


def test_callbacks_refuse_another_cells_case(sc: WorkerScenario, client: FlaskClient) -> None:
    refused = _show(client, sc.cases["elsewhere"])
    assert "is not yours or your cell" in refused and "Street light out" not in refused
    assert "not assigned to you" in _move(client, sc.cases["elsewhere"], "signed_for")
    assert "not assigned to you" in _move(client, sc.cases["colleague"], "signed_for")
    colleague = _show(client, sc.cases["colleague"])
    assert "Read-only" in colleague and "wk-move" not in colleague
    own = _show(client, sc.cases["flood"])
    assert "Sign for" in own and "Water 230 mm deep" in own
    assert "signed for" in _move(client, sc.cases["flood"], "signed_for")
    assert "Arrived" in _show(client, sc.cases["flood"])
    assert "on site" in _move(client, sc.cases["flood"], "in_progress")
    refusal = _move(client, sc.cases["flood"], "handled", "")
    assert "Not done" in refusal and "say what was done" in refusal
    bad = "data:image/gif;base64," + base64.b64encode(b"GIF89a....").decode()
    assert "not a JPEG, PNG or WebP" in _move(client, sc.cases["flood"], "handled", "ok", bad)
    good = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    assert "Photo stored" in _move(client, sc.cases["flood"], "handled", "pumped out", good)
    water = _show(client, sc.cases["water"])
    assert "wk-water-chart" in water
    assert not [p for p in sc.personal if p and p in water]
    with db.connect(sc.url) as conn:
        status = {r["id"]: r["status"] for r in conn.execute(
            "SELECT id, status FROM tickets WHERE id = ANY(%s)", (list(sc.cases.values()),))}
    assert status[sc.cases["flood"]] == "handled"
    assert status[sc.cases["elsewhere"]] == status[sc.cases["colleague"]] == "dispatched"


# ---------- photos and pictures ----------





def test_callbacks_ask_for_time_and_file_a_patrol_report(sc: WorkerScenario,
                                                          client: FlaskClient) -> None:
    def ask(ticket_id: int, due: str, reason: str) -> str:
        return _call(client, "wk-post-send",
                     [{"id": "wk-post-send", "property": "n_clicks", "value": 1}],
                     [{"id": "wk-open", "property": "data", "value": ticket_id},
                      {"id": "wk-post-due", "property": "value", "value": due},
                      {"id": "wk-post-reason", "property": "value", "value": reason},
                      {"id": "wk-done", "property": "data", "value": 0}],
                     {"id": "wk-post-send", "property": "n_clicks"})

    later = (sc.now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert "not assigned to you" in ask(sc.cases["elsewhere"], later, "crane needed")
    assert "signed for" in _move(client, sc.cases["manhole"], "signed_for")
    assert "say why" in ask(sc.cases["manhole"], later, " ")
    assert "more time asked" in ask(sc.cases["manhole"], later, "waiting for a new lid")

    def report(category: str | None, pos: dict[str, Any] | None, note: str,
               fixed: list[str]) -> str:
        upload = {"type": "wk-upload", "for": "report"}
        return _call(client, "wk-rep-send",
                     [{"id": "wk-rep-send", "property": "n_clicks", "value": 1}],
                     [{"id": "wk-rep-cat", "property": "value", "value": category},
                      {"id": "wk-rep-pos", "property": "data", "value": pos},
                      {"id": "wk-rep-note", "property": "value", "value": note},
                      {"id": "wk-rep-fixed", "property": "value", "value": fixed},
                      {"id": upload, "property": "contents", "value": None},
                      {"id": upload, "property": "filename", "value": None},
                      {"id": "wk-done", "property": "data", "value": 0}],
                     {"id": "wk-rep-send", "property": "n_clicks"})

    lon, lat = sc.centroid_x
    here = {"lon": lon, "lat": lat, "source": "map"}
    assert "choose what the problem is" in report(None, here, "", [])
    assert "choose the place" in report("E0101", None, "", [])
    assert "outside every grid cell" in report("E0101", {"lon": 0.0, "lat": 0.0}, "", [])
    assert "say what you did" in report("E0101", here, "", ["fixed"])
    assert "filed and closed as fixed on the spot" in report("E0101", here, "bin emptied",
                                                             ["fixed"])
    with db.connect(sc.url) as conn:
        case = conn.execute("SELECT source, status, fixed_on_spot, reported_by, grid_code"
                            " FROM tickets WHERE source = 'patrol' AND reported_by = 'gw1'"
                            ).fetchone()
    assert case == {"source": "patrol", "status": "closed", "fixed_on_spot": True,
                    "reported_by": "gw1", "grid_code": sc.cell_x}
