"""The civil-affairs review list ``/needs``, the second-look queue ``/needs/second-look`` and the
export ``/needs/export.csv|xlsx``, through Flask's test client on a real database: a small
synthetic district scored by ``cityops needs score``, plus crafted assessments at the band
boundaries (c = k, c = 1/2 in two denominators). Every expectation is computed in Python with
Fractions from the raw rows, independently of the SQL under test."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.cli.main import cli
from cityops.needs.indicators import load_indicator_set
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from dashboards.pages.needs_review import MODEL_WARNING, ROWS
from tests.integration.scenario import PASSWORD
from tests.integration.web_client import callback, route, sign_in

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                     flood_gauges=2, manhole_covers=2, cameras=2)
INDEX_ONLY = "identified by the index, but the model gives a low probability"


@dataclass
class Web:
    url: str
    client: Callable[[], FlaskClient]


@pytest.fixture
def web(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(2, SMALL))
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    database = Database.open(db_url, max_size=4, name="needs-review-test")
    app = create_app(database, Settings(secret_key="needs-review-test-key-0123456789"))
    try:
        yield Web(db_url, app.server.test_client)
    finally:
        database.close()


def score_and_craft(url: str) -> dict[str, str]:
    """Score the district, then give six households a newer, crafted assessment at the band
    boundaries (k = 1/3, 1/2), one in another denominator, one flagged index-only."""
    result = CliRunner().invoke(cli, ["needs", "score", "--high", "0.5", "--low", "0.1"])
    assert result.exit_code == 0, result.output
    with db.connect(url) as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM households ORDER BY id LIMIT 6")]
        crafted = {  # name: (household, num, den, identified, probability, second look)
            "at_k": (ids[0], 28, 84, True, 0.3, None),          # c = k exactly: medium
            "below_k": (ids[1], 27, 84, False, 0.3, None),      # just below k: low
            "half": (ids[2], 42, 84, True, 0.2, None),          # c = 1/2 exactly: high
            "below_half": (ids[3], 41, 84, True, 0.3, None),    # medium
            "half_other_den": (ids[4], 1, 2, True, 0.9, None),  # = 1/2 too, ranks above "half"
            "index_only": (ids[5], 30, 84, True, 0.05, INDEX_ONLY),
        }
        # an older assessment of "half" than the crafted one: never shown
        conn.execute("INSERT INTO needs_assessments (household_id, at, indicator_set_version,"
                     " score_num, score_den, identified, details) VALUES (%s,"
                     " now() + interval '30 seconds', '2026-11-22', 84, 84, true,"
                     " '{\"k\": \"1/3\", \"deprived\": [], \"second_look\": null}')", (ids[2],))
        for hid, num, den, identified, prob, look in crafted.values():
            details = {"k": "1/3", "deprived": ["income_below_dibao", "housing_unsafe"],
                       "second_look": look}
            conn.execute(
                "INSERT INTO needs_assessments (household_id, at, indicator_set_version,"
                " score_num, score_den, identified, model_probability, details)"
                " VALUES (%s, now() + interval '1 minute', %s, %s, %s, %s, %s, %s)",
                (hid, "2026-11-22" if den == 84 else "test-old", num, den, identified, prob,
                 json.dumps(details)))
    return {name: v[0] for name, v in crafted.items()}


@dataclass(frozen=True)
class Expected:
    household_id: str
    community: str
    household_type: str
    c: Fraction
    band: str
    probability: float | None
    look: str | None  # "index_only" / "model_only"


def expected_rows(url: str) -> list[Expected]:
    """Every household's latest assessment, ranked, computed in Python from the raw tables."""
    with db.connect(url) as conn:
        assessments = conn.execute("SELECT * FROM needs_assessments").fetchall()
        homes = {r["id"]: r["community_code"] for r in conn.execute(
            "SELECT id, community_code FROM households")}
        types = {r["household_id"]: r["household_type"] for r in conn.execute(
            "SELECT household_id, household_type FROM household_profiles")}
    latest: dict[str, dict[str, Any]] = {}
    for a in assessments:
        held = latest.get(a["household_id"])
        if held is None or (a["at"], a["id"]) > (held["at"], held["id"]):
            latest[a["household_id"]] = a
    rows = []
    for hid, a in latest.items():
        c, k = Fraction(a["score_num"], a["score_den"]), Fraction(a["details"]["k"])
        assert a["identified"] == (c >= k)
        band = "high" if c >= k and c >= Fraction(1, 2) else "medium" if c >= k else "low"
        look = None if a["details"]["second_look"] is None else (
            "index_only" if a["identified"] else "model_only")
        rows.append(Expected(hid, homes[hid], types[hid], c, band, a["model_probability"], look))
    rows.sort(key=lambda e: (-e.c, e.probability is None, -(e.probability or 0.0),
                             e.household_id))
    return rows


