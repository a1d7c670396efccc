"""Street-sensor detectors: pure functions from a device's recent readings to decisions.

No database, no MQTT, no clock: each function gets the readings of one device (times and values,
oldest first) and its parameters, and evaluates the situation at the newest reading. Everything a
rule needs to remember comes from that window, so the same window always gives the same decision.

Flood gauges (see docs/street-detectors.md for every default):

- the signal is cleaned the way the FloodNet team does it: readings under the noise floor (10 mm)
  count as dry, a reading that moved faster than 10 in/min (254 mm/min) from the last trusted one
  is an impossible jump (kept out unless a run of readings confirms the new level), and a step of
  more than ``spike_mm`` waits for the next reading: if that one falls back, it was an isolated
  spike; a gauge repeating one value above the noise floor for a long time is a device fault;
- levels per gauge (street depth 15 / 27 / 50 cm by default, or the river-stage scheme action /
  minor / moderate / major): the alert is raised as soon as the trusted depth reaches the first
  level, its severity follows the highest level reached, and it is cleared only after every
  trusted reading of the last ``clear_minutes`` stayed under the clear level (hysteresis);
- the rate of rise and a short-term forecast of when the next level will be reached come from a
  Theil-Sen regression (median of pairwise slopes) over the last ``trend_minutes``.

Manhole covers: tilted beyond a limit (10 degrees by default), lifted or displaced off the seat,
and water standing in the well above a limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from statistics import median
from typing import Literal

import numpy as np

from models.decisions import Decision

STREET_LEVELS_MM = (150.0, 270.0, 500.0)
STREET_SEVERITIES = ("medium", "high", "critical")
RIVER_STAGES = ("action", "minor", "moderate", "major")
RIVER_SEVERITIES = ("low", "medium", "high", "critical")

Status = Literal["ok", "pending", "spike", "jump"]


@dataclass(frozen=True)
class CleaningParams:
    """How raw depth readings are cleaned (FloodNet practice)."""

    noise_floor_mm: float = 10.0
    max_rate_mm_per_min: float = 254.0  # 10 in/min
    jump_confirm_readings: int = 5
    spike_mm: float = 50.0


@dataclass(frozen=True)
class FloodParams:
    """Thresholds of the flood-depth rule apart from the levels themselves."""

    cleaning: CleaningParams = CleaningParams()
    clear_fraction: float = 0.5  # clear level = this fraction of the first level
    clear_minutes: float = 10.0
    min_points: int = 3
    trend_minutes: float = 10.0
    trend_min_points: int = 4
    forecast_horizon_minutes: float = 60.0
    min_rise_mm_per_min: float = 1.0
    stuck_minutes: float = 20.0
    stuck_min_readings: int = 10
    stuck_tolerance_mm: float = 0.0


@dataclass(frozen=True)
class Levels:
    """A gauge's alert levels, lowest first, with a name and a severity each."""

    scheme: Literal["street", "river"]
    mm: tuple[float, ...]
    names: tuple[str, ...]
    severities: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.mm or len({len(self.mm), len(self.names), len(self.severities)}) != 1:
            raise ValueError("levels need as many names and severities as thresholds (>= 1)")
        if any(b <= a for a, b in zip(self.mm, self.mm[1:], strict=False)) or self.mm[0] <= 0:
            raise ValueError(f"levels must be positive and increasing, got {list(self.mm)}")

    def reached(self, depth_mm: float) -> int:
        """Index of the highest level reached by ``depth_mm`` (-1 when under the first)."""
        return sum(1 for level in self.mm if depth_mm >= level) - 1

    def label(self, index: int) -> str:
        """'level 2 of 3: 270 mm' or 'minor flood stage: 600 mm'."""
        if self.scheme == "river":
            return f"{self.names[index]} flood stage: {self.mm[index]:.0f} mm"
        return f"level {index + 1} of {len(self.mm)}: {self.mm[index]:.0f} mm"


