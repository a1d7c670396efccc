"""Fairness report: the pure figures on hand-made arrays with known answers, and the loader and
the page ``/needs/fairness`` on a real small district scored with `cityops needs score`."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from dash import Dash

from cityops.cli.main import cli
from cityops.needs.fairness import (
    load_fairness,
)
from cityops.needs.indicators import load_indicator_set
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from models.needs_model import labels_from_decisions
from tests.integration.scenario import PASSWORD
from tests.integration.web_client import route, sign_in

SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                     flood_gauges=2, manhole_covers=2, cameras=2)








@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(2, SMALL))
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return db_url


@pytest.fixture
def app(district: str) -> Iterator[Dash]:
    database = Database.open(district, max_size=2, name="fairness-test")
    try:
        yield create_app(database, Settings(secret_key="fairness-test-key-0123456789abcdef"))
    finally:
        database.close()


def _latest(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["at"], r["id"])):
        out[r["household_id"]] = r
    return out


@pytest.mark.integration
def test_loader_figures_equal_an_independent_computation(district: str) -> None:
    s = load_indicator_set()
    with db.connect(district) as conn:
        some = conn.execute("SELECT household_id FROM needs_decisions WHERE decision ="
                            " 'declined' ORDER BY household_id LIMIT 5").fetchall()
        for r in some:  # a later decision overrides the earlier one
            conn.execute("INSERT INTO needs_decisions (household_id, by, decision, reason)"
                         " VALUES (%s, 'test', 'approved', 'reviewed again')",
                         (r["household_id"],))
        unscored = load_fairness(conn)
        assert len(unscored) == 0 and unscored.not_assessed > 0
    for seed in ("0", "1"):  # two runs: the latest assessment counts
        result = CliRunner().invoke(cli, ["needs", "score", "--seed", seed])
        assert result.exit_code == 0, result.output
    with db.connect(district) as conn:
        data = load_fairness(conn)
        profiles = conn.execute("SELECT * FROM household_profiles").fetchall()
        assessment = _latest(conn.execute("SELECT * FROM needs_assessments").fetchall())
        decision = _latest(conn.execute("SELECT * FROM needs_decisions").fetchall())
    assert len(data) == len(profiles) and data.not_assessed == 0
    assert all(decision[r["household_id"]]["decision"] == "approved" for r in some)
    decided, label = labels_from_decisions(data.decision.tolist())
    assert (data.decided == decided).all() and (data.approved == (decided & (label == 1))).all()

    pos = s.ids.index("disability")
    expected: dict[tuple[str, str], dict[str, list[Any]]] = defaultdict(
        lambda: defaultdict(list))
    for p in profiles:
        a, d = assessment[p["household_id"]], decision.get(p["household_id"])
        kind = d["decision"] if d else None
        keys = [("all", "all"), ("age band", p["head_age_band"]), ("sex", p["head_sex"]),
                ("hukou", p["hukou"]), ("disability", "yes" if p["indicators"][pos] else "no")]
        for key in keys:
            e = expected[key]
            e["identified"].append(a["identified"])
            e["approved"].append(kind in ("approved", "visited_helped"))
            if kind in ("approved", "visited_helped", "declined"):
                e["p"].append(a["model_probability"])
                e["y"].append(kind != "declined")
    rows = data.report()
    assert {(r.attribute, r.group) for r in rows} == set(expected)
    for r in rows:
        e = expected[r.attribute, r.group]
        assert r.n == len(e["identified"])
        assert r.identified == pytest.approx(np.mean(e["identified"]))
        assert r.approved == pytest.approx(np.mean(e["approved"]))
        assert r.decided == len(e["y"])
        assert r.calibration is not None and r.calibration.n == len(e["y"])
        assert r.calibration.mean_predicted == pytest.approx(np.mean(e["p"]), abs=1e-6)
        assert r.calibration.observed == pytest.approx(np.mean(e["y"]))
        assert r.calibration.too_few == (len(e["y"]) < 30)


@pytest.mark.integration
def test_page_for_civil_affairs_only_audited_and_without_the_hidden_truth(
        app: Dash, district: str) -> None:
    civil, ops = app.server.test_client(), app.server.test_client()
    sign_in(civil, "civil1")
    sign_in(ops, "ops1")
    before = json.dumps(route(civil, "/needs/fairness").json)
    assert "No assessment yet" in before and "cityops needs score" in before
    result = CliRunner().invoke(cli, ["needs", "score"])
    assert result.exit_code == 0, result.output

    page = json.dumps(route(civil, "/needs/fairness").json)
    with db.connect(district) as conn:
        data = load_fairness(conn)
    overall = data.report()[0]
    assert f"{overall.n:,} households assessed" in page
    assert f"{overall.identified:.1%}" in page and f"{overall.approved:.1%}" in page
    for label in ("non-local hukou", "head 80 or over", "female head",
                  "a member with a disability", "fairness-chart", "never model features",
                  "who was served, not who was in need"):
        assert label in page
    assert "truly" not in page.lower() and "true need" not in page.lower()

    refused = json.dumps(route(ops, "/needs/fairness").json)
    assert "Not allowed" in refused and "households assessed" not in refused
    with db.connect(district) as conn:
        audit = conn.execute("SELECT username, subject, details FROM audit_log"
                             " WHERE action = 'view' ORDER BY id").fetchall()
    assert [(a["username"], a["subject"]) for a in audit] == [
        ("civil1", "needs.fairness"), ("civil1", "needs.fairness")]
    assert audit[1]["details"]["households"] == overall.n
