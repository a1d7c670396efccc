"""What fired a review task, in plain words, at the edges; no servers."""

from __future__ import annotations

from cityops.needs.tasks import (
    describe,
)


def test_plain_words_at_the_edges() -> None:
    assert describe("old_age_allowance", {"birth_year": None, "age": None,
                                          "age_source": "head_age_band 80+",
                                          "assistance": []}) == (
        "age band 80+ on the needs profile (birth year unknown), no old-age allowance; "
        "no other assistance")
    both = {"medical_spending_share": 0.3001, "education_spending_share": 0.5,
            "medical_cutoff": 0.3, "education_cutoff": 0.3, "over": ["medical", "education"],
            "assistance": ["old_age_allowance", "dibao"]}
    assert describe("expenditure_hardship", both) == (
        "medical spending 30.01 % of income (limit 30 %) and education spending 50 % of income "
        "(limit 30 %); receives old-age allowance, minimum living standard (dibao)")
    assert describe("low_income_edge", {"income_per_capita": 2129.99, "limit": 2130.0,
                                        "dibao": 1420, "assistance": []}).startswith(
        "income 2,129.99 CNY")
    assert describe("care_visit", {"water_alerts_30_days": 1, "kinds": ["water_decline"]}) == (
        "1 water-use alert in 30 days: water use falling for days; elderly person living alone")
    # a rule no longer in use, or data of another shape: shown as stored
    assert describe("gone_rule", {"x_y": 1, "z": "a"}) == "x y: 1; z: a"
    assert describe("low_income_edge", {"income": 5}) == "income: 5"

