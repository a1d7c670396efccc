"""Fairness report: the pure figures on hand-made arrays with known answers, and the loader and
the page ``/needs/fairness`` on a real small district scored with `cityops needs score`."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from dash import Dash
from test_queries import PASSWORD
from test_web_auth import route, sign_in

from cityops.cli.main import cli
from cityops.needs.fairness import (
    calibration,
    fairness_report,
    load_fairness,
    subgroups,
)
from cityops.needs.indicators import load_indicator_set
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from models.needs_model import labels_from_decisions

SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                     flood_gauges=2, manhole_covers=2, cameras=2)


def test_calibration_mean_gap_ece_and_too_few() -> None:
    c = calibration(np.array([0.05, 0.15, 0.15, 0.95]), np.array([0, 0, 1, 1]), min_n=30)
    assert c.n == 4 and c.too_few
    assert c.mean_predicted == pytest.approx(0.325) and c.observed == 0.5
    assert c.gap == pytest.approx(-0.175)
    # bins: 0.0-0.1 |0.05 - 0|, 0.1-0.2 |0.30 - 1| (two cases), 0.9-1.0 |0.95 - 1|; over 4
    assert c.ece == pytest.approx((0.05 + 0.7 + 0.05) / 4)
    assert not calibration(np.array([0.05, 0.15, 0.15, 0.95]), np.array([0, 0, 1, 1]),
                           min_n=4).too_few
    assert calibration(np.array([1.0, 1.0]), np.array([1, 1])).ece == 0  # 1.0: the last bin
    empty = calibration(np.array([]), np.array([]))
    assert empty.n == 0 and empty.too_few and math.isnan(empty.gap)


def test_report_shares_calibration_and_truth_per_group() -> None:
    groups = subgroups(["60-79", "<40", "<40", "80+", "60-79", "<40"],
                       ["F", "F", "F", "M", "M", "M"],
                       ["local", "non_local", "local", "local", "local", "local"],
                       [True, False, False, False, False, False])
    identified = np.array([1, 0, 0, 1, 1, 0], bool)
    decided = np.array([1, 1, 0, 1, 0, 0], bool)
    approved = np.array([1, 0, 0, 0, 0, 0], bool)
    prob = np.array([0.8, 0.2, 0.5, 0.4, 0.9, 0.1])
    truth = np.array([1, 1, 0, 0, 1, 0], bool)
    rows = fairness_report(groups, identified, decided, approved, prob, true_need=truth,
                           min_decided=2)
    by = {(r.attribute, r.group): r for r in rows}
    assert [(r.attribute, r.group) for r in rows] == [
        ("all", "all"), ("age band", "<40"), ("age band", "60-79"), ("age band", "80+"),
        ("sex", "F"), ("sex", "M"), ("hukou", "local"), ("hukou", "non_local"),
        ("disability", "yes"), ("disability", "no")]
    f, m = by["sex", "F"], by["sex", "M"]
    assert (f.n, f.identified, f.approved, f.decided, f.approved_of_decided) == (
        3, pytest.approx(1 / 3), pytest.approx(1 / 3), 2, 0.5)
    assert f.calibration is not None and not f.calibration.too_few
    # decided F: p 0.8 approved, p 0.2 declined -> mean 0.5 vs 0.5; bins |0.8-1| + |0.2-0|
    assert f.calibration.gap == pytest.approx(0) and f.calibration.ece == pytest.approx(0.2)
    assert m.calibration is not None and m.calibration.too_few and m.calibration.n == 1
    assert m.calibration.gap == pytest.approx(0.4) and m.approved_of_decided == 0.0
    assert f.truth is not None and m.truth is not None
    assert (f.truth.truly_needy, f.truth.recall_index, f.truth.recall_approved) == (
        pytest.approx(2 / 3), 0.5, 0.5)
    assert (m.truth.recall_index, m.truth.recall_approved) == (1.0, 0.0)
    assert m.truth.calibration is not None
    assert m.truth.calibration.mean_predicted == pytest.approx((0.4 + 0.9 + 0.1) / 3)
    assert m.truth.calibration.observed == pytest.approx(1 / 3)
    assert by["disability", "yes"].label == "a member with a disability"
    nobody = by["age band", "80+"]  # one household, none truly needy: no recall to speak of
    assert nobody.truth is not None and math.isnan(nobody.truth.recall_index)

    # calibrated only on households the model did not learn from; without a model, none
    held = fairness_report(groups, identified, decided, approved, prob,
                           calibrate_on=np.array([0, 1, 1, 1, 1, 1], bool), min_decided=2)
    assert held[0].calibration is not None and held[0].calibration.n == 2
    assert held[0].truth is None
    no_model = fairness_report(groups, identified, decided, approved,
                               np.full(6, np.nan))
    assert all(r.calibration is None for r in no_model)


def test_report_refuses_inconsistent_input() -> None:
    groups = {"sex": ["F", "M"]}
    ok = np.array([True, False])
    with pytest.raises(ValueError, match="approved but not decided"):
        fairness_report(groups, ok, np.array([False, False]), ok)
    with pytest.raises(ValueError, match="group sex"):
        fairness_report({"sex": ["F"]}, ok, ok, ok)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fairness_report(groups, ok, ok, ok, np.array([0.5, 1.5]))


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
