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


# Metrics whose value covers the interval before the reading's timestamp (litres used since the
# previous reading). Hourly rollups count such a reading in the hour its interval ends in: the
# readings at 07:15, 07:30, 07:45 and 08:00 make the hour 07:00-08:00.
INTERVAL_METRICS: tuple[str, ...] = ("volume_l",)


def rollup_time_sql(ts: str = "ts", metric: str = "metric") -> str:
    """SQL expression of the time by which a reading is bucketed into its hour."""
    names = ", ".join(f"'{m}'" for m in INTERVAL_METRICS)
    return f"(CASE WHEN {metric} IN ({names}) THEN {ts} - interval '1 microsecond' ELSE {ts} END)"


class Reading(NamedTuple):
    """A stored reading; (device_id, metric, ts) is its natural key."""

    device_id: str
    metric: str
    ts: datetime
    value: float
