"""The district summary of the needs index (``cityops.needs.summary``, page ``/needs/summary``):
every figure against an independent exact computation from the household profiles, and the
Alkire-Foster code in ``models.needs_af``; on the real database with a small synthetic district."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner
from dash import Dash
from flask.testing import FlaskClient

from cityops.cli.main import cli
from cityops.needs.indicators import IndicatorSet, load_indicator_set
from cityops.needs.summary import Breakdown, DistrictSummary, Figures, district_summary
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app
from models.needs_af import alkire_foster, decompose
from tests.integration.scenario import PASSWORD
from tests.integration.web_client import callback, route, sign_in

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                     flood_gauges=2, manhole_covers=2, cameras=2)


@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(2, SMALL))
        conn.execute("DELETE FROM needs_decisions")  # the index alone: scoring is quicker
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return db_url


def score() -> None:
    result = CliRunner().invoke(cli, ["needs", "score"])
    assert result.exit_code == 0, result.output


@dataclass(frozen=True)
class Expected:
    n: int
    q: int
    H: Fraction
    A: Fraction
    M0: Fraction
    uncensored: tuple[Fraction, ...]
    censored: tuple[Fraction, ...]


def expected(rows: Sequence[Sequence[bool]], iset: IndicatorSet) -> Expected:
    """Alkire-Foster by hand, in fractions, straight from the profiles' deprivations."""
    n = len(rows)
    scores = [sum((w for w, on in zip(iset.weights, r, strict=True) if on), Fraction(0))
              for r in rows]
    poor = [c >= iset.k for c in scores]
    q = sum(poor)
    total = sum((c for c, p in zip(scores, poor, strict=True) if p), Fraction(0))
    d = len(iset.ids)
    return Expected(
        n=n, q=q, H=Fraction(q, n), A=total / q if q else Fraction(0), M0=total / n,
        uncensored=tuple(Fraction(sum(r[j] for r in rows), n) for j in range(d)),
        censored=tuple(Fraction(sum(r[j] for r, p in zip(rows, poor, strict=True) if p), n)
                       for j in range(d)))


def check(figures: Figures, exp: Expected, iset: IndicatorSet) -> None:
    assert (figures.n, figures.identified) == (exp.n, exp.q)
    assert (figures.H, figures.A, figures.M0) == (exp.H, exp.A, exp.M0)
    assert figures.M0 == figures.H * figures.A
    for j, ind in enumerate(figures.indicators):
        assert ind.id == iset.ids[j] and ind.weight == iset.weights[j]
        assert ind.uncensored_ratio == exp.uncensored[j], ind.id
        assert ind.censored_ratio == exp.censored[j], ind.id
        share = iset.weights[j] * exp.censored[j] / exp.M0 * 100 if exp.M0 else Fraction(0)
        assert ind.contribution_pct == share, ind.id
    if exp.M0:
        assert sum(i.contribution_pct for i in figures.indicators) == 100
        assert sum(figures.m0_by_dimension().values()) == figures.M0


def profiles(url: str) -> list[dict]:
    with db.connect(url) as conn:
        return conn.execute(
            "SELECT p.household_id, p.indicators, p.household_type, h.community_code,"
            " left(h.community_code, 9) || '000000' AS street FROM household_profiles p"
            " JOIN households h ON h.id = p.household_id ORDER BY p.household_id").fetchall()


def test_district_and_groups_match_an_independent_computation(district: str) -> None:
    iset = load_indicator_set()
    score()
    score()  # a second run: each household's latest assessment counts once
    rows = profiles(district)
    matrix = np.array([r["indicators"] for r in rows], dtype=np.int8)
    af = alkire_foster(matrix, iset.weights, iset.k, ids=iset.ids)
    exp = expected([r["indicators"] for r in rows], iset)
    assert exp.q > 0, "the small district should have identified households"
    keys: dict[Breakdown, str] = {"street": "street", "community": "community_code",
                                  "household_type": "household_type"}
    with db.connect(district) as conn:
        streets = {r["code"]: r["name"] for r in conn.execute(
            "SELECT code, name FROM grids WHERE level = 'street'").fetchall()}
        summaries = {b: district_summary(conn, b, iset) for b in keys}

    for breakdown, column in keys.items():
        summary = summaries[breakdown]
        assert summary.skipped == 0 and summary.version == iset.version
        d = summary.district
        check(d, exp, iset)
        assert (af.headcount_exact, af.m0_exact, af.intensity_exact) == (d.H, d.M0, d.A)
        assert [float(i.contribution_pct) for i in d.indicators] == pytest.approx(
            list(af.contributions_pct))
        assert [float(i.uncensored_ratio) for i in d.indicators] == pytest.approx(
            list(af.uncensored_ratios))

        members: dict[str, list[list[bool]]] = defaultdict(list)
        for r in rows:
            members[r[column].strip()].append(r["indicators"])
        assert [g.key for g in summary.groups] == sorted(members)
        for g in summary.groups:
            check(g, expected(members[g.key], iset), iset)
        assert sum(g.population_share for g in summary.groups) == 1
        assert sum(g.contribution_pct for g in summary.groups) == 100
        assert sum(g.population_share * g.M0 for g in summary.groups) == d.M0
        # the same decomposition as models.needs_af.decompose
        decomposed = {f.group: f for f in decompose(af, [r[column].strip() for r in rows])}
        for g in summary.groups:
            ref = decomposed[g.key]
            assert (g.n, float(g.population_share), float(g.H), float(g.A), float(g.M0),
                    float(g.contribution_pct)) == pytest.approx(
                (ref.n, ref.population_share, ref.H, ref.A, ref.M0, ref.contribution_pct))
    assert {g.label for g in summaries["street"].groups} == set(streets.values())
    assert "elderly person living alone" in {g.label for g in summaries["household_type"].groups}


