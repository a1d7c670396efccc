"""Incidents the simulator injects, their default parameters, and how they change readings.

``silent_morning``  water meter of an elderly person living alone: 0 litres from 21:40 (local) for
                    14 h, while the meter keeps reporting (a person in trouble, not a device fault)
``running_tap``     water meter: 6-10 L more every 15-minute interval, 4 h by default
``street_flood``    flood gauge: depth rises over 20-40 min to a 200-500 mm peak, then drains over
                    1-2 h, following the shape of a real FloodNet event
``lifted_cover``    manhole cover: tilt 60-90 degrees and lifted = 1 for 30-90 min

An :class:`IncidentPlan` is the ground truth the simulator records in ``sim_incidents``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Literal, get_args

from cityops.simulation.devices import SimDevice
from cityops.simulation.seeding import seeded_random

IncidentKind = Literal["silent_morning", "running_tap", "street_flood", "lifted_cover"]
INCIDENT_KINDS: tuple[IncidentKind, ...] = get_args(IncidentKind)
DEVICE_KIND: dict[IncidentKind, str] = {
    "silent_morning": "water_meter",
    "running_tap": "water_meter",
    "street_flood": "flood_gauge",
    "lifted_cover": "manhole_cover",
}
SILENT_FROM_LOCAL = time(21, 40)
SILENT_DURATION = timedelta(hours=14)
RUNNING_TAP_DURATION = timedelta(hours=4)
RUNNING_TAP_LITRES = (6.0, 10.0)


@dataclass(frozen=True, slots=True)
class IncidentPlan:
    """One incident on one device, in simulated time: what ``sim_incidents`` records."""

    kind: IncidentKind
    device_id: str
    starts_at: datetime
    ends_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r} (known: {INCIDENT_KINDS})")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("incident times must be timezone-aware")
        if self.ends_at <= self.starts_at:
            raise ValueError("an incident must end after it starts")

    def active_at(self, ts: datetime) -> bool:
        """Whether the incident is going on at ``ts`` (start included, end excluded)."""
        return self.starts_at <= ts < self.ends_at

    def overlap(self, start: datetime, end: datetime) -> float:
        """The fraction of the interval from ``start`` to ``end`` the incident covers (0..1)."""
        covered = min(end, self.ends_at) - max(start, self.starts_at)
        return max(covered / (end - start), 0.0)


@dataclass(frozen=True, slots=True)
class FloodShape:
    """A flood's depth as a fraction of its peak at evenly spaced fractions of rise and drain."""

    rise: tuple[float, ...]
    drain: tuple[float, ...]
    source: str

    @classmethod
    def from_profile(
        cls, depths: Sequence[float], seconds: Sequence[float], source: str, points: int = 11
    ) -> FloodShape:
        """Normalise a measured profile (depths at seconds since the start) around its peak."""
        peak = max(range(len(depths)), key=depths.__getitem__)
        top, t_peak, t_end = depths[peak], seconds[peak], seconds[-1]
        steps = [i / (points - 1) for i in range(points)]
        rise = [_interp(f * t_peak, seconds, depths) / top for f in steps]
        drain = [_interp(t_peak + f * (t_end - t_peak), seconds, depths) / top for f in steps]
        return cls(tuple(round(v, 3) for v in rise), tuple(round(v, 3) for v in drain), source)

    def fraction(self, elapsed: timedelta, rise: timedelta, drain: timedelta) -> float:
        """Depth as a fraction of the peak ``elapsed`` after the flood began (0 outside it)."""
        if elapsed < timedelta(0) or elapsed >= rise + drain:
            return 0.0
        if elapsed < rise:
            return _along(self.rise, elapsed / rise)
        return _along(self.drain, (elapsed - rise) / drain)


def _interp(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    i = min(max(bisect_right(xs, x), 1), len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _along(values: tuple[float, ...], fraction: float) -> float:
    position = fraction * (len(values) - 1)
    i = min(int(position), len(values) - 2)
    return values[i] + (values[i + 1] - values[i]) * (position - i)


# Shape of a real street flood (27 min rise to 199 mm, 109 min drain), built with
# FloodShape.from_profile from FloodNet's flood-events-2020-2024.csv (shared reference data).
FLOODNET_SHAPE = FloodShape(
    rise=(0.0, 0.254, 0.493, 0.632, 0.767, 0.849, 0.901, 0.962, 0.971, 0.98, 1.0),
    drain=(1.0, 0.958, 0.927, 0.81, 0.756, 0.654, 0.552, 0.452, 0.336, 0.162, 0.0),
    source="FloodNet NYC / NYC Open Data: SI-grimsby-st-mapleton-ave-1de5w0 2024-07-05T23:48:14",
)


def next_local_time(at: datetime, clock_time: time, tz: tzinfo) -> datetime:
    """The first moment at or after ``at`` when the local clock in ``tz`` shows ``clock_time``."""
    local = at.astimezone(tz)
    candidate = datetime.combine(local.date(), clock_time, tzinfo=tz)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), clock_time, tzinfo=tz)
    return candidate.astimezone(at.tzinfo)


