"""The household page ``/needs/household/<id>`` and its decisions, on a real database with the
synthetic district scored by ``cityops needs score``, through Flask's test client: what it shows
(and never shows), the audit of every view and decision, refused input, refused roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from click.testing import CliRunner
from dash import Dash
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.cli.main import cli
from cityops.needs import household as needs_household
from cityops.needs import labels
from cityops.needs.indicators import load_indicator_set
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from tests.integration.web_client import callback, route, sign_in

pytestmark = pytest.mark.integration

SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                     flood_gauges=2, manhole_covers=2, cameras=2)
PASSWORD = "correct-horse-1"
SETTINGS = Settings(secret_key="needs-household-test-key-0123456789")
WARNING = ("Past decisions show who was served, not who was in need: the model is a second"
           " opinion, the index is the primary score.")


@dataclass
class Web:
    app: Dash
    url: str
    identified: str   # the household with the highest c
    decided: str      # a household with a past decision

    def client(self, username: str | None = None) -> FlaskClient:
        client = self.app.server.test_client()
        if username:
            assert sign_in(client, username, PASSWORD).status_code == 302
        return client


@pytest.fixture
def web(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(2, SMALL))
        worker = conn.execute("SELECT id FROM workers ORDER BY id LIMIT 1").fetchone()["id"]
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
        users.create_user(conn, "gw1", "Gao Worker", "grid_worker", PASSWORD, worker_id=worker)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    result = CliRunner().invoke(cli, ["needs", "score"])
    assert result.exit_code == 0, result.output
    with db.connect(db_url) as conn:
        identified = conn.execute(
            "SELECT household_id FROM needs_assessments WHERE identified"
            " ORDER BY score_num::float / score_den DESC, household_id LIMIT 1").fetchone()
        decided = conn.execute("SELECT household_id FROM needs_decisions"
                               " ORDER BY household_id LIMIT 1").fetchone()
    assert identified is not None and decided is not None
    database = Database.open(db_url, max_size=4, name="needs-household-test")
    try:
        yield Web(create_app(database, SETTINGS), db_url, identified["household_id"],
                  decided["household_id"])
    finally:
        database.close()


def dumped(value: Any) -> str:
    """A callback's answer as text, non-ASCII kept (m², ≥)."""
    return json.dumps(value, ensure_ascii=False)


def page(client: FlaskClient, household_id: str) -> str:
    response = route(client, f"/needs/household/{household_id}")
    assert response.status_code == 200
    return dumped(response.json["response"])


def decide(client: FlaskClient, household_id: str, decision: str | None, reason: str | None,
           programme: str | None = None) -> TestResponse:
    return callback(client, "nh-msg.children",
                    [{"id": "nh-record", "property": "n_clicks", "value": 1}],
                    [{"id": "nh-decision", "property": "value", "value": decision},
                     {"id": "nh-programme", "property": "value", "value": programme},
                     {"id": "nh-reason", "property": "value", "value": reason},
                     {"id": "nh-id", "property": "data", "value": household_id}])


def counts(url: str, household_id: str) -> tuple[int, int, int]:
    """Decisions of the household, decision audit rows, view audit rows."""
    with db.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM needs_decisions WHERE household_id = %(h)s) AS d,"
            " (SELECT count(*) FROM audit_log WHERE action = 'needs_decision'"
            "  AND subject = 'household ' || %(h)s) AS a,"
            " (SELECT count(*) FROM audit_log WHERE action = 'view'"
            "  AND subject = 'household ' || %(h)s) AS v", {"h": household_id}).fetchone()
    return row["d"], row["a"], row["v"]


