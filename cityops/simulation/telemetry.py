"""Which readings a simulated device sends when, their values, and their MQTT payloads.

Water meters and manhole covers report on the quarter hour, flood gauges on the minute (UTC grid,
which is also the local quarter-hour grid in every time zone in use). A manhole cover also reports
the moment a ``lifted_cover`` incident starts and ends. A reading's values depend only on the seed,
the device, its time and the incidents on that device, never on how the simulation was stepped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from cityops.simulation.devices import SimDevice
from cityops.simulation.incidents import (
    IncidentPlan,
    lifted_cover_tilt_deg,
    running_tap_litres,
    street_flood_depth_mm,
)
from cityops.simulation.sensors import (
    battery_due,
    battery_pct,
    cover_tilt_at_rest_deg,
    flood_depth_at_rest_mm,
)
from cityops.simulation.water_use import METER_INTERVAL, water_volume_l

REPORT_INTERVAL: dict[str, timedelta] = {
    "water_meter": METER_INTERVAL,
    "flood_gauge": timedelta(minutes=1),
    "manhole_cover": timedelta(minutes=15),
}


def grid_times(interval: timedelta, after: datetime, until: datetime) -> list[datetime]:
    """Multiples of ``interval`` (since the Unix epoch) in the half-open span (after, until]."""
    step = int(interval.total_seconds())
    first = (int(after.timestamp()) // step + 1) * step
    last = int(until.timestamp())
    return [datetime.fromtimestamp(s, UTC) for s in range(first, last + 1, step)]


def reading_times(
    kind: str, after: datetime, until: datetime, incidents: Iterable[IncidentPlan] = ()
) -> list[datetime]:
    """When a device of ``kind`` reports in (after, until], with incident-triggered reports."""
    times = set(grid_times(REPORT_INTERVAL[kind], after, until))
    if kind == "manhole_cover":
        for plan in incidents:
            times.update(t for t in (plan.starts_at, plan.ends_at) if after < t <= until)
    return sorted(times)


def device_values(
    device: SimDevice,
    ts: datetime,
    *,
    seed: int,
    tz: tzinfo,
    incidents: Sequence[IncidentPlan] = (),
) -> dict[str, float]:
    """The metric values ``device`` reports at ``ts``, incidents on it applied."""
    values: dict[str, float]
    if device.kind == "water_meter":
        litres = water_volume_l(
            seed, device.id, ts, tz, members=device.members, elderly_alone=device.elderly_alone
        )
        extra = 0.0
        for plan in incidents:
            covered = plan.overlap(ts - METER_INTERVAL, ts)
            if plan.kind == "silent_morning":
                litres *= 1.0 - covered
            elif plan.kind == "running_tap" and covered:
                extra += covered * running_tap_litres(plan, ts, seed)
        values = {"volume_l": round(litres + extra, 1)}
    elif device.kind == "flood_gauge":
        floods = [p for p in incidents if p.kind == "street_flood" and p.active_at(ts)]
        depth = (
            max(street_flood_depth_mm(p, ts, seed) for p in floods)
            if floods
            else flood_depth_at_rest_mm(seed, device.id, ts)
        )
        values = {"depth_mm": depth}
    elif device.kind == "manhole_cover":
        lifted = [p for p in incidents if p.kind == "lifted_cover" and p.active_at(ts)]
        if lifted:
            values = {"tilt_deg": lifted_cover_tilt_deg(lifted[0], ts, seed), "lifted": 1}
        else:
            values = {"tilt_deg": cover_tilt_at_rest_deg(seed, device.id, ts), "lifted": 0}
    else:
        raise ValueError(f"cannot simulate a device of kind {device.kind!r}")
    if battery_due(seed, device.id, ts):
        values["battery_pct"] = battery_pct(seed, device.id, ts)
    return values


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def encode_telemetry(readings: Sequence[tuple[datetime, Mapping[str, float]]]) -> bytes:
    """The telemetry payload: one ``{"ts", "values"}`` object, or an array of several."""
    items = [{"ts": _iso(ts), "values": dict(values)} for ts, values in readings]
    body = items[0] if len(items) == 1 else items
    return json.dumps(body, separators=(",", ":")).encode()


def encode_status(state: Literal["online", "offline"], ts: datetime) -> bytes:
    """The retained status payload of a device."""
    return json.dumps({"state": state, "ts": _iso(ts)}, separators=(",", ":")).encode()
