"""Review tasks of the needs rules (cityops.needs.tasks and the page /needs/tasks): listing with
plain words, closing, auditing and roles, on a small synthetic district in the real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from dash import Dash
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.cli.main import cli
from cityops.needs.rules import ALL, run_rules
from cityops.needs.tasks import (
    TaskClosedError,
    TaskError,
    close_task,
    task_counts,
    view_tasks,
)
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.simulation.district import generate_district, load_district
from dashboards.app import create_app
from tests.integration.scenario import PASSWORD
from tests.integration.test_needs_rules import SMALL, set_household
from tests.integration.web_client import callback, route, sign_in

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class District:
    url: str
    h: dict[str, str]      # role in the test -> household id


@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch) -> District:
    """Seed-5 small district, four households set by hand (one per rule), users, rules run."""
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(5, SMALL))
        conn.execute("DELETE FROM alerts")
        hs = [r["id"] for r in conn.execute("SELECT id FROM households ORDER BY id DESC")]
        h = dict(zip(["old", "low", "med", "care"], hs, strict=False))
        set_household(conn, h["old"], birth_year=NOW.year - 84, age_band="80+",
                      assistance=("dibao",))
        set_household(conn, h["low"], income="1980")
        set_household(conn, h["med"], medical=0.42, assistance=("temporary_assistance",))
        set_household(conn, h["care"], birth_year=1950, alone=True, htype="elderly_alone",
                      age_band="60-79", assistance=("old_age_allowance",))
        conn.execute("INSERT INTO devices (id, kind, household_id, grid_code, lon, lat, label)"
                     " SELECT 'WT-care', 'water_meter', id, community_code, lon, lat, 'meter'"
                     " FROM households WHERE id = %s", (h["care"],))
        for kind, status, days in (("water_silence", "open", 2), ("water_running", "acknowledged",
                                                                  5), ("water_silence",
                                                                       "resolved", 9)):
            seen = NOW - timedelta(days=days)
            conn.execute("INSERT INTO alerts (source_id, kind, severity, status, message,"
                         " first_seen, last_seen) VALUES ('WT-care', %s, 'medium', %s, 'x',"
                         " %s, %s)", (kind, status, seen, seen))
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "civil2", "Chen Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
        worker = conn.execute("SELECT id FROM workers ORDER BY id LIMIT 1").fetchone()["id"]
        users.create_user(conn, "gw1", "Gao Worker", "grid_worker", PASSWORD, worker_id=worker)
        run_rules(conn, NOW)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return District(db_url, h)


def task_of(conn: Any, household: str, rule: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM review_tasks WHERE household_id = %s AND rule_id = %s",
                       (household, rule)).fetchone()
    assert row is not None, (household, rule)
    return row


def audit_rows(conn: Any) -> list[dict[str, Any]]:
    return conn.execute("SELECT username, action, subject, details FROM audit_log"
                        " WHERE action <> 'sign_in' ORDER BY id").fetchall()


def test_counts_per_rule_and_the_list_match_review_tasks(district: District) -> None:
    with db.connect(district.url) as conn:
        expected = {r["rule_id"]: r["n"] for r in conn.execute(
            "SELECT rule_id, count(*) AS n FROM review_tasks GROUP BY 1")}
        counts = task_counts(conn)
        assert [c.rule_id for c in counts] == [r.id for r in ALL]
        assert {c.rule_id: c.open for c in counts if c.open} == expected
        assert all(c.done == c.dismissed == 0 for c in counts)
        assert all(expected.get(r.id) for r in ALL)   # every rule has tasks here

        view = view_tasks(conn, "civil1")
        assert view.total == sum(expected.values()) == len(view.tasks) == view.open_total()
        order = [(t.fired_at, t.id) for t in view.tasks]
        assert order == sorted(order, reverse=True)       # newest first
        care = view_tasks(conn, "civil1", rule_id="care_visit", limit=5)
        assert [t.household_id for t in care.tasks] == [district.h["care"]]
        assert care.tasks[0].community.endswith(tuple("0123456789"))
        small = view_tasks(conn, "civil1", limit=3)
        assert len(small.tasks) == 3 and small.total == view.total
        assert view_tasks(conn, "civil1", status="done").tasks == ()
        with pytest.raises(TaskError, match="status must be one of"):
            view_tasks(conn, "civil1", status="closed")
        audit = audit_rows(conn)
    assert [(a["username"], a["action"], a["subject"]) for a in audit] == [
        ("civil1", "view", "review_tasks")] * 4
    assert audit[0]["details"]["tasks"] == [t.id for t in view.tasks]
    assert audit[1]["details"] == {"rule": "care_visit", "status": "open",
                                   "tasks": [care.tasks[0].id],
                                   "households": [district.h["care"]]}


def test_each_rule_in_plain_words(district: District) -> None:
    h = district.h
    with db.connect(district.url) as conn:
        tasks = {t.household_id + "/" + t.rule_id: t for t in view_tasks(conn, "civil1").tasks}
    old = tasks[h["old"] + "/old_age_allowance"]
    assert old.fired_by == (f"age 84 (born {NOW.year - 84}), no old-age allowance; receives "
                            "minimum living standard (dibao)")
    assert old.title == "Aged 80 or over without the old-age allowance"
    assert old.rule_version == "1" and "80 or older" in old.explanation
    assert old.data["age"] == 84 and old.head_name and old.address
    assert tasks[h["low"] + "/low_income_edge"].fired_by == (
        "income 1,980 CNY per person per month, under 1.5 × 1,420 = 2,130; no assistance")
    assert tasks[h["med"] + "/expenditure_hardship"].fired_by == (
        "medical spending 42 % of income (limit 30 %); receives temporary assistance")
    care = tasks[h["care"] + "/care_visit"]
    assert care.fired_by == ("3 water-use alerts in 30 days (2 still open): water running for "
                             "hours, no water use; elderly person living alone")
    assert care.data["water_alerts_30_days"] == 3 and len(care.data["alert_ids"]) == 3




def test_close_done_and_dismiss_are_audited_and_not_reopened(district: District) -> None:
    h = district.h
    later = NOW + timedelta(minutes=5)
    with db.connect(district.url) as conn:
        low = task_of(conn, h["low"], "low_income_edge")["id"]
        care = task_of(conn, h["care"], "care_visit")["id"]
        done = close_task(conn, low, "done", "  Helped them apply for dibao on 22 Nov.  ",
                          "civil1", later)
        assert (done.id, done.status, done.done_by, done.done_at, done.note) == (
            low, "done", "civil1", later, "Helped them apply for dibao on 22 Nov.")
        gone = close_task(conn, care, "dismissed", "Daughter moved in last week.", "civil2",
                          later)
        assert gone.status == "dismissed" and gone.household_id == h["care"]
        counts = {c.rule_id: c for c in task_counts(conn)}
        assert (counts["low_income_edge"].done, counts["care_visit"].dismissed) == (1, 1)
        audit = audit_rows(conn)
        assert [(a["username"], a["action"], a["subject"]) for a in audit] == [
            ("civil1", "task_done", f"review_task {low}"),
            ("civil2", "task_dismissed", f"review_task {care}")]
        assert audit[0]["details"] == {"household_id": h["low"], "rule_id": "low_income_edge",
                                       "rule_version": "1",
                                       "note": "Helped them apply for dibao on 22 Nov."}

        # the rules run again on the same facts: neither task comes back
        before = conn.execute("SELECT count(*) AS n FROM review_tasks").fetchone()["n"]
        again = run_rules(conn, later).by_rule()
        assert again["low_income_edge"].created == again["care_visit"].created == 0
        assert conn.execute("SELECT count(*) AS n FROM review_tasks").fetchone()["n"] == before
    result = CliRunner().invoke(cli, ["needs", "find"])
    assert result.exit_code == 0, result.output
    assert "tasks created: 0" in result.output and "tasks created: 1" not in result.output
    with db.connect(district.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM review_tasks WHERE status = 'open' AND"
                            " household_id = %s AND rule_id = 'low_income_edge'",
                            (h["low"],)).fetchone()["n"] == 0


def test_bad_closes_are_refused_and_write_nothing(district: District) -> None:
    h = district.h
    with db.connect(district.url) as conn:
        task = task_of(conn, h["med"], "expenditure_hardship")["id"]
        for note in ("", "   \n"):
            with pytest.raises(TaskError, match="write a note"):
                close_task(conn, task, "done", note, "civil1", NOW)
        with pytest.raises(TaskError, match="done or dismissed"):
            close_task(conn, task, "open", "why", "civil1", NOW)
        with pytest.raises(TaskError, match="there is no review task 999999"):
            close_task(conn, 999999, "done", "why", "civil1", NOW)
        assert task_of(conn, h["med"], "expenditure_hardship")["status"] == "open"
        assert audit_rows(conn) == []

        close_task(conn, task, "dismissed", "Bills checked: paid by insurance.", "civil2", NOW)
        with pytest.raises(TaskClosedError) as refused:
            close_task(conn, task, "done", "Helped.", "civil1", NOW + timedelta(hours=1))
        assert (refused.value.done_by, refused.value.status, refused.value.done_at) == (
            "civil2", "dismissed", NOW)
        assert "already marked dismissed by civil2" in str(refused.value)
        row = task_of(conn, h["med"], "expenditure_hardship")
        assert (row["done_by"], row["note"]) == ("civil2", "Bills checked: paid by insurance.")
        assert [a["action"] for a in audit_rows(conn)] == ["task_dismissed"]


@dataclass
class Web:
    app: Dash
    district: District

    def client(self, username: str) -> FlaskClient:
        client = self.app.server.test_client()
        assert sign_in(client, username).status_code == 302
        return client


@pytest.fixture
def web(district: District) -> Iterator[Web]:
    database = Database.open(district.url, max_size=4, name="tasks-test")
    try:
        yield Web(create_app(database, Settings(secret_key="tasks-test-key-0123456789abcdef")),
                  district)
    finally:
        database.close()


def update(client: FlaskClient, trigger: str, rule: str = "all", status: str = "open",
           task: int | None = None, note: str = "") -> TestResponse:
    inputs = [{"id": "tasks-rule", "property": "value", "value": rule},
              {"id": "tasks-status", "property": "value", "value": status},
              {"id": "tasks-refresh", "property": "n_clicks", "value": 1},
              {"id": "tasks-done", "property": "n_clicks", "value": 1},
              {"id": "tasks-dismiss", "property": "n_clicks", "value": 1}]
    state = [{"id": "tasks-close-task", "property": "value", "value": task},
             {"id": "tasks-close-note", "property": "value", "value": note}]
    changed = next(i for i in inputs if i["id"] == trigger)
    return callback(client, "tasks-list.children", inputs, state, changed=changed)


def outputs(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json["response"]


def test_page_lists_filters_and_closes_for_civil_affairs(web: Web) -> None:
    h = web.district.h
    civil = web.client("civil1")
    assert civil.get("/needs/tasks").status_code == 200
    page = json.dumps(route(civil, "/needs/tasks").json)
    assert "Review tasks" in page and "never applied" in page
    assert "income 1,980 CNY per person per month" in page
    assert f"/needs/household/{h['care']}" in page
    assert "Elderly person living alone with repeated water-use alerts (1 open)" in page

    shown = outputs(update(civil, "tasks-rule", rule="care_visit"))
    listed = json.dumps(shown["tasks-list"])
    assert "3 water-use alerts in 30 days (2 still open)" in listed
    assert "income 1,980" not in listed
    with db.connect(web.district.url) as conn:
        care = task_of(conn, h["care"], "care_visit")["id"]
    assert shown["tasks-close-task"]["options"] == [
        {"label": f"#{care} {shown_name(web, h['care'])} — Elderly person living alone with "
                  "repeated water-use alerts", "value": care}]

    refused = outputs(update(civil, "tasks-done", rule="care_visit", task=care, note="  "))
    assert "write a note" in json.dumps(refused["tasks-close-msg"])
    assert set(refused) == {"tasks-close-msg"}   # nothing re-read
    with db.connect(web.district.url) as conn:
        assert task_of(conn, h["care"], "care_visit")["status"] == "open"

    closed = outputs(update(civil, "tasks-done", rule="care_visit", task=care,
                            note="Visited with the grid worker; all well."))
    assert "marked done" in json.dumps(closed["tasks-close-msg"])
    assert closed["tasks-close-task"]["options"] == []
    assert closed["tasks-close-note"]["value"] == ""
    assert "(0 open)" in json.dumps(closed["tasks-rule"]["options"][4])
    again = outputs(update(civil, "tasks-dismiss", rule="care_visit", task=care, note="dup"))
    assert "already marked done by civil1" in json.dumps(again["tasks-close-msg"])
    done = json.dumps(outputs(update(civil, "tasks-status", rule="care_visit",
                                     status="done"))["tasks-list"])
    assert "Visited with the grid worker; all well." in done and "Done by civil1" in done

    with db.connect(web.district.url) as conn:
        audit = audit_rows(conn)
    assert [(a["action"], a["subject"]) for a in audit] == [
        ("view", "review_tasks"), ("view", "review_tasks"), ("task_done", f"review_task {care}"),
        ("view", "review_tasks"), ("view", "review_tasks")]
    assert {a["username"] for a in audit} == {"civil1"}
    assert audit[-1]["details"]["status"] == "done"


def shown_name(web: Web, household: str) -> str:
    with db.connect(web.district.url) as conn:
        return conn.execute("SELECT head_name FROM households WHERE id = %s",
                            (household,)).fetchone()["head_name"]


def test_other_roles_are_refused_and_nothing_is_written(web: Web) -> None:
    with db.connect(web.district.url) as conn:
        task = task_of(conn, web.district.h["low"], "low_income_edge")["id"]
    for username in ("ops1", "gw1"):
        client = web.client(username)
        assert client.get("/needs/tasks").status_code == 403
        page = json.dumps(route(client, "/needs/tasks").json)
        assert "not for your role" in page and "income" not in page
        assert update(client, "tasks-refresh").status_code == 403
        assert update(client, "tasks-done", task=task, note="sneaky").status_code == 403
    with db.connect(web.district.url) as conn:
        assert audit_rows(conn) == []
        assert task_of(conn, web.district.h["low"], "low_income_edge")["status"] == "open"


def test_no_tasks_names_the_command(web: Web) -> None:
    with db.connect(web.district.url) as conn:
        conn.execute("DELETE FROM review_tasks")
    page = json.dumps(route(web.client("civil1"), "/needs/tasks").json)
    assert "No review tasks yet" in page and "cityops needs find" in page