def test_only_the_latest_assessment_on_the_current_version_counts(district: str) -> None:
    iset = load_indicator_set()
    score()
    with db.connect(district) as conn:
        before = district_summary(conn, "household_type", iset)
        # one household's newest assessment is on another version; another's newest now says it
        # is deprived in everything
        ids = [r["household_id"] for r in conn.execute(
            "SELECT household_id FROM needs_assessments a WHERE NOT identified"
            " ORDER BY household_id LIMIT 2").fetchall()]
        conn.execute(
            "INSERT INTO needs_assessments (household_id, at, indicator_set_version, score_num,"
            " score_den, identified, details) VALUES"
            " (%s, now() + interval '1 hour', 'old-set', 0, 1, false, '{\"deprived\": []}'),"
            " (%s, now() + interval '1 hour', %s, 1, 1, true, %s)",
            (ids[0], ids[1], iset.version, json.dumps({"deprived": list(iset.ids)})))
        after = district_summary(conn, "household_type", iset)
    assert after.skipped == 1
    assert after.district.n == before.district.n - 1
    assert after.district.identified == before.district.identified + 1
    for b, a in zip(before.district.indicators, after.district.indicators, strict=True):
        assert a.deprived_identified == b.deprived_identified + 1
    assert sum(i.contribution_pct for i in after.district.indicators) == 100


@pytest.fixture
def web(district: str) -> Iterator[Dash]:
    with db.connect(district) as conn:
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
    database = Database.open(district, max_size=4, name="needs-summary-test")
    try:
        yield create_app(database, Settings(secret_key="needs-summary-test-key-0123456789"))
    finally:
        database.close()


def switch(client: FlaskClient, value: str) -> str:
    response = callback(client, "needs-summary-groups",
                        [{"id": "needs-summary-breakdown", "property": "value", "value": value}])
    assert response.status_code == 200
    return json.dumps(response.json, ensure_ascii=False)


def test_the_page_for_civil_affairs_only_and_every_view_audited(district: str,
                                                                web: Dash) -> None:
    civil, ops = web.server.test_client(), web.server.test_client()
    sign_in(civil, "civil1")
    sign_in(ops, "ops1")
    assert ops.get("/needs/summary").status_code == 403
    assert "not for your role" in route(ops, "/needs/summary").text
    empty = json.dumps(route(civil, "/needs/summary").json)
    assert "No household has an assessment" in empty and "cityops needs score" in empty

    score()
    iset = load_indicator_set()
    with db.connect(district) as conn:
        summary: DistrictSummary = district_summary(conn, "street", iset)
        types = district_summary(conn, "household_type", iset)
    assert civil.get("/needs/summary").status_code == 200
    page = route(civil, "/needs/summary")
    assert page.status_code == 200
    text = json.dumps(page.json, ensure_ascii=False)
    d = summary.district
    assert f"exactly {d.M0}" in text and f"exactly {d.H}" in text and f"{d.n:,}" in text
    assert "needs-summary-indicator-chart" in text and "needs-summary-group-chart" in text
    assert all(g.label in text for g in summary.groups)
    assert iset.labels[iset.ids[0]] in text and "displaylogo" in text
    with db.connect(district) as conn:
        names = [r["head_name"] for r in conn.execute(
            "SELECT head_name FROM households ORDER BY id LIMIT 50").fetchall()]
    assert not [name for name in names if name in text]  # aggregates only: no resident names

    by_type = switch(civil, "household_type")
    assert all(g.label in by_type for g in types.groups)
    assert all(f"exactly {g.M0}" in by_type for g in types.groups)
    assert "Choose one of" in switch(civil, "nonsense")
    refused = callback(ops, "needs-summary-groups",
                       [{"id": "needs-summary-breakdown", "property": "value",
                         "value": "street"}])
    assert refused.status_code == 403

    with db.connect(district) as conn:
        views = conn.execute("SELECT username, details FROM audit_log WHERE action = 'view'"
                             " AND subject = 'needs.summary' ORDER BY id").fetchall()
    assert [v["username"] for v in views] == ["civil1"] * 3
    assert [v["details"]["breakdown"] for v in views] == ["street", "street", "household_type"]
    assert views[0]["details"]["households"] == 0
    assert views[1]["details"]["households"] == d.n
