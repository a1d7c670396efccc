"""Street sensors at rest, and the battery every device reports now and then.

Flood gauge (ultrasonic, one reading a minute): a dry street reads 0 most of the time, else a few
millimetres of noise, always under 10 mm (FloodNet treats readings under 10 mm as noise). About
twice a day a single reading jumps to 300-900 mm (a car, a person or debris under the sensor);
such a jump is faster than FloodNet's 10 in/min plausibility limit and should be ignored.

Manhole cover: a seated cover tilts 0-3 degrees.

Battery: each device starts at its own charge, drains by its own rate (0.03-0.15 % a day) and is
replaced at 20 %; it reports the charge every 6 hours at its own time of day.
"""

from __future__ import annotations

from datetime import datetime

from cityops.simulation.seeding import seeded_random

FLOOD_NOISE_MAX_MM = 9.0
FLOOD_SPIKE_PROBABILITY = 1 / 720  # per reading, i.e. about two per gauge and day
FLOOD_SPIKE_MM = (300.0, 900.0)
BATTERY_REPORT_MINUTES = 360
BATTERY_REPLACED_AT_PCT = 20.0


def flood_depth_at_rest_mm(seed: int, device_id: str, ts: datetime) -> float:
    """A dry street's depth reading at ``ts``: 0, noise under 10 mm, or a rare spike."""
    r = seeded_random(seed, device_id, "depth", int(ts.timestamp()))
    if r.random() < FLOOD_SPIKE_PROBABILITY:
        return float(round(r.uniform(*FLOOD_SPIKE_MM)))
    if r.random() < 0.65:
        return 0.0
    return float(min(FLOOD_NOISE_MAX_MM, round(1.0 + abs(r.gauss(0.0, 3.0)))))


def cover_tilt_at_rest_deg(seed: int, device_id: str, ts: datetime) -> float:
    """A seated cover's tilt at ``ts``, degrees."""
    r = seeded_random(seed, device_id, "tilt", int(ts.timestamp()))
    return round(min(abs(r.gauss(0.6, 0.5)), 3.0), 1)


def battery_due(seed: int, device_id: str, ts: datetime) -> bool:
    """Whether the reading at ``ts`` carries the battery charge (every 6 h, device's own phase)."""
    seconds = int(ts.timestamp())
    offset = seeded_random(seed, device_id, "battery-phase").randrange(24) * 15
    return seconds % 60 == 0 and (seconds // 60 - offset) % BATTERY_REPORT_MINUTES == 0


def battery_pct(seed: int, device_id: str, ts: datetime) -> float:
    """The device's battery charge at ``ts``, percent (a slow sawtooth between 100 and 20)."""
    r = seeded_random(seed, device_id, "battery")
    used = r.uniform(0.0, 80.0) + r.uniform(0.03, 0.15) * ts.timestamp() / 86400
    return round(100.0 - used % (100.0 - BATTERY_REPLACED_AT_PCT), 1)