def test_the_page_shows_deprivations_and_decisions_and_audits_each_view(web: Web) -> None:
    indicator_set = load_indicator_set()
    civil = web.client("civil1")
    with db.connect(web.url) as conn:
        profile = conn.execute("SELECT * FROM household_profiles WHERE household_id = %s",
                               (web.identified,)).fetchone()
        stored = conn.execute("SELECT score_num, score_den FROM needs_assessments"
                              " WHERE household_id = %s", (web.identified,)).fetchone()
    assert counts(web.url, web.identified)[2] == 0
    text = page(civil, web.identified)
    deprived = [ind for ind, on in zip(indicator_set.indicators, profile["indicators"],
                                       strict=True) if on]
    assert deprived
    for ind in deprived:  # plain words, each with its exact weight
        assert ind.label in text
    assert f"weight {deprived[0].weight}" in text
    c = Fraction(stored["score_num"], stored["score_den"])
    assert f"c = {c}" in text and "In hardship: identified" in text
    assert WARNING in text
    for label in indicator_set.dimension_labels.values():
        assert label in text
    # the protected attributes are never on the page
    assert "hukou" not in text.lower() and "ethnicity" not in text.lower()
    assert profile["head_age_band"] not in text
    assert counts(web.url, web.identified)[2] == 1

    refreshed = callback(civil, "nh-body.children",
                         [{"id": "nh-refresh", "property": "n_clicks", "value": 1}],
                         [{"id": "nh-id", "property": "data", "value": web.identified}])
    assert refreshed.status_code == 200
    with db.connect(web.url) as conn:
        views = conn.execute("SELECT username, details FROM audit_log WHERE action = 'view'"
                             " AND subject = %s", (f"household {web.identified}",)).fetchall()
    assert [v["username"] for v in views] == ["civil1", "civil1"]

    with db.connect(web.url) as conn:
        past = conn.execute("SELECT decision, reason FROM needs_decisions"
                            " WHERE household_id = %s", (web.decided,)).fetchall()
    text = page(civil, web.decided)
    for d in past:
        assert d["reason"] in text and labels.DECISIONS[d["decision"]] in text

    missing = page(civil, "H99999999")
    assert "No such household" in missing and "/needs" in missing
    assert counts(web.url, "H99999999") == (0, 0, 0)


def test_each_decision_kind_is_recorded_with_its_reason_and_audited(web: Web) -> None:
    civil = web.client("civil1")
    hid = web.identified
    before = counts(web.url, hid)
    cases = [("visit_scheduled", "Visit booked for Tuesday morning", None),
             ("visited_helped", "  Visited: fridge empty, food parcel given  ", "care_visit"),
             ("declined", "Income above the limit after the new job", None),
             ("approved", "Income below dibao, no assets, illness", "dibao")]
    for n, (decision, reason, programme) in enumerate(cases, start=1):
        response = decide(civil, hid, decision, reason, programme)
        assert response.status_code == 200
        out = dumped(response.json["response"])
        assert "Recorded: " + labels.DECISIONS[decision] in out
        assert reason.strip() in out  # the refreshed history shows it
        assert response.json["response"]["nh-reason"]["value"] == ""
        assert counts(web.url, hid)[:2] == (before[0] + n, before[1] + n)
    with db.connect(web.url) as conn:
        rows = conn.execute("SELECT by, decision, programme, reason FROM needs_decisions"
                            " WHERE household_id = %s AND by = 'civil1' ORDER BY id",
                            (hid,)).fetchall()
        audit = conn.execute("SELECT username, details FROM audit_log"
                             " WHERE action = 'needs_decision' ORDER BY id").fetchall()
    assert [(r["decision"], r["reason"], r["programme"]) for r in rows] == [
        (d, r.strip(), p) for d, r, p in cases]
    assert [a["details"]["decision"] for a in audit] == [d for d, _, _ in cases]
    assert {a["username"] for a in audit} == {"civil1"}
    text = page(civil, hid)  # newest first
    assert text.index("Income below dibao, no assets") < text.index("Visit booked for Tuesday")


def test_an_approval_starts_the_assistance_and_the_rules_stop_asking(web: Web) -> None:
    from cityops.needs.rules import LOW_INCOME_EDGE, run_rules

    with db.connect(web.url) as conn:
        edge = conn.execute(
            "SELECT p.household_id FROM household_profiles p WHERE p.income_per_capita_month"
            " < 2130 AND NOT EXISTS (SELECT 1 FROM assistance a"
            " WHERE a.household_id = p.household_id) ORDER BY 1 LIMIT 1").fetchone()
        assert edge is not None, "the synthetic district should have a low-income edge household"
        hid = edge["household_id"]
        run_rules(conn, datetime.now(UTC), [LOW_INCOME_EDGE])
        conn.execute("UPDATE review_tasks SET status = 'done', done_by = 'civil1',"
                     " done_at = now(), note = 'applied' WHERE household_id = %s", (hid,))
    civil = web.client("civil1")
    out = dumped(decide(civil, hid, "visit_scheduled", "Visit to check the income", None).json)
    assert "Recorded: " in out
    with db.connect(web.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM assistance WHERE household_id = %s",
                            (hid,)).fetchone()["n"] == 0  # a visit grants nothing
    decide(civil, hid, "approved", "Income checked: under 1.5 times dibao", "low_income")
    decide(civil, hid, "approved", "Approved again after the review", "low_income")
    with db.connect(web.url) as conn:
        received = conn.execute("SELECT programme, since FROM assistance WHERE household_id"
                                " = %s", (hid,)).fetchall()
        conn.execute("UPDATE household_profiles SET income_per_capita_month ="
                     " income_per_capita_month - 1 WHERE household_id = %s", (hid,))
        summary = run_rules(conn, datetime.now(UTC), [LOW_INCOME_EDGE])
        reopened = conn.execute("SELECT count(*) AS n FROM review_tasks WHERE household_id = %s"
                                " AND status = 'open'", (hid,)).fetchone()["n"]
    assert [r["programme"] for r in received] == ["low_income"]  # once, however often approved
    assert received[0]["since"] == datetime.now(SETTINGS.tz).date()
    assert reopened == 0, summary  # new facts, but the household is served now
    assert "Assistance now" in page(civil, hid) and "since" in page(civil, hid)


