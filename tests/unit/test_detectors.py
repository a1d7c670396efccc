"""The first detectors (pure functions in models.street and models.water_use)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from models.street import flood_depth, manhole_cover
from models.water_use import water_running, water_silence

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai


def minutes(n: int, step: int = 1) -> list[datetime]:
    return [T0 + timedelta(minutes=i * step) for i in range(n)]


def test_flood_raises_on_sustained_depth_not_on_a_spike() -> None:
    times = minutes(10)
    spike = [3, 4, 2, 5, 3, 4, 3, 900, 4, 3]
    quiet = flood_depth(times, spike, 150, "X underpass")
    assert quiet is not None and quiet.action == "clear"  # median 4 mm: nothing to raise
    rising = [0, 20, 60, 100, 140, 180, 220, 260, 300, 320]
    decision = flood_depth(times, rising, 150, "X underpass")
    assert decision is not None and decision.action == "raise"
    # the newest trusted reading (320 mm), no longer the 5-minute median (260 mm), sets the level
    assert decision.kind == "flood_depth" and decision.severity == "high"  # 270 <= 320 < 500 mm
    assert decision.message.startswith("Water 320 mm deep at X underpass (level 2 of 3: 270 mm)")
    assert "rising" in decision.message


def test_flood_severity_levels_and_clear() -> None:
    times = minutes(5)
    assert flood_depth(times, [160] * 5, 150, "g").severity == "medium"
    assert flood_depth(times, [600] * 5, 150, "g").severity == "critical"
    cleared = flood_depth(times, [40] * 5, 150, "g")
    assert cleared is not None and cleared.action == "clear"
    assert flood_depth(times, [100] * 5, 150, "g") is None  # between: no change
    assert flood_depth(times[:2], [900, 900], 150, "g") is None  # too few readings


def test_manhole_lifted_tilted_and_back() -> None:
    t = minutes(2)
    assert manhole_cover(t, [2, 70], [0, 1], 15, "Y").severity == "critical"
    tilted = manhole_cover(t, [2, 30], [0, 0], 15, "Y")
    assert tilted.severity == "high" and "tilted 30°" in tilted.message
    assert manhole_cover(t, [30, 1], [0, 0], 15, "Y").action == "clear"


def test_silent_morning_reads_as_a_plain_sentence() -> None:
    # readings every 15 min from 20:00 local; last use 21:40 local, then zeros until 10:30
    start = datetime(2026, 11, 19, 20, 0, tzinfo=SH)
    times = [start + timedelta(minutes=15 * i) for i in range(60)]
    last_use = datetime(2026, 11, 19, 21, 45, tzinfo=SH)
    volumes = [5.0 if t <= last_use else 0.0 for t in times]
    decision = water_silence(times, volumes, timedelta(hours=10), SH)
    assert decision is not None and decision.action == "raise"
    assert decision.message.startswith("No water used since 21:45 (")
    assert "(13 h)" in decision.message
    assert decision.severity == "medium"  # 13 h: 1.3 x the 10 h limit
    assert decision.details["gap_minutes"] == 13 * 60
    longer = water_silence([*times, times[-1] + timedelta(hours=3)], [*volumes, 0.0],
                           timedelta(hours=10), SH)
    assert longer is not None and longer.severity == "high"  # 16 h: 1.6 x


def test_silence_below_limit_and_clear_on_use() -> None:
    times = minutes(8, 15)
    assert water_silence(times, [0.0] * 8, timedelta(hours=10), SH) is None
    used = water_silence(times, [0.0] * 7 + [3.0], timedelta(hours=10), SH)
    assert used is not None and used.action == "clear"


def test_running_tap_raises_after_the_limit_and_is_urgent_at_night() -> None:
    night = datetime(2026, 11, 20, 1, 0, tzinfo=SH)
    times = [night + timedelta(minutes=15 * i) for i in range(20)]
    volumes = [0.0] * 4 + [8.0] * 16  # 4 h of flow
    decision = water_running(times, volumes, timedelta(hours=3), SH)
    assert decision is not None and decision.action == "raise" and decision.severity == "high"
    assert "Water running without a break for 4 h" in decision.message
    short = water_running(times[:10], volumes[:10], timedelta(hours=3), SH)
    assert short is None
    stopped = water_running(times, [*volumes[:-1], 0.0], timedelta(hours=3), SH)
    assert stopped is not None and stopped.action == "clear"
