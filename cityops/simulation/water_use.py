"""The daily water-use rhythm of a household, as litres per 15-minute meter interval.

Use follows the district's local time. Each household has its own rhythm (seeded by its meter id):
when its morning peak comes (about 07:00, the person gets up some 45 minutes before), its smaller
midday and evening peaks, its bedtime and how many litres it uses a day. Each day moves the morning
a little and scales the whole day up or down. Between bedtime and getting up the meter is quiet but
for an occasional night-time toilet flush. Within an interval, use comes in bursts (a gamma draw
around the expected litres), so short intervals are often 0 and some are much larger than average.

An elderly person living alone uses about 90 L a day (55-150); other households about 115 L per
member.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache

from cityops.simulation.seeding import seeded_random

METER_INTERVAL = timedelta(minutes=15)

GETS_UP_BEFORE_PEAK_H = 0.75
MORNING_SHARE, MORNING_SD_H = 0.36, 0.55
MIDDAY_SHARE, MIDDAY_SD_H = 0.18, 0.6
EVENING_SHARE, EVENING_SD_H = 0.28, 0.75
BACKGROUND_SHARE = 0.18  # spread evenly over the waking hours
NIGHT_FLUSH_PROBABILITY = 0.035  # per quiet interval: about one flush a night
NIGHT_FLUSH_LITRES = (4.0, 7.0)


@dataclass(frozen=True, slots=True)
class HouseholdRhythm:
    """A household's usual day, in local hours (7.25 = 07:15) and litres."""

    morning_peak_h: float
    midday_peak_h: float
    evening_peak_h: float
    bedtime_h: float
    daily_litres: float


@dataclass(frozen=True, slots=True)
class DayVariation:
    """How one day differs from the household's usual: a volume factor and a morning shift."""

    factor: float
    morning_shift_h: float


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@lru_cache(maxsize=8192)
def household_rhythm(
    seed: int, device_id: str, *, members: int = 1, elderly_alone: bool = True
) -> HouseholdRhythm:
    """The usual day of the household behind meter ``device_id``."""
    r = seeded_random(seed, device_id, "rhythm")
    if elderly_alone:
        morning = _clip(r.gauss(7.0, 0.35), 6.0, 8.25)
        bedtime = _clip(r.gauss(21.4, 0.35), 20.5, 22.5)
        daily = _clip(r.gauss(90.0, 18.0), 55.0, 150.0)
    else:
        morning = _clip(r.gauss(7.0, 0.45), 5.75, 8.5)
        bedtime = _clip(r.gauss(22.6, 0.5), 21.5, 23.9)
        daily = max(members, 1) * _clip(r.gauss(115.0, 25.0), 60.0, 200.0)
    return HouseholdRhythm(
        morning_peak_h=morning,
        midday_peak_h=_clip(r.gauss(11.75, 0.3), 11.0, 12.75),
        evening_peak_h=_clip(r.gauss(18.25, 0.4), 17.25, 19.5),
        bedtime_h=bedtime,
        daily_litres=daily,
    )


def day_variation(seed: int, device_id: str, day: date) -> DayVariation:
    """How the household's ``day`` (local date) differs from its usual one."""
    r = seeded_random(seed, device_id, "day", day.isoformat())
    return DayVariation(factor=r.lognormvariate(0.0, 0.22), morning_shift_h=r.gauss(0.0, 0.2))


def _normal_mass(low: float, high: float, mean: float, sd: float) -> float:
    scale = sd * math.sqrt(2.0)
    return 0.5 * (math.erf((high - mean) / scale) - math.erf((low - mean) / scale))


def expected_litres(
    rhythm: HouseholdRhythm, day: DayVariation, start_h: float, end_h: float
) -> float:
    """Mean litres used between local hours ``start_h`` and ``end_h`` of one day (0 asleep)."""
    morning = rhythm.morning_peak_h + day.morning_shift_h
    wake = morning - GETS_UP_BEFORE_PEAK_H
    low, high = max(start_h, wake), min(end_h, rhythm.bedtime_h)
    if low >= high:
        return 0.0
    share = (
        MORNING_SHARE * _normal_mass(low, high, morning, MORNING_SD_H)
        + MIDDAY_SHARE * _normal_mass(low, high, rhythm.midday_peak_h, MIDDAY_SD_H)
        + EVENING_SHARE * _normal_mass(low, high, rhythm.evening_peak_h, EVENING_SD_H)
        + BACKGROUND_SHARE * (high - low) / (rhythm.bedtime_h - wake)
    )
    return rhythm.daily_litres * day.factor * share


def water_volume_l(
    seed: int,
    device_id: str,
    slot_end: datetime,
    tz: tzinfo,
    *,
    members: int = 1,
    elderly_alone: bool = True,
) -> float:
    """Litres the household used in the meter interval ending at ``slot_end`` (0.1 L steps)."""
    start = (slot_end - METER_INTERVAL).astimezone(tz)
    start_h = start.hour + start.minute / 60 + start.second / 3600
    end_h = start_h + METER_INTERVAL / timedelta(hours=1)
    rhythm = household_rhythm(seed, device_id, members=members, elderly_alone=elderly_alone)
    day = day_variation(seed, device_id, start.date())
    expected = expected_litres(rhythm, day, start_h, end_h)
    r = seeded_random(seed, device_id, "use", int(slot_end.timestamp()))
    if expected <= 0.0:
        litres = r.uniform(*NIGHT_FLUSH_LITRES) if r.random() < NIGHT_FLUSH_PROBABILITY else 0.0
    else:
        shape = _clip(expected / 2.5, 0.25, 8.0)
        litres = r.gammavariate(shape, expected / shape)
    return round(litres, 1)
