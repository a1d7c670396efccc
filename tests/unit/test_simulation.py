"""The simulator's pure parts: water use, incidents, sensors, payloads and the clock."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from bench import reference_data
from cityops.simulation.clock import SimClock
from cityops.simulation.incidents import (
    FLOODNET_SHAPE,
    FloodShape,
    IncidentPlan,
    default_incident_plan,
    plan_incident,
)
from cityops.simulation.telemetry import (
    SimDevice,
    device_values,
    encode_telemetry,
    grid_times,
    reading_times,
)
from cityops.simulation.water_use import household_rhythm

TZ = ZoneInfo("Asia/Shanghai")


DAY0 = datetime(2025, 3, 3, tzinfo=TZ)  # a Monday, local midnight


QUARTER = timedelta(minutes=15)


MINUTE = timedelta(minutes=1)


ELDER = SimDevice("wm-elder", "water_meter", "hh-elder", elderly_alone=True, members=1)


FAMILY = SimDevice("wm-family", "water_meter", "hh-family", elderly_alone=False, members=3)


GAUGE = SimDevice("fg-1", "flood_gauge")


COVER = SimDevice("mc-1", "manhole_cover")


FLOODNET_CSV = reference_data("floodnet", "flood-events-2020-2024.csv")


def _series(
    device: SimDevice, after: datetime, until: datetime, plans: list[IncidentPlan], seed: int = 1
) -> list[tuple[datetime, dict[str, float]]]:
    times = reading_times(device.kind, after, until, plans)
    return [(ts, device_values(device, ts, seed=seed, tz=TZ, incidents=plans)) for ts in times]


def test_water_use_has_an_elderly_daily_rhythm() -> None:
    days = 28
    for n in range(5):
        meter = SimDevice(f"wm-{n}", "water_meter", elderly_alone=True)
        by_hour: Counter[int] = Counter()
        for ts, values in _series(meter, DAY0, DAY0 + timedelta(days=days), []):
            by_hour[(ts - QUARTER).astimezone(TZ).hour] += values["volume_l"] / days
        assert max(by_hour, key=by_hour.__getitem__) in {6, 7, 8}, by_hour
        night = sum(by_hour[h] for h in range(1, 5)) / 4
        midday = by_hour[11] + by_hour[12]
        evening = by_hour[17] + by_hour[18] + by_hour[19]
        assert night < 2.0 and midday > 3 * night and evening > 3 * night
        assert 40 < sum(by_hour.values()) < 180  # litres a day


def test_households_differ_and_days_differ() -> None:
    peaks = [household_rhythm(1, f"wm-{n}").morning_peak_h for n in range(30)]
    assert max(peaks) - min(peaks) > 0.5
    assert all(6.0 <= p <= 8.25 for p in peaks)
    daily = Counter[str]()
    for ts, values in _series(ELDER, DAY0, DAY0 + timedelta(days=14), []):
        daily[(ts - QUARTER).astimezone(TZ).date().isoformat()] += values["volume_l"]
    assert max(daily.values()) > 1.3 * min(daily.values())
    family = sum(v["volume_l"] for _, v in _series(FAMILY, DAY0, DAY0 + timedelta(days=14), []))
    assert family > 2 * sum(daily.values())


def test_silent_morning_reports_zero_litres_through_its_window() -> None:
    plan = plan_incident("silent_morning", ELDER.id, DAY0 + timedelta(hours=12), seed=1, tz=TZ)
    assert plan.starts_at.astimezone(TZ) == DAY0.replace(hour=21, minute=40)
    assert plan.ends_at - plan.starts_at == timedelta(hours=14)
    window = _series(ELDER, plan.starts_at, plan.ends_at, [plan])
    assert len(window) == 14 * 4  # the meter keeps reporting
    assert all(values["volume_l"] == 0.0 for ts, values in window if ts - QUARTER >= plan.starts_at)
    morning = (plan.starts_at + timedelta(hours=9), plan.ends_at)  # 06:40-11:40 next day
    usual = _series(ELDER, *morning, [])
    assert sum(v["volume_l"] for _, v in usual) > 10  # the same morning without the incident
    after = _series(ELDER, plan.ends_at, plan.ends_at + timedelta(hours=8), [plan])
    assert sum(v["volume_l"] for _, v in after) > 0


def test_running_tap_adds_six_to_ten_litres_every_interval() -> None:
    at = DAY0 + timedelta(hours=1)
    plan = plan_incident("running_tap", FAMILY.id, at, seed=1, tz=TZ)
    assert plan.ends_at - plan.starts_at == timedelta(hours=4)
    litres = [v["volume_l"] for _, v in _series(FAMILY, at, plan.ends_at, [plan])]
    assert len(litres) == 16 and all(v >= 6.0 for v in litres)


def test_street_flood_rises_to_its_peak_then_drains_to_nothing() -> None:
    at = DAY0 + timedelta(hours=15)
    plan = plan_incident("street_flood", GAUGE.id, at, seed=4, tz=TZ)
    d = plan.details
    assert 200 <= d["peak_mm"] <= 500 and 20 <= d["rise_min"] <= 40 and 60 <= d["drain_min"] <= 120
    series = _series(GAUGE, at - MINUTE, plan.ends_at + timedelta(minutes=30), [plan])
    depths = [v["depth_mm"] for _, v in series]
    top = max(range(len(depths)), key=depths.__getitem__)
    peak_after = series[top][0] - at
    assert abs(depths[top] - d["peak_mm"]) < 25
    assert abs(peak_after - timedelta(minutes=d["rise_min"])) <= timedelta(minutes=5)
    assert depths[0] < 10
    assert all(v["depth_mm"] < 10 for ts, v in series if ts >= plan.ends_at)
    rising = depths[1:top]
    assert sum(b >= a for a, b in pairwise(rising)) > 0.8 * len(rising)


def test_flood_gauge_at_rest_is_noise_with_rare_spikes() -> None:
    series = _series(GAUGE, DAY0, DAY0 + timedelta(days=3), [])
    depths = [v["depth_mm"] for _, v in series]
    assert len(depths) == 3 * 1440
    quiet = [v for v in depths if v < 10]
    assert len(quiet) > 0.99 * len(depths) and quiet.count(0.0) > 0.5 * len(depths)
    spikes = [i for i, v in enumerate(depths) if v >= 10]
    assert spikes, "expected at least one spike in three days"
    assert all(depths[i - 1] < 10 and depths[i + 1] < 10 and depths[i] >= 300 for i in spikes)


def test_lifted_cover_reports_at_once_and_at_the_end() -> None:
    at = DAY0 + timedelta(hours=3, minutes=7, seconds=12)
    plan = plan_incident("lifted_cover", COVER.id, at, seed=1, tz=TZ)
    series = dict(_series(COVER, DAY0 + timedelta(hours=2), DAY0 + timedelta(hours=6), [plan]))
    assert plan.starts_at in series and plan.ends_at in series
    for ts, values in series.items():
        if plan.active_at(ts):
            assert values["lifted"] == 1 and 55 <= values["tilt_deg"] <= 90
        else:
            assert values["lifted"] == 0 and values["tilt_deg"] <= 3


def test_battery_is_reported_every_six_hours() -> None:
    for device in (ELDER, GAUGE, COVER):
        series = _series(device, DAY0, DAY0 + timedelta(days=2), [])
        battery = [(ts, v["battery_pct"]) for ts, v in series if "battery_pct" in v]
        assert len(battery) == 8
        assert all(20 <= pct <= 100 for _, pct in battery)
        assert {b[0] - a[0] for a, b in pairwise(battery)} == {timedelta(hours=6)}


def test_same_seed_and_clock_give_the_same_payloads() -> None:
    plans = [
        plan_incident("street_flood", GAUGE.id, DAY0 + timedelta(hours=2), seed=9, tz=TZ),
        plan_incident("lifted_cover", COVER.id, DAY0 + timedelta(hours=5), seed=9, tz=TZ),
        plan_incident("running_tap", ELDER.id, DAY0 + timedelta(hours=8), seed=9, tz=TZ),
    ]

    def payloads(seed: int) -> list[bytes]:
        return [
            encode_telemetry(_series(device, DAY0, DAY0 + timedelta(days=1), plans, seed=seed))
            for device in (ELDER, FAMILY, GAUGE, COVER)
        ]

    assert payloads(9) == payloads(9)
    assert payloads(9) != payloads(10)
    assert plans[0] == plan_incident("street_flood", GAUGE.id, plans[0].starts_at, seed=9, tz=TZ)


def test_readings_do_not_depend_on_how_time_is_stepped() -> None:
    whole = reading_times("flood_gauge", DAY0, DAY0 + timedelta(hours=1))
    cuts = [DAY0 + timedelta(seconds=s) for s in (0, 37, 600, 601, 1800, 3600)]
    pieces = [t for a, b in pairwise(cuts) for t in grid_times(MINUTE, a, b)]
    assert pieces == whole and len(whole) == 60


def test_payload_format() -> None:
    one = json.loads(encode_telemetry([(DAY0, {"volume_l": 1.5})]))
    assert one == {"ts": "2025-03-02T16:00:00+00:00", "values": {"volume_l": 1.5}}
    two = [(DAY0, {"depth_mm": 0.0}), (DAY0 + MINUTE, {"depth_mm": 3.0})]
    many = json.loads(encode_telemetry(two))
    assert [m["ts"] for m in many] == ["2025-03-02T16:00:00+00:00", "2025-03-02T16:01:00+00:00"]


def test_sim_clock_catches_up_then_runs_in_real_time() -> None:
    real = [datetime(2025, 3, 3, 12, 0, tzinfo=UTC)]
    clock = SimClock.catch_up(timedelta(hours=24), speed=3600, real_now=lambda: real[0])
    assert clock.now() == real[0] - timedelta(hours=24)
    real[0] += timedelta(seconds=10)
    assert clock.now() == clock.start + timedelta(hours=10) and not clock.caught_up()
    real[0] += timedelta(seconds=20)  # 30 h simulated would pass the real clock
    assert clock.now() == real[0] and clock.caught_up()
    real[0] += timedelta(seconds=5)
    assert clock.now() == real[0]
    with pytest.raises(ValueError):
        SimClock(real[0] + timedelta(seconds=1), real_now=lambda: real[0])


def test_default_incident_plan_covers_every_kind() -> None:
    devices = [ELDER, FAMILY, GAUGE, COVER, SimDevice("fg-2", "flood_gauge")]
    start = DAY0 + timedelta(hours=9)
    plan = default_incident_plan(devices, start, seed=3, tz=TZ)
    by_kind = {p.kind: p for p in plan}
    assert set(by_kind) == {"street_flood", "lifted_cover", "running_tap", "silent_morning"}
    assert by_kind["silent_morning"].device_id == ELDER.id
    assert by_kind["running_tap"].device_id == FAMILY.id
    assert by_kind["silent_morning"].starts_at.astimezone(TZ) == DAY0.replace(hour=21, minute=40)
    assert all(start < p.starts_at < start + timedelta(hours=13) for p in plan)
    assert plan == default_incident_plan(devices, start, seed=3, tz=TZ)
    assert default_incident_plan([GAUGE], start, seed=3, tz=TZ)[0].kind == "street_flood"


def test_incident_plan_is_validated() -> None:
    with pytest.raises(ValueError):
        IncidentPlan("street_flood", GAUGE.id, DAY0, DAY0)
    with pytest.raises(ValueError):
        IncidentPlan("earthquake", GAUGE.id, DAY0, DAY0 + MINUTE)  # type: ignore[arg-type]


@pytest.mark.skipif(not FLOODNET_CSV.is_file(), reason="FloodNet reference data not present")
def test_flood_shape_comes_from_the_real_floodnet_event() -> None:
    with FLOODNET_CSV.open(newline="") as f:
        row = next(
            r
            for r in csv.DictReader(f)
            if r["sensor_id"] == "SI-grimsby-st-mapleton-ave-1de5w0"
            and r["flood_start_time"].startswith("2024-07-05T23:48:14")
        )
    shape = FloodShape.from_profile(
        json.loads(row["flood_profile_depth_inches"]),
        json.loads(row["flood_profile_time_secs"]),
        FLOODNET_SHAPE.source,
    )
    assert shape == FLOODNET_SHAPE

