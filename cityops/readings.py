"""The reading: one measured value of one metric of one device at one time."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

# Metrics each device kind may send, with the inclusive range of a valid value and its unit.
METRICS: dict[str, dict[str, tuple[float, float, str]]] = {
    "water_meter": {
        "volume_l": (0.0, 2000.0, "litres used since the previous reading"),
        "battery_pct": (0.0, 100.0, "battery charge, percent"),
    },
    "flood_gauge": {
        "depth_mm": (0.0, 5000.0, "water depth above the street surface, millimetres"),
        "battery_pct": (0.0, 100.0, "battery charge, percent"),
    },
    "manhole_cover": {
        "tilt_deg": (0.0, 180.0, "cover tilt from horizontal, degrees"),
        "lifted": (0.0, 1.0, "1 when the cover is off its seat, else 0"),
        "well_water_mm": (0.0, 5000.0, "water standing in the well under the cover, millimetres"),
        "battery_pct": (0.0, 100.0, "battery charge, percent"),
    },
}


class Reading(NamedTuple):
    """A stored reading; (device_id, metric, ts) is its natural key."""

    device_id: str
    metric: str
    ts: datetime
    value: float
