"""The needs data of the synthetic district (cityops.needs.data): deterministic, plausible,
biased the way past decisions are, and loaded with the district."""

from __future__ import annotations

import numpy as np
import pytest

from cityops.needs.data import (
    INDICATOR_SET_VERSION,
    INDICATORS,
    bias_report,
    generate_needs_arrays,
)

N = 60_000


def _arrays(n: int = N, seed: int = 0):
    r = np.random.default_rng(seed)
    alone = r.random(n) < 0.06
    members = np.where(alone, 1, r.choice([1, 2, 2, 3, 3, 3, 4, 5], n))
    birth = np.where(alone, r.integers(1932, 1961, n), r.integers(1940, 2001, n))
    community = np.repeat(np.arange(n // 200 + 1), 200)[:n]
    return [f"H{i:08d}" for i in range(n)], members, alone, birth, community


@pytest.fixture(scope="module")
def data():
    return generate_needs_arrays(1, *_arrays())


def test_same_seed_same_data_other_seed_other_data(data) -> None:
    again = generate_needs_arrays(1, *_arrays())
    assert np.array_equal(again.indicators, data.indicators)
    assert np.array_equal(again.income, data.income)
    assert np.array_equal(again.true_need, data.true_need)
    assert again.decisions == data.decisions and again.assistance == data.assistance
    other = generate_needs_arrays(2, *_arrays())
    assert not np.array_equal(other.indicators, data.indicators)


def test_indicators_have_realistic_prevalences(data) -> None:
    assert data.indicators.shape == (N, len(INDICATORS)) == (N, 22)
    p = data.prevalence()
    assert all(0 < share < 0.35 for share in p.values()), p
    assert 0.01 < p["income_below_dibao"] < 0.08
    assert p["income_below_dibao"] < p["income_below_1_5_dibao"] < 0.2
    assert p["long_term_unemployed"] < p["unemployed"]
    # nested indicators hold row by row
    col = {name: i for i, name in enumerate(INDICATORS)}
    ind = data.indicators
    assert not (ind[:, col["income_below_dibao"]] & ~ind[:, col["income_below_1_5_dibao"]]).any()
    assert not (ind[:, col["long_term_unemployed"]] & ~ind[:, col["unemployed"]]).any()
    # elderly people living alone are poorer; true need is 8 % and tracks deprivation
    alone = data.household_type == "elderly_alone"
    assert data.latent[alone].mean() > data.latent[~alone].mean() + 0.3
    assert data.true_need.mean() == pytest.approx(0.08, abs=0.001)
    count = ind.sum(axis=1)
    assert count[data.true_need].mean() > 2 * count[~data.true_need].mean()
    # water alerts only for elderly people living alone
    assert not ind[~alone, col["elderly_alone_water_alerts"]].any()


def test_past_decisions_show_who_was_served_not_who_was_in_need(data) -> None:
    bias = bias_report(data)
    assert bias["non_local"]["applied"] < 0.6 * bias["local"]["applied"]
    assert bias["non_local"]["approved"] < 0.6 * bias["local"]["approved"]
    assert bias["elderly_alone"]["approved"] < bias["not_elderly_alone"]["approved"]
    # caseworkers approve mostly by income: approved applicants are much poorer than declined
    index = {h: i for i, h in enumerate(data.household_ids)}
    by = {"approved": [], "declined": []}
    for d in data.decisions:
        if d["decision"] in by:
            by[d["decision"]].append(data.income[index[d["household_id"]]])
        assert d["reason"]
    assert np.median(by["approved"]) < 0.6 * np.median(by["declined"])
    # only a minority of the truly needy was ever decided
    decided = np.zeros(N, bool)
    decided[[index[d["household_id"]] for d in data.decisions]] = True
    assert decided[data.true_need].mean() < 0.4




def test_the_data_follow_the_default_indicator_set() -> None:
    from cityops.needs import data as needs_data
    from cityops.needs.indicators import load_indicator_set

    default = load_indicator_set()
    assert default.ids == INDICATORS
    assert default.version == INDICATOR_SET_VERSION
    cutoff = {i.id: i.cutoff for i in default.indicators}
    assert cutoff["income_below_dibao"] == needs_data.DIBAO_MONTH
    assert cutoff["income_below_1_5_dibao"] == 1.5 * needs_data.DIBAO_MONTH
    assert cutoff["assets_below_limit"] == needs_data.ASSET_LIMIT_PER_PERSON
    assert cutoff["floor_area_low"] == needs_data.FLOOR_AREA_MIN
    assert cutoff["medical_spending_high"] == needs_data.MEDICAL_SHARE_MAX
    assert cutoff["education_spending_high"] == needs_data.EDUCATION_SHARE_MAX
    assert cutoff["long_term_unemployed"] == needs_data.LONG_UNEMPLOYED_MONTHS