def plan_incident(
    kind: IncidentKind,
    device_id: str,
    at: datetime,
    *,
    seed: int,
    tz: tzinfo,
    duration: timedelta | None = None,
) -> IncidentPlan:
    """An incident with the default parameters of its kind, starting at ``at``.

    ``at`` is truncated to the second. A ``silent_morning`` starts at the first 21:40 local at or
    after ``at``. ``duration`` replaces the default length (for a ``street_flood`` the rise and
    drain keep their proportions).
    """
    at = at.replace(microsecond=0)
    r = seeded_random(seed, "incident", kind, device_id, at.isoformat())
    details: dict[str, Any]
    if kind == "silent_morning":
        at = next_local_time(at, SILENT_FROM_LOCAL, tz)
        length = duration or SILENT_DURATION
        details = {"volume_l": 0.0, "meter_keeps_reporting": True}
    elif kind == "running_tap":
        length = duration or RUNNING_TAP_DURATION
        details = {"extra_l_per_interval": list(RUNNING_TAP_LITRES)}
    elif kind == "street_flood":
        rise_min, drain_min = r.uniform(20.0, 40.0), r.uniform(60.0, 120.0)
        if duration is not None:
            scale = duration / timedelta(minutes=rise_min + drain_min)
            rise_min, drain_min = rise_min * scale, drain_min * scale
        rise_min, drain_min = round(rise_min, 1), round(drain_min, 1)
        length = timedelta(seconds=round((rise_min + drain_min) * 60))
        details = {
            "peak_mm": round(r.uniform(200.0, 500.0)),
            "rise_min": rise_min,
            "drain_min": drain_min,
            "shape": FLOODNET_SHAPE.source,
        }
    elif kind == "lifted_cover":
        length = duration or timedelta(minutes=round(r.uniform(30.0, 90.0)))
        details = {"tilt_deg": round(r.uniform(60.0, 90.0), 1)}
    else:
        raise ValueError(f"unknown incident kind {kind!r} (known: {INCIDENT_KINDS})")
    return IncidentPlan(kind, device_id, at, at + length, details)


def default_incident_plan(
    devices: Sequence[SimDevice], start: datetime, seed: int, *, tz: tzinfo
) -> list[IncidentPlan]:
    """A demo schedule: one incident of each kind the devices allow, over the first hours.

    A street flood 1-2 h after ``start``, a lifted cover after 2.5-3.5 h, a running tap after
    4-6 h (on a meter other than the silent one where possible), and a silent morning from the
    first 21:40 on the meter of an elderly person living alone.
    """
    r = seeded_random(seed, "default-plan")
    by_kind = {k: sorted(d.id for d in devices if d.kind == k) for k in set(DEVICE_KIND.values())}
    elderly = sorted(d.id for d in devices if d.kind == "water_meter" and d.elderly_alone)
    plans: list[IncidentPlan] = []

    def add(kind: IncidentKind, device_id: str, after_min: tuple[int, int]) -> None:
        at = start + timedelta(minutes=r.randint(*after_min))
        plans.append(plan_incident(kind, device_id, at, seed=seed, tz=tz))

    if by_kind["flood_gauge"]:
        add("street_flood", r.choice(by_kind["flood_gauge"]), (60, 120))
    if by_kind["manhole_cover"]:
        add("lifted_cover", r.choice(by_kind["manhole_cover"]), (150, 210))
    silent = r.choice(elderly) if elderly else None
    if silent is not None:
        add("silent_morning", silent, (0, 0))
    taps = [m for m in by_kind["water_meter"] if m != silent] or by_kind["water_meter"]
    if taps:
        add("running_tap", r.choice(taps), (240, 360))
    return sorted(plans, key=lambda p: p.starts_at)


def street_flood_depth_mm(plan: IncidentPlan, ts: datetime, seed: int) -> float:
    """The gauge's depth reading at ``ts`` during a ``street_flood`` (profile plus sensor noise)."""
    d = plan.details
    fraction = FLOODNET_SHAPE.fraction(
        ts - plan.starts_at, timedelta(minutes=d["rise_min"]), timedelta(minutes=d["drain_min"])
    )
    noise = seeded_random(seed, plan.device_id, "flood", int(ts.timestamp())).gauss(0.0, 3.0)
    return float(max(round(d["peak_mm"] * fraction + noise), 0))


def running_tap_litres(plan: IncidentPlan, slot_end: datetime, seed: int) -> float:
    """Litres a running tap adds to the full meter interval ending at ``slot_end``."""
    low, high = plan.details["extra_l_per_interval"]
    return seeded_random(seed, plan.device_id, "tap", int(slot_end.timestamp())).uniform(low, high)


def lifted_cover_tilt_deg(plan: IncidentPlan, ts: datetime, seed: int) -> float:
    """The tilt a lifted cover reports at ``ts``, degrees."""
    jitter = seeded_random(seed, plan.device_id, "lifted", int(ts.timestamp())).gauss(0.0, 1.5)
    return round(min(plan.details["tilt_deg"] + jitter, 90.0), 1)
