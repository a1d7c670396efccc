"""Policy finds people (cityops.needs.rules): rules on a small synthetic district plus hand-set
households at the edges of each rule, against the real database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from click.testing import CliRunner

from cityops.cli.main import cli
from cityops.needs.rules import ALL, BY_ID, CARE_VISIT, run_rules
from cityops.platform import db
from cityops.platform.database import Database
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=2, communities=4, households_per_community=60,
                     flood_gauges=2, manhole_covers=2, cameras=2)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch):
    district = generate_district(5, SMALL)
    with db.connect(db_url) as conn:
        load_district(conn, district)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return db_url


def tasks(conn, rule_id: str) -> dict[str, dict]:
    rows = conn.execute("SELECT * FROM review_tasks WHERE rule_id = %s", (rule_id,)).fetchall()
    return {r["household_id"]: r for r in rows}


def expected_from_data(conn) -> dict[str, set[str]]:
    """Each rule recomputed in Python from the rows, independently of the SQL."""
    hh = conn.execute("SELECT * FROM households").fetchall()
    prof = {r["household_id"]: r for r in conn.execute("SELECT * FROM household_profiles")}
    assist: dict[str, set[str]] = {}
    for r in conn.execute("SELECT household_id, programme FROM assistance"):
        assist.setdefault(r["household_id"], set()).add(r["programme"])
    alerts: dict[str, int] = {}
    for r in conn.execute(
            "SELECT d.household_id FROM alerts a JOIN devices d ON d.id = a.source_id"
            " WHERE d.kind = 'water_meter' AND a.kind IN"
            " ('water_silence', 'water_running', 'water_decline')"
            " AND a.last_seen >= %s AND a.first_seen <= %s", (NOW - timedelta(days=30), NOW)):
        alerts[r["household_id"]] = alerts.get(r["household_id"], 0) + 1
    out: dict[str, set[str]] = {r.id: set() for r in ALL}
    for h in hh:
        hid, p, a = h["id"], prof.get(h["id"]), assist.get(h["id"], set())
        old = (NOW.year - h["birth_year"] >= 80 if h["birth_year"] is not None
               else p is not None and p["head_age_band"] == "80+")
        if old and "old_age_allowance" not in a:
            out["old_age_allowance"].add(hid)
        if p is not None and p["income_per_capita_month"] < Decimal("2130") and not a:
            out["low_income_edge"].add(hid)
        # real (float4) columns: compared with the cutoff as float4, so 0.3 is not over 0.3
        if p is not None and (np.float32(p["medical_spending_share"]) > np.float32(0.3)
                              or np.float32(p["education_spending_share"]) > np.float32(0.3)):
            out["expenditure_hardship"].add(hid)
        alone = h["elderly_alone"] or (p is not None and p["household_type"] == "elderly_alone")
        if alone and alerts.get(hid, 0) >= 2:
            out["care_visit"].add(hid)
    return out


def ids(conn) -> list[str]:
    return [r["id"] for r in conn.execute("SELECT id FROM households ORDER BY id")]


def test_rules_fire_exactly_on_the_synthetic_households_that_meet_them(district) -> None:
    with db.connect(district) as conn:
        expected = expected_from_data(conn)
        summary = run_rules(conn, NOW)
        counts = summary.by_rule()
        for rule in ALL:
            got = tasks(conn, rule.id)
            assert set(got) == expected[rule.id], rule.id
            assert counts[rule.id].matched == len(expected[rule.id])
            assert counts[rule.id].created == len(expected[rule.id])
            assert counts[rule.id].already_known == 0
            assert all(t["rule_version"] == rule.version and t["status"] == "open"
                       for t in got.values())
        # the synthetic district has people for these rules to find
        # the synthetic district has people for the profile rules to find (seed 5: 6, 10, 7)
        assert sum(1 for c in summary.counts if c.matched) >= 3


def set_household(conn, hid: str, *, birth_year: int | None = 1980, alone: bool = False,
                  income: str = "9000", medical: float = 0.05, education: float = 0.0,
                  age_band: str = "40-59", htype: str = "family",
                  assistance: tuple[str, ...] = ()) -> None:
    conn.execute("UPDATE households SET birth_year = %s, elderly_alone = %s WHERE id = %s",
                 (birth_year, alone, hid))
    conn.execute("UPDATE household_profiles SET income_per_capita_month = %s,"
                 " medical_spending_share = %s, education_spending_share = %s,"
                 " head_age_band = %s, household_type = %s WHERE household_id = %s",
                 (Decimal(income), medical, education, age_band, htype, hid))
    conn.execute("DELETE FROM assistance WHERE household_id = %s", (hid,))
    for prog in assistance:
        conn.execute("INSERT INTO assistance VALUES (%s, %s, '2020-01-01')", (hid, prog))


@pytest.fixture
def edges(district):
    """Every household set to a neutral profile, then a few set at the edges of each rule."""
    with db.connect(district) as conn:
        conn.execute("DELETE FROM alerts")
        hs = ids(conn)
        for hid in hs:
            set_household(conn, hid)
        h = dict(zip(["age80", "age79", "age80_allowance", "band80", "inc_under", "inc_at",
                      "inc_under_assisted", "med_over", "med_at", "edu_over", "alone2",
                      "alone1", "alone2_old", "family2"], hs, strict=False))
        set_household(conn, h["age80"], birth_year=NOW.year - 80, age_band="80+",
                      assistance=("dibao",))
        set_household(conn, h["age79"], birth_year=NOW.year - 79, age_band="60-79",
                      assistance=("dibao",))
        set_household(conn, h["age80_allowance"], birth_year=NOW.year - 85, age_band="80+",
                      assistance=("old_age_allowance",))
        set_household(conn, h["band80"], birth_year=None, age_band="80+", assistance=("dibao",))
        set_household(conn, h["inc_under"], income="2129.99")
        set_household(conn, h["inc_at"], income="2130.00")
        set_household(conn, h["inc_under_assisted"], income="1000",
                      assistance=("temporary_assistance",))
        set_household(conn, h["med_over"], medical=0.31)
        set_household(conn, h["med_at"], medical=0.30, education=0.30)
        set_household(conn, h["edu_over"], education=0.45)
        for key in ("alone2", "alone1", "alone2_old"):
            set_household(conn, h[key], birth_year=1950, alone=True, age_band="60-79",
                          htype="elderly_alone", assistance=("old_age_allowance",))
        set_household(conn, h["family2"], birth_year=1950, age_band="60-79",
                      assistance=("old_age_allowance",))
        for key, ages in (("alone2", (1, 20)), ("alone1", (3,)), ("alone2_old", (5, 45)),
                          ("family2", (2, 4))):
            meter = f"WT-{key}"
            conn.execute("INSERT INTO devices (id, kind, household_id, grid_code, lon, lat, label)"
                         " SELECT %s, 'water_meter', id, community_code, lon, lat, 'meter'"
                         " FROM households WHERE id = %s", (meter, h[key]))
            for n, days in enumerate(ages):
                kind = ("water_silence", "water_running")[n % 2]
                seen = NOW - timedelta(days=days)
                conn.execute("INSERT INTO alerts (source_id, kind, severity, status, message,"
                             " first_seen, last_seen) VALUES (%s, %s, 'medium', %s, 'x', %s, %s)",
                             (meter, kind, "resolved" if n else "open", seen, seen))
    return district, h


def test_each_rule_fires_on_its_edge_cases_and_not_just_outside(edges) -> None:
    url, h = edges
    with db.connect(url) as conn:
        run_rules(conn, NOW)
        old = tasks(conn, "old_age_allowance")
        assert set(old) == {h["age80"], h["band80"]}
        assert old[h["age80"]]["data"] == {"birth_year": NOW.year - 80, "age": 80,
                                           "age_source": "birth_year of the head",
                                           "assistance": ["dibao"]}
        assert old[h["band80"]]["data"]["age_source"] == "head_age_band 80+"

        low = tasks(conn, "low_income_edge")
        assert set(low) == {h["inc_under"]}
        assert low[h["inc_under"]]["data"] == {"income_per_capita": 2129.99, "limit": 2130.0,
                                               "dibao": 1420, "assistance": []}

        exp = tasks(conn, "expenditure_hardship")
        assert set(exp) == {h["med_over"], h["edu_over"]}
        assert exp[h["med_over"]]["data"]["over"] == ["medical"]
        assert exp[h["edu_over"]]["data"]["over"] == ["education"]
        assert exp[h["edu_over"]]["data"]["education_spending_share"] == 0.45
        assert exp[h["edu_over"]]["data"]["education_cutoff"] == 0.3

        care = tasks(conn, "care_visit")
        assert set(care) == {h["alone2"]}
        data = care[h["alone2"]]["data"]
        assert data["water_alerts_30_days"] == 2 and data["threshold"] == 2
        assert sorted(data["kinds"]) == ["water_running", "water_silence"]
        assert len(data["alert_ids"]) == 2


def test_care_rule_counts_live_alerts(edges) -> None:
    url, h = edges
    with db.connect(url) as conn:
        assert run_rules(conn, NOW, [CARE_VISIT]).by_rule()["care_visit"].matched == 1
        # a second recent alert for the one-alert household: now it is found too
        seen = NOW - timedelta(hours=3)
        conn.execute("INSERT INTO alerts (source_id, kind, severity, message, first_seen,"
                     " last_seen) VALUES ('WT-alone1', 'water_decline', 'low', 'x', %s, %s)",
                     (seen, seen))
        # an alert of another kind does not count
        conn.execute("INSERT INTO alerts (source_id, kind, severity, message, first_seen,"
                     " last_seen) VALUES ('WT-alone2_old', 'battery_low', 'low', 'x', %s, %s)",
                     (seen, seen))
        count = run_rules(conn, NOW, [CARE_VISIT]).by_rule()["care_visit"]
        assert (count.matched, count.created, count.already_known) == (2, 1, 1)
        assert set(tasks(conn, "care_visit")) == {h["alone2"], h["alone1"]}
        # the synthetic flag alone does not fire the rule
        conn.execute("UPDATE household_profiles SET indicators[19] = true")
        assert run_rules(conn, NOW, [CARE_VISIT]).by_rule()["care_visit"].matched == 2


def test_idempotent_and_a_version_bump_opens_new_tasks(edges) -> None:
    url, _ = edges
    with db.connect(url) as conn:
        first = run_rules(conn, NOW).by_rule()
        again = run_rules(conn, NOW + timedelta(days=1)).by_rule()
        for rule in ALL:
            assert again[rule.id].matched == first[rule.id].matched
            assert again[rule.id].created == 0
            assert again[rule.id].already_known == first[rule.id].matched
        total = conn.execute("SELECT count(*) AS n FROM review_tasks").fetchone()["n"]
        assert total == sum(c.matched for c in first.values())

        # a task closed by staff is not asked again on the same facts; when they change, it is
        conn.execute("UPDATE review_tasks SET status = 'dismissed', done_at = now(),"
                     " done_by = 'ca' WHERE rule_id = 'low_income_edge'")
        assert run_rules(conn, NOW, [BY_ID["low_income_edge"]]).by_rule()[
            "low_income_edge"].created == 0
        conn.execute("UPDATE household_profiles SET income_per_capita_month ="
                     " income_per_capita_month - 100 WHERE household_id = (SELECT household_id"
                     " FROM review_tasks WHERE rule_id = 'low_income_edge' LIMIT 1)")
        assert run_rules(conn, NOW, [BY_ID["low_income_edge"]]).by_rule()[
            "low_income_edge"].created == 1

        bumped = dataclasses.replace(BY_ID["expenditure_hardship"], version="2")
        count = run_rules(conn, NOW, [bumped]).by_rule()["expenditure_hardship"]
        assert (count.matched, count.created, count.already_known) == (2, 2, 0)
        versions = conn.execute(
            "SELECT rule_version, count(*) AS n FROM review_tasks"
            " WHERE rule_id = 'expenditure_hardship' GROUP BY 1 ORDER BY 1").fetchall()
        assert [(r["rule_version"], r["n"]) for r in versions] == [("1", 2), ("2", 2)]


def test_find_command_prints_per_rule(edges) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["needs", "find", "--rule", "low_income_edge",
                                 "--rule", "care_visit"])
    assert result.exit_code == 0, result.output
    assert "low_income_edge (version 1): Low income" in result.output
    assert "households matched: 1; tasks created: 1; already known: 0" in result.output
    assert "old_age_allowance" not in result.output
    result = runner.invoke(cli, ["needs", "find"])
    assert result.exit_code == 0, result.output
    assert result.output.count("version 1") == 4
    assert "households matched: 1; tasks created: 0; already known: 1" in result.output
    result = runner.invoke(cli, ["needs", "find", "--rule", "nope"])
    assert result.exit_code != 0
    assert "unknown rule nope" in result.output


def test_the_scheduler_runs_the_rules_daily_once(edges) -> None:
    from cityops.app.jobs import make_scheduler
    from cityops.platform.settings import Settings
    from cityops.platform.topics import Topics

    url, h = edges
    database = Database.open(url, max_size=2)
    try:
        job = make_scheduler(database, Settings(), Topics("test/v1"),
                             send_outbox=lambda: 0).job("needs-rules")
        assert job is not None and job.trigger.interval == timedelta(days=1)
        job.func()
        job.func()   # the same day is claimed: nothing more
    finally:
        database.close()
    with db.connect(url) as conn:
        assert set(tasks(conn, "low_income_edge")) == {h["inc_under"]}
        claims = conn.execute("SELECT count(*) AS n FROM job_claims"
                              " WHERE job = 'needs-rules'").fetchone()["n"]
    assert claims in (1, 2)