def find(tree: Any, ident: str) -> Any:
    """The component with this id in a Dash JSON tree."""
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == ident:
            return tree
        return next((f for v in tree.values() if (f := find(v, ident)) is not None), None)
    if isinstance(tree, list):
        return next((f for v in tree if (f := find(v, ident)) is not None), None)
    return None


def household_links(tree: Any) -> list[str]:
    """The households linked from a tree, in order."""
    found: list[str] = []
    if isinstance(tree, dict):
        href = tree.get("props", {}).get("href") if isinstance(tree.get("props"), dict) else None
        if isinstance(href, str) and href.startswith("/needs/household/"):
            found.append(href.removeprefix("/needs/household/"))
        for v in tree.values():
            found += household_links(v)
    elif isinstance(tree, list):
        for v in tree:
            found += household_links(v)
    return found


def refresh_list(client: FlaskClient, street: str | None = None, community: str | None = None,
                 household_type: str | None = None, band: str | None = None,
                 changed: str = "needs-refresh", offset: int = 0) -> TestResponse:
    values = {"needs-street": street, "needs-community": community, "needs-type": household_type,
              "needs-band": band, "needs-refresh": 1, "needs-prev": None, "needs-next": None}
    inputs = [{"id": k, "property": "n_clicks" if k.endswith(("refresh", "prev", "next"))
               else "value", "value": v} for k, v in values.items()]
    return callback(client, "needs-table", inputs,
                    [{"id": "needs-offset", "property": "data", "value": offset}],
                    changed=next(i for i in inputs if i["id"] == changed))


def export(client: FlaskClient, fmt: str, **query: str) -> TestResponse:
    return client.get(f"/needs/export.{fmt}", query_string=query)


def csv_ids(response: TestResponse) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def audits(url: str, action: str) -> list[dict[str, Any]]:
    with db.connect(url) as conn:
        return conn.execute("SELECT username, subject, details FROM audit_log WHERE action = %s"
                            " ORDER BY id", (action,)).fetchall()


def test_no_assessment_yet_and_who_may_see(web: Web) -> None:
    anonymous, ops, civil = web.client(), web.client(), web.client()
    sign_in(ops, "ops1")
    sign_in(civil, "civil1")
    page = json.dumps(route(civil, "/needs").json)
    assert "cityops needs score" in page and "No household has been assessed yet" in page
    assert "cityops needs score" in json.dumps(route(civil, "/needs/second-look").json)
    assert audits(web.url, "view") == []  # nothing shown, nothing to record

    for path in ("/needs", "/needs/second-look", "/needs/export.csv", "/needs/export.xlsx"):
        response = anonymous.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith(
            "/login?next=")
        assert ops.get(path).status_code == 403, path
    assert anonymous.post("/_dash-update-component", json={}).status_code == 401
    for path in ("/needs", "/needs/second-look"):
        refused = json.dumps(route(ops, path).json)
        assert "not for your role" in refused and "No household" not in refused
    assert "not for your role" in ops.get("/needs/export.csv").text
    assert refresh_list(ops).status_code == 403
    assert audits(web.url, "export") == []


