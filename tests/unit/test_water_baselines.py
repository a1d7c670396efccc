"""Per-household water-use baselines (models.water_baselines) on synthetic hourly series."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from cityops.app.water_rules import water_config
from cityops.platform.settings import Settings
from models.water_baselines import (
    WaterBaseline,
    daily_totals,
    fit_baseline,
    hour_grid,
    hours_since_use,
    population_baseline,
    unusual_day_scores,
)

SH = ZoneInfo("Asia/Shanghai")
CFG = water_config(Settings())
# litres used in each local hour (the hour starting at the index): up 07:00, asleep from 22:00
DAY = [0, 0, 0, 0, 0, 0, 0, 30, 10, 5, 0, 8, 15, 0, 0, 4, 0, 10, 20, 10, 5, 8, 0, 0]
START = datetime(2026, 9, 1, tzinfo=SH)  # a Tuesday, local midnight


def hourly(days: int, pattern: list[float] = DAY, start: datetime = START) -> tuple[
    list[datetime], list[float]
]:
    """Hour ends and litres for ``days`` days of the same pattern."""
    ends = [start + timedelta(hours=h + 1) for h in range(days * 24)]
    return ends, [float(pattern[h % 24]) for h in range(days * 24)]


def test_a_regular_household_gets_its_own_baseline() -> None:
    ends, litres = hourly(28)
    baseline = fit_baseline(ends, litres, SH, ends[-1], CFG)
    assert baseline.source == "household" and baseline.days >= 26
    assert baseline.first_use_min == 8 * 60  # use 07-08 is seen at 08:00
    # at 07:00 the usual gap is 9 h (last use 21-22, seen at 22:00); the neighbour 08:00 is 0
    assert baseline.silence_h[6] == 9.0
    assert baseline.silence_limit_h(6, CFG) == min(9 + CFG.silence_margin_h, CFG.silence_cap_h)
    # around 14:00 at most 2 h without water (none 13-15), and the floor of the limit applies
    assert baseline.silence_h[14] == 2.0
    assert baseline.silence_limit_h(14, CFG) == CFG.silence_floor_h
    assert baseline.daily_l == sum(DAY)
    assert baseline.band_low_l[7] == baseline.band_high_l[7] == 30
    assert len(baseline.hourly_mean_l) == 168 and baseline.hourly_mean_l[7] == 30
    assert baseline.late_deadline_min(CFG) == 8 * 60 + CFG.late_margin_min


def test_a_new_household_gets_the_population_defaults() -> None:
    ends, litres = hourly(CFG.min_history_days - 2)
    baseline = fit_baseline(ends, litres, SH, ends[-1], CFG)
    assert baseline == population_baseline(CFG)
    assert baseline.source == "population" and baseline.days == 0
    assert baseline.first_use_min == CFG.default_first_use_h * 60
    # asleep from 22:30: at 06:00 the usual gap is 7.5 h; daytime gaps are the default 5 h
    assert baseline.silence_h[6] == 7.5 and baseline.silence_h[15] == CFG.default_day_gap_h
    assert math.isclose(sum(baseline.hourly_mean_l[:24]), CFG.default_daily_l)
    assert fit_baseline([], [], SH, START, CFG).source == "population"


def test_only_the_history_window_before_now_counts() -> None:
    ends, litres = hourly(90)
    now = ends[-1]
    baseline = fit_baseline(ends, litres, SH, now, CFG)
    assert baseline.days <= CFG.history_days
    later = fit_baseline(ends, litres, SH, ends[30 * 24], CFG)  # 30 days in: only those
    assert 28 <= later.days <= 30


def test_an_absence_is_left_out_of_the_usual_gaps() -> None:
    ends, litres = hourly(28)
    for i in range(10 * 24 + 22, 13 * 24 + 7):  # away from day 10 22:00 to day 13 07:00
        litres[i] = 0.0
    baseline = fit_baseline(ends, litres, SH, ends[-1], CFG)
    assert baseline.silence_h[14] == 2.0 and baseline.silence_h[6] == 9.0
    with_it = fit_baseline(ends, litres, SH, ends[-1], replace(CFG, absence_h=100.0))
    assert with_it.silence_h[14] > 24


def test_missing_hours_are_not_silence() -> None:
    litres = np.array([5, 0, 0, np.nan, 0, 5, 0, 0], dtype=float)
    since = hours_since_use(litres, 0.5)
    assert list(since[:3]) == [0, 1, 2]
    assert np.isnan(since[3]) and np.isnan(since[4])  # after a missing hour: unknown
    assert list(since[5:]) == [0, 1, 2]


def test_hour_grid_and_daily_totals_skip_partial_days() -> None:
    ends, litres = hourly(3)
    kept = [(t, v) for t, v in zip(ends, litres, strict=True) if t.hour != 12]  # 1 h missing a day
    grid = hour_grid([t for t, _ in kept], [v for _, v in kept], SH, ends[0],
                     ends[-1] - timedelta(hours=5))
    assert len(grid) == 3 * 24 - 5 and int(np.isnan(grid.litres).sum()) == 3
    days = daily_totals(grid)
    assert [d for d, _ in days] == [START.date(), (START + timedelta(days=1)).date()]
    assert days[0][1] == sum(DAY) - DAY[11]  # the hour ending 12:00 was not reported


def test_baseline_round_trips_through_json_with_no_usual_morning() -> None:
    pattern = DAY.copy()
    ends, litres = hourly(28, pattern)
    for day in range(0, 28, 4):  # every fourth day nothing at all: no usual first use
        for h in range(24):
            litres[day * 24 + h] = 0.0
    baseline = fit_baseline(ends, litres, SH, ends[-1], CFG)
    assert math.isinf(baseline.first_use_min) and baseline.late_deadline_min(CFG) is None
    data = baseline.to_json()
    assert data["first_use_min"] is None
    assert WaterBaseline.from_json(data) == baseline


def test_unusual_day_ranking_puts_a_silent_day_on_top() -> None:
    ends, litres = hourly(35)
    rng = np.random.default_rng(3)
    litres = [v * rng.uniform(0.8, 1.2) for v in litres]
    for h in range(30 * 24 + 8, 30 * 24 + 24):  # day 30: nothing after 08:00
        litres[h] = 0.0
    grid = hour_grid(ends, litres, SH)
    baseline = fit_baseline(ends[: 29 * 24], litres[: 29 * 24], SH, ends[29 * 24 - 1], CFG)
    scores = dict(unusual_day_scores(grid, baseline, CFG))
    silent = (START + timedelta(days=30)).date()
    assert max(scores, key=lambda d: scores[d]) == silent
    assert min(scores.values()) >= 0 and max(scores.values()) <= 1
    assert unusual_day_scores(grid.slice(0, 24 * 10), baseline, CFG) == []


def test_times_are_utc_inside_the_grid() -> None:
    ends, litres = hourly(2)
    grid = hour_grid(ends, litres, SH)
    assert grid.ends[0].to_pydatetime() == ends[0].astimezone(UTC)
    assert grid.hour[0] == 1 and grid.hour_of_week[0] == 24  # Tuesday 00-01
