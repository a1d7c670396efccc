"""First detectors: pure functions from a device's recent readings to decisions.

No database, no MQTT, no clock: each function gets the readings of one device (times and values,
oldest first) and its parameters, and evaluates the situation at the newest reading. A decision
either raises an alert (with a plain sentence a grid worker understands) or clears one.

- flood depth over a per-gauge threshold: the median of the last 5 minutes (>= 3 readings) must
  exceed it, so a single ultrasonic spike never raises an alert (FloodNet treats those as noise);
- a manhole cover lifted off its seat, or tilted beyond a threshold;
- a water meter that reports but shows no use for too long (a silent morning);
- a water meter whose flow never stops (every interval above a minimum for hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any, Literal
from zoneinfo import ZoneInfo

Action = Literal["raise", "clear"]


@dataclass(frozen=True)
class Decision:
    """What a detector concluded at ``observed_at``."""

    kind: str
    action: Action
    observed_at: datetime
    severity: str = "low"
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def duration_text(delta: timedelta) -> str:
    """'12 h 50 min', '45 min'."""
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


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


def water_silence(
    times: Sequence[datetime],
    volume_l: Sequence[float],
    silence: timedelta,
    tz: ZoneInfo,
    *,
    min_use_l: float = 0.5,
) -> Decision | None:
    """Raise when the meter keeps reporting but no water was used for ``silence`` or longer.

    Severity grows with the gap: medium from ``silence``, high from 1.5x, critical from 2x.
    The readings must cover the gap: with no use anywhere in them the message says "over".
    """
    if not times:
        return None
    now = times[-1]
    uses = [t for t, v in zip(times, volume_l, strict=True) if v >= min_use_l]
    if uses and uses[-1] == now:
        return Decision("water_silence", "clear", now,
                        message=f"water used again at {now.astimezone(tz):%H:%M}")
    since = uses[-1] if uses else times[0]
    gap = now - since
    if gap < silence:
        return None
    ratio = gap / silence
    severity = "critical" if ratio >= 2 else "high" if ratio >= 1.5 else "medium"
    if uses:
        message = (f"No water used since {since.astimezone(tz):%H:%M} ({duration_text(gap)}); "
                   f"the meter is reporting normally")
    else:
        message = f"No water used for over {duration_text(gap)}; the meter is reporting normally"
    return Decision("water_silence", "raise", now, severity, message,
                    {"last_use": since.isoformat() if uses else None,
                     "gap_minutes": int(gap.total_seconds() // 60)})


def water_running(
    times: Sequence[datetime],
    volume_l: Sequence[float],
    limit: timedelta,
    tz: ZoneInfo,
    *,
    min_flow_l: float = 1.0,
    night: tuple[int, int] = (22, 6),
) -> Decision | None:
    """Raise when every reading for ``limit`` or longer shows flow (a tap left running).

    More urgent at night (local hours ``night[0]`` to ``night[1]``).
    """
    if not times:
        return None
    now = times[-1]
    if volume_l[-1] < min_flow_l:
        return Decision("water_running", "clear", now,
                        message=f"flow stopped at {now.astimezone(tz):%H:%M}")
    start = now
    run: list[float] = []
    for t, v in zip(reversed(times), reversed(volume_l), strict=True):
        if v < min_flow_l:
            break
        start = t
        run.append(v)
    # a reading covers the interval before it: the run began one interval before its first reading
    interval = (times[-1] - times[-2]) if len(times) >= 2 else timedelta(0)
    span = now - start + interval
    if span < limit:
        return None
    hour = now.astimezone(tz).hour
    at_night = hour >= night[0] or hour < night[1]
    severity = "high" if at_night else "medium"
    per = sum(run) / len(run)
    began = (start - interval).astimezone(tz)
    message = (f"Water running without a break for {duration_text(span)} (since {began:%H:%M}),"
               f" about {per:.0f} L every {duration_text(interval) or 'interval'}")
    return Decision("water_running", "raise", now, severity, message,
                    {"running_minutes": int(span.total_seconds() // 60),
                     "mean_l_per_reading": round(per, 1), "at_night": at_night})
