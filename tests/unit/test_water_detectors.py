"""Water-use detectors (models.water_use) on synthetic 15-minute series, and the evaluator with
the default settings and no database (population defaults)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cityops.app.water_rules import water_config, water_rules
from cityops.platform.settings import Settings
from cityops.sensing.detection import DeviceInfo, Window
from models.water_baselines import WaterBaseline, population_baseline
from models.water_use import (
    late_morning,
    long_silence,
    running_min_l,
    silence_rules,
    slow_decline,
    water_running,
)

SH = ZoneInfo("Asia/Shanghai")
CFG = water_config(Settings())
STEP = timedelta(minutes=15)


def household(first_use_min: float = 7 * 60 + 10, night_h: float = 9.0,
              day_h: float = 3.0, daily_l: float = 100.0) -> WaterBaseline:
    """A household's baseline: first use by ``first_use_min``, usual gaps ``night_h`` in the
    early morning (02-08) and ``day_h`` otherwise."""
    silence = tuple(night_h if 2 <= h <= 8 else day_h for h in range(24))
    return replace(population_baseline(CFG), source="household", days=56,
                   first_use_min=first_use_min, silence_h=silence, daily_l=daily_l)


def series(start: datetime, end: datetime, uses: dict[datetime, float],
           step: timedelta = STEP) -> tuple[list[datetime], list[float]]:
    """Readings every ``step`` from ``start`` to ``end`` (inclusive), 0 L but at ``uses``."""
    times = []
    t = start
    while t <= end:
        times.append(t)
        t += step
    return times, [uses.get(t, 0.0) for t in times]


def test_late_morning_reads_as_the_example_sentence() -> None:
    last_use = datetime(2026, 11, 19, 21, 40, tzinfo=SH)
    times, volumes = series(datetime(2026, 11, 19, 18, 10, tzinfo=SH),
                            datetime(2026, 11, 20, 10, 30, tzinfo=SH), {last_use: 6.0},
                            timedelta(minutes=5))
    decision = late_morning(times, volumes, household(), CFG, SH)
    assert decision is not None and decision.action == "raise"
    assert decision.kind == "water_silence" and decision.details["rule"] == "late_morning"
    assert decision.message == ("No water used since 21:40 (12 h 50 min); usually first used"
                                " by 07:10")
    # before the usual time plus the margin: nothing yet
    early = [t for t in times if t <= datetime(2026, 11, 20, 8, 0, tzinfo=SH)]
    assert late_morning(early, volumes[: len(early)], household(), CFG, SH) is None
    # used this morning: no late morning
    used = [*volumes[:-20], 3.0, *volumes[-19:]]
    assert late_morning(times, used, household(), CFG, SH) is None


def test_no_late_morning_rule_for_a_household_without_a_usual_morning() -> None:
    times, volumes = series(datetime(2026, 11, 19, 20, 0, tzinfo=SH),
                            datetime(2026, 11, 20, 11, 0, tzinfo=SH), {})
    assert late_morning(times, volumes, household(first_use_min=float("inf")), CFG, SH) is None
    assert late_morning(times, volumes, household(first_use_min=11.5 * 60), CFG, SH) is None


def test_long_silence_uses_the_usual_gap_of_the_hour_and_grows_in_severity() -> None:
    base = household(day_h=5.0 - CFG.silence_margin_h)  # limit at 15:00: 5 h with the margin
    last_use = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
    start = datetime(2026, 11, 20, 6, 0, tzinfo=SH)
    at = {last_use: 5.0}
    short = series(start, datetime(2026, 11, 20, 14, 45, tzinfo=SH), at)
    assert long_silence(*short, base, CFG, SH) is None  # 4 h 45 min < 5 h
    over = long_silence(*series(start, datetime(2026, 11, 20, 15, 15, tzinfo=SH), at),
                        base, CFG, SH)
    assert over is not None and over.severity == "medium"
    assert over.message == ("No water used since 10:00 (5 h 15 min); usually never more than"
                            " 5 h without water at this time of day")
    assert over.details["limit_minutes"] == 300 and over.details["rule"] == "long_silence"
    worse = long_silence(*series(start, datetime(2026, 11, 20, 17, 45, tzinfo=SH), at),
                         base, CFG, SH)
    assert worse is not None and worse.severity == "high"  # 7 h 45 min >= 1.5 x 5 h
    worst = long_silence(*series(start, datetime(2026, 11, 20, 20, 0, tzinfo=SH), at),
                         base, CFG, SH)
    assert worst is not None and worst.severity == "critical"  # 10 h >= 2 x 5 h
    back = series(start, datetime(2026, 11, 20, 16, 0, tzinfo=SH),
                  {**at, datetime(2026, 11, 20, 16, 0, tzinfo=SH): 2.0})
    cleared = long_silence(*back, base, CFG, SH)
    assert cleared is not None and cleared.action == "clear"


def test_the_floor_and_the_cap_bound_the_limit() -> None:
    tiny = household(day_h=0.0)
    assert tiny.silence_limit_h(15, CFG) == CFG.silence_floor_h
    huge = household(day_h=30.0)
    assert huge.silence_limit_h(15, CFG) == CFG.silence_cap_h


def test_a_meter_that_stops_reporting_is_not_a_silence() -> None:
    start = datetime(2026, 11, 20, 6, 0, tzinfo=SH)
    times, volumes = series(start, datetime(2026, 11, 20, 20, 0, tzinfo=SH),
                            {datetime(2026, 11, 20, 7, 0, tzinfo=SH): 5.0})
    hole = [(t, v) for t, v in zip(times, volumes, strict=True)
            if not datetime(2026, 11, 20, 12, 0, tzinfo=SH) < t
            < datetime(2026, 11, 20, 17, 0, tzinfo=SH)]
    kept_t, kept_v = [t for t, _ in hole], [v for _, v in hole]
    assert long_silence(times, volumes, household(), CFG, SH) is not None  # 13 h: raised
    # the 5 h hole restarts the clock: 3 h since the meter came back, under the limit
    assert long_silence(kept_t, kept_v, household(), CFG, SH) is None


def test_silence_rules_give_one_decision() -> None:
    last_use = datetime(2026, 11, 19, 21, 40, tzinfo=SH)
    times, volumes = series(datetime(2026, 11, 19, 18, 10, tzinfo=SH),
                            datetime(2026, 11, 20, 10, 30, tzinfo=SH), {last_use: 6.0})
    one = silence_rules(times, volumes, household(night_h=9.0, day_h=9.0), CFG, SH)
    assert one is not None and one.action == "raise" and one.details["rule"] == "late_morning"
    # the long silence is more severe here (12 h 50 min > 1.5 x the 5 h daytime limit)
    worse = silence_rules(times, volumes, household(day_h=3.0), CFG, SH)
    assert worse is not None and worse.details["rule"] == "long_silence"
    assert worse.severity == "critical"
    times2, volumes2 = series(datetime(2026, 11, 20, 8, 0, tzinfo=SH),
                              datetime(2026, 11, 20, 9, 0, tzinfo=SH),
                              {datetime(2026, 11, 20, 9, 0, tzinfo=SH): 2.0})
    cleared = silence_rules(times2, volumes2, household(), CFG, SH)
    assert cleared is not None and cleared.action == "clear"


def test_running_water_scales_its_minimum_to_the_meter_interval() -> None:
    night = datetime(2026, 11, 20, 1, 0, tzinfo=SH)
    hourly = [night + timedelta(hours=i) for i in range(5)]
    assert running_min_l(1.0, hourly) == 4.0
    assert running_min_l(1.0, hourly[:1]) == 1.0
    decision = water_running(hourly, [30.0] * 5, timedelta(hours=3), SH,
                             min_flow_l=running_min_l(5.0, hourly))
    assert decision is not None and decision.action == "raise" and decision.severity == "high"
    assert decision.message.startswith("Water running without a break for 5 h (since 00:00)")
    below = water_running(hourly, [15.0] * 5, timedelta(hours=3), SH,
                          min_flow_l=running_min_l(5.0, hourly))
    assert below is not None and below.action == "clear"


def test_slow_decline_needs_consecutive_low_days_against_the_households_own_baseline() -> None:
    base = household(daily_l=100.0)
    now = datetime(2026, 11, 20, 9, 0, tzinfo=SH)
    days = [(date(2026, 11, d), v) for d, v in ((16, 30.0), (17, 35.0), (18, 25.0), (19, 32.0))]
    decision = slow_decline(days, base, CFG, now)
    assert decision is not None and decision.action == "raise" and decision.severity == "low"
    assert decision.kind == "water_decline"
    assert decision.message == ("Water use low for 4 days: about 30 L a day against a usual"
                                " 100 L; a welfare visit in the next days")
    assert slow_decline(days, population_baseline(CFG), CFG, now) is None
    gap = [days[0], days[1], days[3]]
    assert slow_decline(gap, base, CFG, now) is None  # not 4 days in a row
    back = slow_decline([*days[:3], (date(2026, 11, 19), 80.0)], base, CFG, now)
    assert back is not None and back.action == "clear"
    nothing = [*days[:3], (date(2026, 11, 19), 0.0)]
    assert slow_decline(nothing, base, CFG, now) is None  # a day with no water: silence rules


def device(meter_id: str = "WM000001") -> DeviceInfo:
    return DeviceInfo(meter_id, "water_meter", "Water meter", "0" * 15, 121.0, 31.0, {})


def test_the_evaluator_with_default_settings_and_no_database() -> None:
    evaluate = water_rules(Settings())
    last_use = datetime(2026, 11, 19, 21, 45, tzinfo=SH)
    times, volumes = series(datetime(2026, 11, 19, 18, 0, tzinfo=SH),
                            datetime(2026, 11, 20, 10, 0, tzinfo=SH), {last_use: 6.0})
    found = evaluate(device(), Window({"volume_l": times}, {"volume_l": volumes}))
    assert [(d.kind, d.action) for d in found] == [("water_silence", "raise"),
                                                   ("water_running", "clear")]
    silence = found[0]
    # the population's daytime limit (5 h usual + margin) is long past: the long silence is
    # more severe than the late morning (its sentence is tested above)
    assert silence.message.startswith("No water used since 21:45 (12 h 15 min); usually never")
    assert silence.severity == "critical"
    assert silence.details["baseline"] == "population"
    # an ordinary morning on the population defaults raises nothing
    ordinary = {t: 4.0 for t in times if t.astimezone(SH).hour in (7, 8, 9, 12, 18, 19, 20)}
    fine = evaluate(device(), Window({"volume_l": times},
                                     {"volume_l": [ordinary.get(t, 0.0) for t in times]}))
    assert all(d.action == "clear" for d in fine)
    assert evaluate(device(), Window({}, {})) == []
