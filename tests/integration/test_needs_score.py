"""`cityops needs score`: every household scored by the index and the model, one assessment
each, on the real database with the synthetic district's needs data."""

from __future__ import annotations

from fractions import Fraction

import pytest
from click.testing import CliRunner

from cityops.cli.main import cli
from cityops.needs.indicators import load_indicator_set
from cityops.platform import db
from cityops.platform.database import Database
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                     flood_gauges=2, manhole_covers=2, cameras=2)


@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(2, SMALL))
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return db_url


def test_every_household_gets_an_exact_assessment(district: str) -> None:
    indicator_set = load_indicator_set()
    with db.connect(district) as conn:
        conn.execute("DELETE FROM needs_decisions")  # no past decisions: the index alone
        households = conn.execute("SELECT count(*) AS n FROM household_profiles").fetchone()["n"]
    result = CliRunner().invoke(cli, ["needs", "score"])
    assert result.exit_code == 0, result.output
    assert f"households scored: {households:,}" in result.output
    assert "no model:" in result.output
    with db.connect(district) as conn:
        rows = conn.execute(
            "SELECT a.score_num, a.score_den, a.identified, a.model_probability, a.details,"
            " p.indicators FROM needs_assessments a"
            " JOIN household_profiles p USING (household_id)").fetchall()
    assert len(rows) == households
    weights = dict(zip(indicator_set.ids, indicator_set.weights, strict=True))
    for row in rows:
        deprived = [i for i, on in zip(indicator_set.ids, row["indicators"], strict=True) if on]
        c = sum((weights[i] for i in deprived), Fraction(0))
        assert Fraction(row["score_num"], row["score_den"]) == c
        assert row["identified"] == (c >= indicator_set.k)
        assert row["details"]["deprived"] == deprived and row["model_probability"] is None


def test_the_model_scores_and_flags_strong_disagreements(district: str) -> None:
    with db.connect(district) as conn:
        decided = conn.execute("SELECT count(DISTINCT household_id) AS n FROM needs_decisions"
                               " WHERE decision IN ('approved', 'declined',"
                               " 'visited_helped')").fetchone()["n"]
    assert decided >= 50, "the synthetic district should have past decisions to learn from"
    result = CliRunner().invoke(cli, ["needs", "score", "--high", "0.5", "--low", "0.1"])
    assert result.exit_code == 0, result.output
    assert "model: trained on" in result.output and "second look:" in result.output
    with db.connect(district) as conn:
        rows = conn.execute("SELECT identified, model_probability, details"
                            " FROM needs_assessments").fetchall()
    assert all(0 <= r["model_probability"] <= 1 for r in rows)
    for r in rows:  # the flag follows the rule exactly
        expected = ((r["identified"] and r["model_probability"] < 0.1)
                    or (not r["identified"] and r["model_probability"] > 0.5))
        assert (r["details"]["second_look"] is not None) == expected
    again = CliRunner().invoke(cli, ["needs", "score", "--low", "0.9", "--high", "0.5"])
    assert again.exit_code != 0 and "must be below" in again.output


def test_a_run_stores_only_the_households_whose_result_changed(district: str) -> None:
    first = CliRunner().invoke(cli, ["needs", "score"])
    assert first.exit_code == 0, first.output
    with db.connect(district) as conn:
        households = conn.execute("SELECT count(*) AS n FROM household_profiles").fetchone()["n"]
        # an undecided household (the model's training data stays the same) gains a deprivation
        changed = conn.execute(
            "SELECT p.household_id FROM household_profiles p WHERE NOT p.indicators[1]"
            " AND NOT EXISTS (SELECT 1 FROM needs_decisions d"
            " WHERE d.household_id = p.household_id) ORDER BY 1 LIMIT 1").fetchone()
        conn.execute("UPDATE household_profiles SET indicators[1] = true"
                     " WHERE household_id = %s", (changed["household_id"],))
    assert f"new assessments stored: {households:,} (0 unchanged" in first.output
    second = CliRunner().invoke(cli, ["needs", "score"])
    assert second.exit_code == 0, second.output
    assert f"new assessments stored: 1 ({households - 1:,} unchanged" in second.output
    with db.connect(district) as conn:
        history = conn.execute(
            "SELECT household_id, count(*) AS n FROM needs_assessments GROUP BY household_id"
            " HAVING count(*) > 1").fetchall()
        latest = conn.execute(
            "SELECT a.score_num, a.score_den, a.details FROM needs_latest l"
            " JOIN needs_assessments a ON a.id = l.assessment_id"
            " WHERE l.household_id = %s", (changed["household_id"],)).fetchone()
    assert [(h["household_id"], h["n"]) for h in history] == [(changed["household_id"], 2)]
    assert latest["details"]["deprived"][0] == load_indicator_set().ids[0]


def test_the_scheduler_scores_daily_once(district: str) -> None:
    from datetime import timedelta

    from cityops.app.jobs import make_scheduler
    from cityops.app.needs_scoring import score_needs_daily
    from cityops.platform.settings import Settings
    from cityops.platform.topics import Topics

    database = Database.open(district, max_size=2)
    try:
        scheduler = make_scheduler(database, Settings(), Topics("test/v1"),
                                   send_outbox=lambda: 0,
                                   score_needs=lambda: score_needs_daily(database))
        job = scheduler.job("needs-score")
        assert job is not None and job.trigger.interval == timedelta(days=1)
        job.func()
        job.func()  # the same day is claimed: no second assessment
        assert make_scheduler(database, Settings(), Topics("test/v1"), send_outbox=lambda: 0
                              ).job("needs-score") is None  # no scorer, no job
    finally:
        database.close()
    with db.connect(district) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM needs_assessments) AS assessed,"
            " (SELECT count(*) FROM household_profiles) AS households,"
            " (SELECT count(*) FROM needs_assessments WHERE model_probability IS NULL)"
            " AS without_model").fetchone()
    assert counts["assessed"] == counts["households"] > 0
    assert counts["without_model"] == 0  # the synthetic past decisions train the model