def street_levels(levels_mm: Sequence[float] = STREET_LEVELS_MM) -> Levels:
    """Street-depth levels (1 to 3 of them) with severities medium, high, critical."""
    mm = tuple(float(v) for v in levels_mm)
    if not 1 <= len(mm) <= len(STREET_SEVERITIES):
        raise ValueError(f"street levels take 1 to 3 depths, got {len(mm)}")
    severities = STREET_SEVERITIES[len(STREET_SEVERITIES) - len(mm):]
    return Levels("street", mm, tuple(f"level {i + 1}" for i in range(len(mm))), severities)


def street_levels_from(first_mm: float, defaults: Sequence[float] = STREET_LEVELS_MM) -> Levels:
    """Street levels starting at ``first_mm``, keeping the default levels above it."""
    return street_levels([first_mm, *(v for v in defaults[1:] if v > first_mm)])


def river_levels(stages_mm: Sequence[float]) -> Levels:
    """River-stage levels action, minor, moderate, major (severity low to critical)."""
    mm = tuple(float(v) for v in stages_mm)
    if len(mm) != len(RIVER_STAGES):
        raise ValueError(f"river levels take 4 stages ({', '.join(RIVER_STAGES)}), got {len(mm)}")
    return Levels("river", mm, RIVER_STAGES, RIVER_SEVERITIES)


@dataclass(frozen=True)
class CleanSignal:
    """Cleaned depth readings: the value and a status per raw reading."""

    times: list[datetime]
    values: list[float]
    status: list[Status]

    def trusted(self) -> tuple[list[datetime], list[float]]:
        """The readings that passed every check."""
        kept = [(t, v) for t, v, s in zip(self.times, self.values, self.status, strict=True)
                if s == "ok"]
        return [t for t, _ in kept], [v for _, v in kept]

    def count(self, status: Status) -> int:
        """How many readings have ``status``."""
        return self.status.count(status)


def clean_depths(
    times: Sequence[datetime], depth_mm: Sequence[float], p: CleaningParams = CleaningParams()
) -> CleanSignal:
    """Clean raw depth readings causally (each reading is judged on earlier ones and, for a
    pending step, on the next one).

    - under the noise floor -> 0 (dry);
    - further from the last trusted value than ``max_rate_mm_per_min`` allows over the time since
      the previous reading (at least a minute) -> ``jump``, unless
      ``jump_confirm_readings`` consecutive readings agree on the new level (then all ``ok``);
    - a step of more than ``spike_mm`` from the last trusted reading -> ``pending`` until the next
      reading: if that one stays at least half-way there (and is no jump from it), ``ok``, else
      ``spike``.
    """
    values = [v if v >= p.noise_floor_mm else 0.0 for v in depth_mm]
    status: list[Status] = ["ok"] * len(values)
    if not values:
        return CleanSignal([], [], [])
    ref = median(values[:3])
    run: list[int] = []
    pending: int | None = None

    def too_fast(a: float, b: float, ta: datetime, tb: datetime) -> bool:
        minutes = max((tb - ta).total_seconds() / 60, 1.0)
        return abs(b - a) > p.max_rate_mm_per_min * minutes

    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        previous_t = times[i - 1] if i else t
        if pending is not None:
            step, follow = values[pending] - ref, v - ref
            if (follow * step > 0 and abs(follow) >= abs(step) / 2
                    and not too_fast(values[pending], v, times[pending], t)):
                ref, status[pending] = values[pending], "ok"
            else:
                status[pending] = "spike"
            pending = None
        if too_fast(ref, v, previous_t, t):
            if not (run and not too_fast(values[run[-1]], v, times[run[-1]], t)):
                run = []
            run.append(i)
            status[i] = "jump"
            if len(run) >= p.jump_confirm_readings:
                for j in run:
                    status[j] = "ok"
                ref, run = v, []
            continue
        run = []
        if abs(v - ref) > p.spike_mm:
            status[i], pending = "pending", i
        else:
            ref = v
    return CleanSignal(list(times), values, status)


