"""The one alert→case policy (cityops.cases.policy), without a database."""

from __future__ import annotations

import pytest

from cityops.cases.categories import load_categories
from cityops.cases.policy import ALERTS, CasePlan, Origin, plan_case

CATALOGUE = load_categories(None)


def test_a_sensor_alert_opens_its_case_dispatched_by_grid_at_its_severity() -> None:
    flood = plan_case(Origin("sensor", alert_kind="flood_depth", severity="critical"))
    assert flood == CasePlan("sensor", "E0401", "Street flooding", "urgent", "system", "grid")
    assert flood.urgent
    silence = plan_case(Origin("sensor", alert_kind="water_silence", severity="medium"))
    assert (silence.category, silence.priority, silence.dispatch) == ("E0801", "normal", "grid")
    low = plan_case(Origin("sensor", alert_kind="flood_depth", severity="low"))
    assert low.priority == "low" and not low.urgent


def test_a_silent_device_is_a_sensor_fault_for_the_technical_team() -> None:
    plan = plan_case(Origin("device_health", alert_kind="device_silent", severity="low"))
    assert (plan.category, plan.priority, plan.registered_by, plan.dispatch) == (
        "C0109", "low", "system", "unit")
    assert CATALOGUE.get(plan.category).unit == "Operations centre technical team"


def test_every_alert_kind_has_a_category_of_the_catalogue() -> None:
    for kind, case in ALERTS.items():
        assert CATALOGUE.get(case.category), kind
    unknown = plan_case(Origin("sensor", alert_kind="something_new", severity="high"))
    assert (unknown.category, unknown.title, unknown.dispatch) == ("E9999", "something_new",
                                                                  "grid")


def test_reports_by_source() -> None:
    citizen = plan_case(Origin("citizen", category="C0103"), CATALOGUE)
    assert (citizen.registered_by, citizen.dispatch) == ("centre", "later")
    hotline = plan_case(Origin("hotline", category="C0103", priority="low"), CATALOGUE)
    assert (hotline.registered_by, hotline.dispatch, hotline.priority) == ("filer", "grid",
                                                                           "low")
    patrol = plan_case(Origin("patrol", category="C0103"), CATALOGUE)
    assert (patrol.registered_by, patrol.dispatch) == ("system", "grid")
    inspection = plan_case(Origin("scheduled", category="C0206"), CATALOGUE)
    assert (inspection.source, inspection.registered_by, inspection.dispatch) == (
        "scheduled", "system", "grid")


def test_an_urgent_category_makes_any_report_urgent() -> None:
    for source in ("citizen", "hotline", "patrol"):
        plan = plan_case(Origin(source, category="E0401", priority="low"), CATALOGUE)
        assert plan.priority == "urgent", source


def test_bad_origins_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="severity"):
        plan_case(Origin("sensor", alert_kind="flood_depth", severity="dire"))
    with pytest.raises(ValueError, match="unknown case category"):
        plan_case(Origin("patrol", category="X0000"), CATALOGUE)
    with pytest.raises(ValueError, match="needs the category catalogue"):
        plan_case(Origin("patrol", category="C0103"))
    with pytest.raises(ValueError, match="unknown case origin"):
        plan_case(Origin("robot", category="C0103"), CATALOGUE)  # type: ignore[arg-type]