@pytest.mark.parametrize(("decision", "reason", "programme", "message"), [
    ("declined", None, None, "Write the reason"),
    ("declined", "   ", None, "Write the reason"),
    ("declined", "no", None, "too short"),
    ("approved", "Income below dibao", None, "Choose the programme"),
    ("declined", "Income above the limit", "dibao", "clear the programme"),
    ("approved", "Income below dibao", "free_money", "is not a programme"),
    ("maybe", "Income below dibao", None, "Choose a decision"),
    (None, "Income below dibao", None, "Choose a decision"),
])
def test_bad_input_is_refused_and_nothing_written(web: Web, decision: str | None,
                                                  reason: str | None, programme: str | None,
                                                  message: str) -> None:
    civil = web.client("civil1")
    before = counts(web.url, web.identified)
    response = decide(civil, web.identified, decision, reason, programme)
    assert response.status_code == 200
    out = response.json["response"]
    assert message in dumped(out["nh-msg"]) and "Not recorded" in dumped(out["nh-msg"])
    assert "nh-reason" not in out  # the user's input stays
    assert counts(web.url, web.identified) == before
    with db.connect(web.url) as conn, pytest.raises(needs_household.DecisionError,
                                                    match=message):
        needs_household.record_decision(conn, web.identified, decision, reason, "civil1",
                                        programme, now=datetime.now(UTC))
    assert counts(web.url, web.identified) == before


def test_unknown_household_is_refused(web: Web) -> None:
    civil = web.client("civil1")
    response = decide(civil, "H99999999", "declined", "Income above the limit")
    assert response.status_code == 200
    assert "There is no household" in dumped(response.json["response"]["nh-msg"])
    with db.connect(web.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM needs_decisions WHERE household_id ="
                            " 'H99999999'").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM audit_log WHERE action ="
                            " 'needs_decision'").fetchone()["n"] == 0


def test_the_programme_field_follows_the_decision(web: Web) -> None:
    civil = web.client("civil1")
    for decision, disabled in (("approved", False), ("visited_helped", False),
                               ("declined", True), ("visit_scheduled", True)):
        response = callback(civil, "nh-programme.disabled",
                            [{"id": "nh-decision", "property": "value", "value": decision}])
        out = response.json["response"]["nh-programme"]
        assert out["disabled"] is disabled
        assert ("value" in out and out["value"] is None) is disabled


def test_other_roles_and_anonymous_are_refused(web: Web) -> None:
    path = f"/needs/household/{web.identified}"
    before = counts(web.url, web.identified)
    for username in ("ops1", "gw1"):
        client = web.client(username)
        assert client.get(path).status_code == 403
        assert "not for your role" in dumped(route(client, path).json["response"])
        assert decide(client, web.identified, "approved", "Income below dibao",
                      "dibao").status_code == 403
        refresh = callback(client, "nh-body.children",
                           [{"id": "nh-refresh", "property": "n_clicks", "value": 1}],
                           [{"id": "nh-id", "property": "data", "value": web.identified}])
        assert refresh.status_code == 403
    anonymous = web.client()
    response = anonymous.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert anonymous.post("/_dash-update-component", json={}).status_code == 401
    assert counts(web.url, web.identified) == before


def test_a_profile_on_another_indicator_set_says_so(web: Web) -> None:
    with db.connect(web.url) as conn:
        conn.execute("UPDATE household_profiles SET indicator_set_version = '2025-01-01'"
                     " WHERE household_id = %s", (web.identified,))
        case = needs_household.household_case(conn, web.identified)
    assert case is not None and case.profile is not None
    assert case.profile.version_note is not None
    assert "2025-01-01" in case.profile.version_note
    assert "Re-import" in page(web.client("civil1"), web.identified)
