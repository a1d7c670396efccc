"""Flood gauges and manhole covers: cleaning, levels with hysteresis, rate of rise and forecast,
device faults, cover rules, and their wiring to settings and per-device config (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cityops.app.street_rules import flood_params, gauge_levels, street_rules
from cityops.platform.settings import DetectionSettings, Settings, StreetSettings
from cityops.sensing.detection import LOOKBACK, DeviceInfo, Window
from cityops.sensing.readings import METRICS
from models.decisions import Decision
from models.street import (
    FloodParams,
    clean_depths,
    flood_depth,
    gauge_fault,
    manhole_cover,
    manhole_water,
    river_levels,
    street_levels,
    trend,
)

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
SH = ZoneInfo("Asia/Shanghai")
LEVELS = street_levels()  # 150 / 270 / 500 mm


def minutes(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=i) for i in range(n)]


def replay(depths: list[float], lookback: timedelta = LOOKBACK["flood_gauge"]) -> list[Decision]:
    """Every reading through flood_depth on the pipeline's window, with the alert lifecycle:
    the decisions that opened an alert, repeated it or resolved it."""
    times = minutes(len(depths))
    acted: list[Decision] = []
    open_alert = False
    for i, now in enumerate(times):
        lo = next(j for j, t in enumerate(times) if t > now - lookback)
        d = flood_depth(times[lo:i + 1], depths[lo:i + 1], LEVELS, "Xizang Rd underpass")
        if d is None or (d.action == "clear" and not open_alert):
            continue
        open_alert = d.action == "raise"
        acted.append(d)
    return acted


def opened(acted: list[Decision]) -> int:
    """Alerts opened: raises that follow nothing or a clear."""
    return sum(1 for i, d in enumerate(acted)
               if d.action == "raise" and (i == 0 or acted[i - 1].action == "clear"))


# --- cleaning -------------------------------------------------------------------------------

def test_noise_floor_and_isolated_spike_are_not_water() -> None:
    clean = clean_depths(minutes(8), [4, 0, 9, 120, 3, 0, 6, 0])
    assert clean.values[:3] == [0.0, 0.0, 0.0]  # under 10 mm is dry
    assert clean.status[3] == "spike"  # 120 mm for one reading, then back
    assert clean.trusted()[1] == [0.0] * 7


def test_newest_big_step_waits_for_the_next_reading() -> None:
    clean = clean_depths(minutes(5), [0, 0, 0, 0, 120])
    assert clean.status[-1] == "pending"
    kept = clean_depths(minutes(6), [0, 0, 0, 0, 120, 130])
    assert kept.status[-2:] == ["ok", "ok"]  # it stayed up: a real rise, not a spike


def test_impossible_jump_is_dropped_unless_the_new_level_holds() -> None:
    short = clean_depths(minutes(6), [0, 0, 0, 800, 820, 0])
    assert short.status[3:5] == ["jump", "jump"]  # faster than 10 in/min, two readings
    held = clean_depths(minutes(9), [0, 0, 0, 800, 810, 805, 800, 812, 808])
    assert held.status[3:8] == ["ok"] * 5  # five readings agree: the level really moved


def test_a_jump_after_a_gap_in_the_readings_is_plausible() -> None:
    times = [*minutes(3), T0 + timedelta(minutes=12)]
    clean = clean_depths(times, [0, 0, 0, 400])  # 400 mm in 10 min: 40 mm/min
    assert clean.status[-1] == "pending" and clean.count("jump") == 0


def test_a_stuck_gauge_is_a_device_fault_not_a_flood() -> None:
    stuck = gauge_fault(minutes(25), [312.0] * 25, "Gauge A")
    assert stuck is not None and stuck.kind == "gauge_fault" and stuck.action == "raise"
    assert "stuck at 312 mm" in stuck.message and "not a flood" in stuck.message
    dry = gauge_fault(minutes(25), [0.0] * 25, "Gauge A")
    assert dry is None  # a dry street reads 0 all day
    short = gauge_fault(minutes(10), [312.0] * 10, "Gauge A")
    assert short is None or short.action != "raise"  # not yet 20 minutes
    moving = gauge_fault(minutes(25), [312.0] * 24 + [318.0], "Gauge A")
    assert moving is not None and moving.action == "clear"


def test_wiring_reports_the_fault_instead_of_a_flood() -> None:
    evaluate = street_rules(Settings())
    gauge = DeviceInfo("FG1", "flood_gauge", "Gauge A", "0" * 15, 121.0, 31.0, {})
    times = minutes(25)
    decisions = evaluate(gauge, Window({"depth_mm": times}, {"depth_mm": [312.0] * 25}))
    assert [(d.kind, d.action) for d in decisions] == [("gauge_fault", "raise")]


# --- levels, hysteresis, rate and forecast ---------------------------------------------------

def flood_event() -> list[float]:
    """Dry, a rise to 560 mm with a dip and a spike on the way, a drain, dry again."""
    rise = [0.0] * 10 + [10.0 * i for i in range(1, 57)]  # 10 mm/min up to 560 mm
    rise[40] = 900.0  # an ultrasonic spike near the top
    dip = [150.0, 120.0, 110.0, 120.0, 160.0]  # under the first level, not under the clear one
    drain = [max(560.0 - 20.0 * i, 0.0) for i in range(1, 30)]
    return rise + [560.0] * 5 + drain[:15] + dip + drain[15:] + [0.0] * 20


def test_one_alert_per_event_severity_climbs_and_it_resolves_after_the_drain() -> None:
    acted = replay(flood_event())
    assert opened(acted) == 1
    raises = [d for d in acted if d.action == "raise"]
    severities = [d.severity for d in raises]
    assert severities[0] == "medium" and "high" in severities and severities[-1] != "low"
    assert "critical" in severities
    order = ["medium", "high", "critical"]
    first_of = [severities.index(s) for s in order]
    assert first_of == sorted(first_of)  # medium, then high, then critical
    assert acted[-1].action == "clear"
    # cleared only after 10 min under the clear level (75 mm)
    last_wet = max(i for i, v in enumerate(flood_event()) if v >= 75)
    cleared_at = acted[-1].observed_at
    assert cleared_at - minutes(len(flood_event()))[last_wet] >= timedelta(minutes=10)


def test_raise_at_the_first_reading_over_the_level_and_the_message() -> None:
    depths = [0.0] * 5 + [20.0 * i for i in range(1, 9)]  # 20, ..., 160 mm
    acted = replay(depths)
    first = acted[0]
    assert first.action == "raise" and first.observed_at == minutes(13)[-1]  # at 160 mm
    assert first.message.startswith(
        "Water 160 mm deep at Xizang Rd underpass (level 1 of 3: 150 mm), rising 20 mm/min; "
        "270 mm expected about 06:")
    assert first.details["next_level_mm"] == 270.0


def test_forecast_is_robust_to_a_spike_and_shown_in_local_time() -> None:
    times = minutes(11)
    depths = [170.0 + 6.0 * i for i in range(11)]  # 230 mm now, rising 6 mm/min
    depths[5] = 600.0  # a spike must not bend the line
    d = flood_depth(times, depths, LEVELS, "X", tz=SH)
    assert d is not None and d.action == "raise"
    assert d.details["rise_mm_per_min"] == pytest.approx(6.0, abs=0.5)
    # 270 mm is 40 mm away at 6 mm/min: about 6.7 min after 14:10 local
    assert d.message == ("Water 230 mm deep at X (level 1 of 3: 150 mm), rising 6 mm/min; "
                         "270 mm expected about 14:16")


def test_no_forecast_when_steady_or_beyond_the_horizon() -> None:
    times = minutes(11)
    steady = trend(times, [200.0] * 11, times[-1], LEVELS)
    assert steady.next_level_at is None and steady.rise_mm_per_min == 0
    slow = trend(times, [160.0 + 1.5 * i for i in range(11)], times[-1], LEVELS)
    assert slow.next_level_mm == 270.0 and slow.next_level_at is None  # 63 min > 60 min away


def test_river_stage_scheme() -> None:
    river = river_levels([1000, 1500, 2000, 3000])
    d = flood_depth(minutes(5), [1600.0] * 5, river, "Suzhou Creek gauge")
    assert d is not None and d.severity == "medium"
    assert "(minor flood stage: 1500 mm)" in d.message
    low = flood_depth(minutes(5), [1050.0] * 5, river, "Suzhou Creek gauge")
    assert low is not None and low.severity == "low" and "action flood stage" in low.message
    with pytest.raises(ValueError, match="4 stages"):
        river_levels([1000, 2000])
    with pytest.raises(ValueError, match="increasing"):
        street_levels([300, 200])


def test_levels_and_parameters_from_settings_and_device_config() -> None:
    limits = DetectionSettings()
    assert gauge_levels(limits).mm == (150.0, 270.0, 500.0)
    assert gauge_levels(limits, {"threshold_mm": 200}).mm == (200.0, 270.0, 500.0)
    assert gauge_levels(limits, {"threshold_mm": 300}).mm == (300.0, 500.0)
    assert gauge_levels(limits, {"levels_mm": [100, 400]}).severities == ("high", "critical")
    river = gauge_levels(limits, {"scheme": "river", "river_stages_mm": [800, 1200, 1600, 2400]})
    assert river.scheme == "river" and river.mm[0] == 800.0
    with pytest.raises(ValueError, match="scheme"):
        gauge_levels(limits, {"scheme": "lake"})
    params = flood_params(StreetSettings(), {"clear_minutes": 15, "spike_mm": 80})
    assert params.clear_minutes == 15 and params.cleaning.spike_mm == 80
    assert flood_params(StreetSettings()) == FloodParams()  # the documented defaults agree
    assert flood_params(StreetSettings(), {"scheme": "river"}).clear_fraction == 0.9
    assert flood_params(StreetSettings(), {"scheme": "river", "clear_fraction": 0.8}) \
        .clear_fraction == 0.8


def test_a_bad_device_config_falls_back_to_the_defaults() -> None:
    evaluate = street_rules(Settings())
    gauge = DeviceInfo("FG2", "flood_gauge", "Gauge B", "0" * 15, 121.0, 31.0,
                       {"scheme": "lake"})
    times = minutes(5)
    decisions = evaluate(gauge, Window({"depth_mm": times}, {"depth_mm": [160.0] * 5}))
    assert [(d.kind, d.severity) for d in decisions] == [("flood_depth", "medium")]


# --- manhole covers ----------------------------------------------------------------------

def test_manhole_tilt_default_is_10_degrees() -> None:
    assert DetectionSettings().manhole_tilt_deg == 10.0
    evaluate = street_rules(Settings())
    cover = DeviceInfo("MC1", "manhole_cover", "Cover C", "0" * 15, 121.0, 31.0, {})
    t = minutes(2)
    tilted = evaluate(cover, Window({"tilt_deg": t, "lifted": t},
                                    {"tilt_deg": [1.0, 11.0], "lifted": [0.0, 0.0]}))
    assert [(d.kind, d.action, d.severity) for d in tilted] == [("manhole_tilt", "raise", "high")]
    assert "tilted 11° at Cover C (alert at 10°)" in tilted[0].message
    own = DeviceInfo("MC2", "manhole_cover", "Cover D", "0" * 15, 121.0, 31.0, {"tilt_deg": 20})
    assert evaluate(own, Window({"tilt_deg": t, "lifted": t},
                                {"tilt_deg": [1.0, 11.0], "lifted": [0.0, 0.0]})) == []


def test_manhole_lifted_or_displaced_and_back_with_hysteresis() -> None:
    t = minutes(2)
    lifted = manhole_cover(t, [1.0, 2.0], [0.0, 1.0], 10, "Cover C")
    assert lifted is not None and lifted.severity == "critical"
    assert "lifted or displaced" in lifted.message
    assert manhole_cover(t, [12.0, 7.0], [0.0, 0.0], 10, "Cover C", clear_deg=5) is None
    back = manhole_cover(t, [12.0, 3.0], [0.0, 0.0], 10, "Cover C", clear_deg=5)
    assert back is not None and back.action == "clear"


def test_water_in_the_well() -> None:
    assert "well_water_mm" in METRICS["manhole_cover"]
    t = minutes(2)
    wet = manhole_water(t, [0.0, 420.0], 300, "Cover C")
    assert wet is not None and wet.kind == "manhole_water" and wet.severity == "high"
    assert wet.message.startswith("Water 420 mm deep in the well under the manhole cover")
    assert manhole_water(t, [0.0, 650.0], 300, "Cover C").severity == "critical"
    assert manhole_water(t, [400.0, 200.0], 300, "Cover C") is None  # between the levels
    dry = manhole_water(t, [400.0, 100.0], 300, "Cover C")
    assert dry is not None and dry.action == "clear"
    evaluate = street_rules(Settings())
    cover = DeviceInfo("MC3", "manhole_cover", "Cover E", "0" * 15, 121.0, 31.0,
                       {"well_water_mm": 500})
    window = Window({"tilt_deg": t, "lifted": t, "well_water_mm": t},
                    {"tilt_deg": [1.0, 1.0], "lifted": [0.0, 0.0],
                     "well_water_mm": [0.0, 420.0]})
    assert [d.kind for d in evaluate(cover, window) if d.action == "raise"] == []