def test_ranking_filters_and_band_boundaries(web: Web) -> None:
    crafted = score_and_craft(web.url)
    expected = expected_rows(web.url)
    civil = web.client()
    sign_in(civil, "civil1")
    layout = route(civil, "/needs").json
    text = json.dumps(layout)
    assert MODEL_WARNING in text and "Export all matching" in text
    shown = household_links(find(layout, "needs-table"))
    assert shown == [e.household_id for e in expected[:ROWS]]
    identified = sum(e.band != "low" for e in expected)
    assert f"{len(expected):,} households match; {identified:,} of them identified" in text
    # the crafted boundaries, and equal c in two denominators ranked by the model's probability
    bands = {e.household_id: e.band for e in expected}
    assert [bands[crafted[n]] for n in ("at_k", "below_k", "half", "below_half",
                                        "half_other_den")] == ["medium", "low", "high",
                                                               "medium", "high"]
    order = [e.household_id for e in expected]
    assert order.index(crafted["half_other_den"]) + 1 == order.index(crafted["half"])
    assert order.index(crafted["half"]) < order.index(crafted["below_half"]) < order.index(
        crafted["at_k"]) < order.index(crafted["below_k"])
    assert shown.index(crafted["half_other_den"]) == 0  # c = 1/2 is the top of this district

    # the next page continues the ranking
    second = refresh_list(civil, changed="needs-next")
    assert household_links(second.json["response"]["needs-table"]) == order[ROWS:2 * ROWS]
    assert second.json["response"]["needs-offset"]["data"] == ROWS

    with db.connect(web.url) as conn:
        street = conn.execute("SELECT code FROM grids WHERE level = 'street'"
                              " ORDER BY code DESC LIMIT 1").fetchone()["code"]
        community = conn.execute("SELECT community_code FROM households WHERE id = %s",
                                 (crafted["at_k"],)).fetchone()["community_code"]
    cases: list[tuple[dict[str, str], Callable[[Expected], bool]]] = [
        ({"street": street}, lambda e: e.community[:9] == street[:9]),
        ({"community": community}, lambda e: e.community == community),
        ({"household_type": "elderly_alone"}, lambda e: e.household_type == "elderly_alone"),
        ({"band": "high"}, lambda e: e.band == "high"),
        ({"band": "medium"}, lambda e: e.band == "medium"),
        ({"band": "low"}, lambda e: e.band == "low"),
        ({"street": street, "household_type": "family", "band": "low"},
         lambda e: e.community[:9] == street[:9] and e.household_type == "family"
         and e.band == "low"),
    ]
    for given, keep in cases:
        want = [e.household_id for e in expected if keep(e)]
        response = refresh_list(civil, changed="needs-band", **given)
        assert response.status_code == 200
        got = response.json["response"]
        assert household_links(got["needs-table"]) == want[:ROWS], given
        assert f"{len(want):,} households match" in json.dumps(got["needs-summary"]), given
        query = {"type" if k == "household_type" else k: v for k, v in given.items()}
        assert f"/needs/export.csv?{'&'.join(f'{k}={v}' for k, v in query.items())}" in (
            json.dumps(got["needs-exports"]))
        assert [r[1] for r in csv_ids(export(civil, "csv", **query))[1:]] == want, given
    assert {crafted["at_k"], crafted["below_half"]} <= {
        e.household_id for e in expected if e.band == "medium"}

    # the community list follows the street
    follow = callback(civil, "needs-community.options",
                      [{"id": "needs-street", "property": "value", "value": street}],
                      [{"id": "needs-community", "property": "value", "value": community}])
    options = follow.json["response"]["needs-community"]
    assert options["options"] and all(o["value"][:9] == street[:9] for o in options["options"])
    assert options["value"] == (community if community[:9] == street[:9] else None)

    refused = refresh_list(civil, band="severe", changed="needs-band").json["response"]
    assert "band must be one of high, medium, low" in json.dumps(refused["needs-table"])
    views = audits(web.url, "view")
    assert views[0]["username"] == "civil1" and views[0]["subject"] == "needs.review_list"
    assert views[0]["details"]["households"] == shown
    assert len(views) == 2 + len(cases)
    assert views[-1]["details"]["filters"] == {"street": street, "household_type": "family",
                                               "band": "low"}


