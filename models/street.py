"""Street-sensor detectors: pure functions from a device's recent readings to decisions.

No database, no MQTT, no clock: each function gets the readings of one device (times and values,
oldest first) and its parameters, and evaluates the situation at the newest reading.

- flood depth over a per-gauge threshold: the median of the last 5 minutes (>= 3 readings) must
  exceed it, so a single ultrasonic spike never raises an alert (FloodNet treats those as noise);
- a manhole cover lifted off its seat, or tilted beyond a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from statistics import median

from models.decisions import Decision


def flood_depth(
    times: Sequence[datetime],
    depth_mm: Sequence[float],
    threshold_mm: float,
    where: str,
    *,
    window: timedelta = timedelta(minutes=5),
    min_points: int = 3,
) -> Decision | None:
    """Raise when the recent median depth exceeds the gauge's threshold; clear below half of it.

    Severity follows the street-depth levels 15 / 27 / 50 cm scaled to the threshold.
    """
    if not times:
        return None
    now = times[-1]
    recent = [d for t, d in zip(times, depth_mm, strict=True) if t > now - window]
    if len(recent) < min_points:
        return None
    level = median(recent)
    details = {"median_mm": round(level, 1), "threshold_mm": threshold_mm,
               "readings": len(recent), "latest_mm": round(recent[-1], 1)}
    if level > threshold_mm:
        ratio = level / threshold_mm
        severity = "critical" if ratio >= 50 / 15 else "high" if ratio >= 27 / 15 else "medium"
        rise = _rise_per_minute(times, depth_mm, now - timedelta(minutes=10))
        trend = f", rising {rise:.0f} mm/min" if rise >= 1 else ""
        message = (f"Water {level:.0f} mm deep at {where} (alert level {threshold_mm:.0f} mm)"
                   f"{trend}")
        return Decision("flood_depth", "raise", now, severity, message,
                        {**details, "rise_mm_per_min": round(rise, 1)})
    if level < threshold_mm / 2:
        return Decision("flood_depth", "clear", now, message=f"water down to {level:.0f} mm",
                        details=details)
    return None


def _rise_per_minute(times: Sequence[datetime], values: Sequence[float], since: datetime) -> float:
    points = [(t, v) for t, v in zip(times, values, strict=True) if t >= since]
    if len(points) < 2:
        return 0.0
    (t0, v0), (t1, v1) = points[0], points[-1]
    minutes = (t1 - t0).total_seconds() / 60
    return (v1 - v0) / minutes if minutes > 0 else 0.0


def manhole_cover(
    times: Sequence[datetime],
    tilt_deg: Sequence[float],
    lifted: Sequence[float],
    threshold_deg: float,
    where: str,
) -> Decision | None:
    """Raise when the newest reading shows the cover lifted or tilted past the threshold."""
    if not times:
        return None
    now, tilt, off = times[-1], tilt_deg[-1], lifted[-1] >= 0.5
    details = {"tilt_deg": round(tilt, 1), "lifted": off, "threshold_deg": threshold_deg}
    if off:
        return Decision("manhole_tilt", "raise", now, "critical",
                        f"Manhole cover lifted off its seat at {where} (tilt {tilt:.0f}°)",
                        details)
    if tilt >= threshold_deg:
        return Decision("manhole_tilt", "raise", now, "high",
                        f"Manhole cover tilted {tilt:.0f}° at {where} "
                        f"(alert at {threshold_deg:.0f}°)", details)
    if tilt < threshold_deg / 2:
        return Decision("manhole_tilt", "clear", now, message=f"cover back in place ({tilt:.0f}°)",
                        details=details)
    return None