@dataclass(frozen=True)
class Trend:
    """Robust rate of rise and, when rising, when the next level will be reached."""

    rise_mm_per_min: float
    next_level_mm: float | None = None
    next_level_at: datetime | None = None


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Theil-Sen line: (slope, intercept) = median pairwise slope, median of y - slope * x."""
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        return 0.0, float(np.median(y))
    slope = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    return slope, float(np.median(y - slope * x))


def trend(
    times: Sequence[datetime],
    depth_mm: Sequence[float],
    now: datetime,
    levels: Levels,
    p: FloodParams = FloodParams(),
) -> Trend:
    """Rate of rise over the last ``trend_minutes`` of trusted readings and the forecast time
    of the next level above the fitted depth now (within ``forecast_horizon_minutes``)."""
    since = now - timedelta(minutes=p.trend_minutes)
    points = [(t, v) for t, v in zip(times, depth_mm, strict=True) if since <= t <= now]
    if len(points) < p.trend_min_points:
        return Trend(0.0)
    x = np.array([(t - now).total_seconds() / 60 for t, _ in points])
    y = np.array([v for _, v in points])
    slope, fitted_now = theil_sen(x, y)
    if slope < p.min_rise_mm_per_min:
        return Trend(slope)
    above = [level for level in levels.mm if level > max(fitted_now, y[-1])]
    if not above:
        return Trend(slope)
    minutes = (above[0] - fitted_now) / slope
    if minutes > p.forecast_horizon_minutes:
        return Trend(slope, above[0])
    return Trend(slope, above[0], now + timedelta(minutes=minutes))


def flood_depth(
    times: Sequence[datetime],
    depth_mm: Sequence[float],
    levels: Levels | float,
    where: str,
    *,
    params: FloodParams = FloodParams(),
    tz: tzinfo = UTC,
) -> Decision | None:
    """Raise while the trusted depth is at or over the first level (severity of the highest
    level reached); clear once every trusted reading of the last ``clear_minutes`` stayed under
    the clear level; otherwise no change. ``levels`` may be a bare first level in mm (street
    scheme with the default levels above it). Times in the message are shown in ``tz``."""
    if isinstance(levels, int | float):
        levels = street_levels_from(float(levels))
    if len(times) < params.min_points:
        return None
    now = times[-1]
    clean = clean_depths(times, depth_mm, params.cleaning)
    t_ok, v_ok = clean.trusted()
    if len(t_ok) < params.min_points:
        return None
    depth = v_ok[-1]
    clear_mm = levels.mm[0] * params.clear_fraction
    details = {
        "depth_mm": round(depth, 1), "latest_raw_mm": round(depth_mm[-1], 1),
        "scheme": levels.scheme, "levels_mm": list(levels.mm), "clear_mm": round(clear_mm, 1),
        "readings": len(times), "spikes": clean.count("spike"), "jumps": clean.count("jump"),
        "pending": clean.count("pending"),
    }
    reached = levels.reached(depth)
    if reached >= 0:
        tr = trend(t_ok, v_ok, now, levels, params)
        rising = (f", rising {tr.rise_mm_per_min:.0f} mm/min"
                  if tr.rise_mm_per_min >= params.min_rise_mm_per_min else "")
        expected = (f"; {tr.next_level_mm:.0f} mm expected about "
                    f"{tr.next_level_at.astimezone(tz):%H:%M}" if tr.next_level_at else "")
        message = (f"Water {depth:.0f} mm deep at {where} ({levels.label(reached)})"
                   f"{rising}{expected}")
        return Decision("flood_depth", "raise", now, levels.severities[reached], message, {
            **details, "level": levels.names[reached], "level_mm": levels.mm[reached],
            "rise_mm_per_min": round(tr.rise_mm_per_min, 1),
            "next_level_mm": tr.next_level_mm,
            "next_level_at": tr.next_level_at.isoformat() if tr.next_level_at else None,
        })
    since = now - timedelta(minutes=params.clear_minutes)
    recent = [v for t, v in zip(t_ok, v_ok, strict=True) if t > since]
    if len(recent) >= params.min_points and max(recent) < clear_mm:
        return Decision("flood_depth", "clear", now,
                        message=f"water down to {depth:.0f} mm (under {clear_mm:.0f} mm for "
                                f"{params.clear_minutes:.0f} min)", details=details)
    return None


def gauge_fault(
    times: Sequence[datetime],
    depth_mm: Sequence[float],
    where: str,
    *,
    params: FloodParams = FloodParams(),
) -> Decision | None:
    """A flat-lined gauge: one value above the noise floor repeated for ``stuck_minutes`` (a
    water surface always moves) is a device fault, not a flood. Cleared once readings vary."""
    if len(times) < 2:
        return None
    now = times[-1]
    since = now - timedelta(minutes=params.stuck_minutes)
    recent = [v for t, v in zip(times, depth_mm, strict=True) if t >= since]
    covered = (now - min(t for t in times if t >= since)) >= 0.9 * (now - since)
    value = depth_mm[-1]
    details = {"value_mm": round(value, 1), "readings": len(recent),
               "stuck_minutes": params.stuck_minutes}
    if (covered and len(recent) >= params.stuck_min_readings
            and max(recent) - min(recent) <= params.stuck_tolerance_mm
            and value >= params.cleaning.noise_floor_mm):
        return Decision("gauge_fault", "raise", now, "medium",
                        f"Flood gauge at {where} stuck at {value:.0f} mm for "
                        f"{params.stuck_minutes:.0f} min: device fault, not a flood", details)
    if abs(depth_mm[-1] - depth_mm[-2]) > params.stuck_tolerance_mm:
        return Decision("gauge_fault", "clear", now, message="gauge readings vary again",
                        details=details)
    return None


def manhole_cover(
    times: Sequence[datetime],
    tilt_deg: Sequence[float],
    lifted: Sequence[float],
    threshold_deg: float,
    where: str,
    *,
    clear_deg: float | None = None,
) -> Decision | None:
    """Raise when the newest reading shows the cover lifted or displaced off its seat
    (critical) or tilted to ``threshold_deg`` or more (high); clear once it is seated again and
    tilted under ``clear_deg`` (half the threshold unless given)."""
    if not times:
        return None
    clear_at = threshold_deg / 2 if clear_deg is None else clear_deg
    now, tilt, off = times[-1], tilt_deg[-1], lifted[-1] >= 0.5
    details = {"tilt_deg": round(tilt, 1), "lifted": off, "threshold_deg": threshold_deg,
               "clear_deg": clear_at}
    if off:
        return Decision("manhole_tilt", "raise", now, "critical",
                        f"Manhole cover lifted or displaced off its seat at {where} "
                        f"(tilt {tilt:.0f}°)", details)
    if tilt >= threshold_deg:
        return Decision("manhole_tilt", "raise", now, "high",
                        f"Manhole cover tilted {tilt:.0f}° at {where} "
                        f"(alert at {threshold_deg:.0f}°)", details)
    if tilt < clear_at:
        return Decision("manhole_tilt", "clear", now, message=f"cover back in place ({tilt:.0f}°)",
                        details=details)
    return None


def manhole_water(
    times: Sequence[datetime],
    well_water_mm: Sequence[float],
    limit_mm: float,
    where: str,
    *,
    clear_mm: float | None = None,
) -> Decision | None:
    """Raise when the newest reading shows water standing in the well at ``limit_mm`` or more
    (critical from twice the limit); clear under ``clear_mm`` (half the limit unless given)."""
    if not times:
        return None
    clear_at = limit_mm / 2 if clear_mm is None else clear_mm
    now, level = times[-1], well_water_mm[-1]
    details = {"well_water_mm": round(level, 1), "limit_mm": limit_mm, "clear_mm": clear_at}
    if level >= limit_mm:
        severity = "critical" if level >= 2 * limit_mm else "high"
        return Decision("manhole_water", "raise", now, severity,
                        f"Water {level:.0f} mm deep in the well under the manhole cover at "
                        f"{where} (alert at {limit_mm:.0f} mm)", details)
    if level < clear_at:
        return Decision("manhole_water", "clear", now,
                        message=f"well water down to {level:.0f} mm", details=details)
    return None