def test_second_look_lists_exactly_the_flagged(web: Web) -> None:
    crafted = score_and_craft(web.url)
    expected = expected_rows(web.url)
    civil = web.client()
    sign_in(civil, "civil1")
    layout = route(civil, "/needs/second-look").json
    assert MODEL_WARNING in json.dumps(layout)
    for kind in ("index_only", "model_only"):
        want = [e.household_id for e in expected if e.look == kind]
        section = find(layout, f"look-{kind}")
        assert household_links(section) == want[:100], kind
        assert f": {len(want):,}" in json.dumps(section)
        exported = csv_ids(export(civil, "csv", second_look=kind))
        assert [r[1] for r in exported[1:]] == want
    assert next(e.household_id for e in expected if e.look == "index_only") == crafted[
        "index_only"]
    assert "never reached" in json.dumps(find(layout, "look-index_only"))
    assert "needs the indicators miss" in json.dumps(find(layout, "look-model_only"))
    street = expected[0].community[:9] + "000000"
    narrowed = callback(civil, "look-content", [
        {"id": "look-street", "property": "value", "value": street},
        {"id": "look-community", "property": "value", "value": None},
        {"id": "look-type", "property": "value", "value": None},
        {"id": "look-refresh", "property": "n_clicks", "value": None}])
    got = narrowed.json["response"]["look-content"]["children"]
    want = [e.household_id for e in expected
            if e.look == "model_only" and e.community[:9] == street[:9]]
    assert household_links(find(got, "look-model_only")) == want[:100]
    views = audits(web.url, "view")
    assert [v["subject"] for v in views] == ["needs.second_look"] * 2
    assert views[1]["details"]["filters"] == {"street": street}


def test_export_matches_the_list_and_is_audited(web: Web) -> None:
    crafted = score_and_craft(web.url)
    expected = expected_rows(web.url)
    civil, ops = web.client(), web.client()
    sign_in(civil, "civil1")
    sign_in(ops, "ops1")
    rows = csv_ids(export(civil, "csv", band="medium"))
    header, body = rows[0], rows[1:]
    want = [e for e in expected if e.band == "medium"]
    assert [r[1] for r in body] == [e.household_id for e in want]
    col = {name: i for i, name in enumerate(header)}
    for line, e in zip(body, want, strict=True):
        assert Fraction(int(line[col["c_numerator"]]), int(line[col["c_denominator"]])) == e.c
        assert line[col["band"]] == "medium" and line[col["identified"]] == "yes"
        assert line[col["deprivations"]] and not line[col["deprivations"]].startswith("not")
    at_k = next(line for line in body if line[1] == crafted["at_k"])
    labels = load_indicator_set().labels
    assert at_k[col["deprivations"]] == (
        f"{labels['income_below_dibao']}; {labels['housing_unsafe']}")
    assert (at_k[col["c_percent"]], at_k[col["k"]]) == ("33.3", "1/3")
    low = csv_ids(export(civil, "csv", band="low", community=""))
    below_k = next(line for line in low if line[1] == crafted["below_k"])
    assert below_k[col["deprivations"]] == (
        "not identified: 2 deprivations, together below the cutoff k = 1/3")
    response = export(civil, "xlsx", band="medium")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=True))
    assert len(cells) == len(rows)
    for got_row, csv_row in zip(cells, rows, strict=True):  # the same values, typed in Excel
        assert [float(t) if isinstance(v, (int, float)) else t for v, t in zip(
            got_row, csv_row, strict=True)] == [
            v if isinstance(v, (int, float)) else "" if v is None else v for v in got_row]
    page = refresh_list(civil, band="medium", changed="needs-band").json["response"]
    assert household_links(page["needs-table"]) == [r[1] for r in body][:ROWS]

    bad = export(civil, "csv", band="severe")
    assert bad.status_code == 400 and "band must be one of" in bad.text
    assert export(ops, "csv").status_code == 403
    assert export(civil, "pdf").status_code == 404
    exports = audits(web.url, "export")
    assert [(a["username"], a["subject"], a["details"]["format"]) for a in exports] == [
        ("civil1", "needs.review_list", fmt) for fmt in ("csv", "csv", "xlsx")]
    assert [a["details"]["filters"] for a in exports] == [{"band": "medium"}, {"band": "low"},
                                                          {"band": "medium"}]
    assert exports[0]["details"]["households"] == [e.household_id for e in want]
