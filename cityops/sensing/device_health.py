"""Device health: online/offline, last seen, battery, silent devices and devices sending only
bad payloads; the check that opens (and clears) a ``device_silent`` alert per silent device.

A device is *silent* when nothing valid has been heard from it for longer than
``silent_after_intervals`` times its reporting interval (per kind in
:class:`cityops.platform.settings.DeviceHealthSettings`, per device in ``devices.config`` key
``reporting_interval_s``), counted from its last reading, or from its installation when it never
sent one. A silent water meter is a device fault: it says nothing about the water used, and the
``device_silent`` alert says so. Device alerts are low severity; each new one is handed to the
caller's ``on_opened`` (the composition root wires in the alert→case policy,
:mod:`cityops.cases.policy`: a "monitoring sensor fault" case for the operations centre's
technical team, no grid worker sent). The administrator sees them on the admin page.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cityops.platform.settings import DeviceHealthSettings
from cityops.platform.text import duration_text
from cityops.platform.topics import DEVICE_KINDS
from cityops.sensing import alerts
from cityops.sensing.alerts import OnOpened

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

ALERT_KIND = "device_silent"
LOW_BATTERY_PCT = 20.0
MASS_SILENCE_MIN_DEVICES = 10
KIND_NAMES = {"water_meter": "Water meter", "flood_gauge": "Flood gauge",
              "manhole_cover": "Manhole cover"}

# One row per device with what health needs; %(since)s bounds the dead letters counted.
HEALTH_SQL = """
WITH rejected AS (
    SELECT device_id, count(*) AS n, max(received_at) AS last_at,
           (array_agg(code ORDER BY received_at DESC, id DESC))[1] AS last_code
    FROM dead_letters WHERE received_at > %(since)s AND device_id IS NOT NULL
    GROUP BY device_id
), health AS (
    SELECT d.id, d.kind, d.label, d.grid_code, d.lon, d.lat, g.name AS cell, d.online,
           d.status_at, d.last_seen, d.battery_pct, d.installed_at,
           coalesce(CASE WHEN jsonb_typeof(d.config -> 'reporting_interval_s') = 'number'
                         THEN (d.config ->> 'reporting_interval_s')::float8 END,
                    (%(intervals)s::jsonb ->> d.kind)::float8) AS interval_s,
           coalesce(r.n, 0) AS rejected, r.last_code, r.last_at AS rejected_at
    FROM devices d
    LEFT JOIN grids g ON g.code = d.grid_code
    LEFT JOIN rejected r ON r.device_id = d.id
)
SELECT *,
       coalesce(last_seen, installed_at)
           < %(now)s - make_interval(secs => interval_s * %(factor)s) AS silent,
       rejected > 0 AND (last_seen IS NULL OR last_seen <= %(since)s) AS bad_only
FROM health
"""


@dataclass(frozen=True)
class SilentCheck:
    """What one run of :func:`check_silent_devices` did."""

    silent: list[str]
    opened: list[str]
    cleared: list[str]
    suppressed: bool = False  # most devices silent at once: nothing opened or cleared
    cases: list[int] = field(default_factory=list)  # the cases on_opened opened


def intervals(settings: DeviceHealthSettings) -> dict[str, int]:
    """The default reporting interval of each device kind, in seconds."""
    return {
        "water_meter": settings.water_meter_interval_s,
        "flood_gauge": settings.flood_gauge_interval_s,
        "manhole_cover": settings.manhole_cover_interval_s,
    }


def _rows(conn: Conn, now: datetime, settings: DeviceHealthSettings, hours: float,
          where: str = "") -> list[dict[str, Any]]:
    params = {"since": now - timedelta(hours=hours), "now": now,
              "intervals": json.dumps(intervals(settings)),
              "factor": settings.silent_after_intervals}
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(f"SELECT * FROM ({HEALTH_SQL}) h {where}", params).fetchall())


def describe(row: dict[str, Any], now: datetime, hours: float = 24) -> str:
    """A plain sentence about one device's health row (from :func:`health_report`)."""
    interval = duration_text(timedelta(seconds=row["interval_s"]))
    parts = []
    if row["bad_only"]:
        parts.append(f"no valid reading, {row['rejected']} rejected in {hours:g} h"
                     f" (latest: {row['last_code']})")
    if row["silent"]:
        if row["last_seen"] is None:
            age = duration_text(now - row["installed_at"])
            parts.append(f"never reported since installed {age} ago (expected every {interval})")
        else:
            parts.append(f"silent for {duration_text(now - row['last_seen'])}"
                         f" (expected every {interval})")
    elif row["rejected"] and not row["bad_only"]:
        noun = "payload" if row["rejected"] == 1 else "payloads"
        parts.append(f"{row['rejected']} {noun} rejected in {hours:g} h"
                     f" (latest: {row['last_code']})")
    if row["online"] is False:
        parts.append("offline by its status or last will")
    if row["battery_pct"] is not None and row["battery_pct"] < LOW_BATTERY_PCT:
        parts.append(f"battery {row['battery_pct']:.0f} %")
    return "; ".join(parts) or "ok"



def health_report(
    conn: Conn, now: datetime, settings: DeviceHealthSettings, *, hours: float = 24,
    limit: int = 30,
) -> dict[str, Any]:
    """Counts by kind (online, offline, never heard, silent, sending only bad payloads, low
    battery) and the devices with a problem, worst first, each with a plain ``status`` sentence.
    Also the ids of unregistered devices that sent messages in the last ``hours``."""
    rows = _rows(conn, now, settings, hours)
    by_kind = {k: {"kind": k, "total": 0, "online": 0, "offline": 0, "never": 0, "silent": 0,
                   "bad_only": 0, "low_battery": 0} for k in DEVICE_KINDS}
    problems = []
    for row in rows:
        counts = by_kind[row["kind"]]
        low = row["battery_pct"] is not None and row["battery_pct"] < LOW_BATTERY_PCT
        counts["total"] += 1
        counts["online"] += row["online"] is True
        counts["offline"] += row["online"] is False
        counts["never"] += row["online"] is None and row["last_seen"] is None
        counts["silent"] += row["silent"]
        counts["bad_only"] += row["bad_only"]
        counts["low_battery"] += low
        if row["silent"] or row["bad_only"] or row["rejected"] or row["online"] is False or low:
            problems.append(row)
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    problems.sort(key=lambda r: (not r["silent"], not r["bad_only"], r["online"] is not False,
                                 r["last_seen"] or epoch, r["id"]))
    with conn.cursor(row_factory=dict_row) as cur:
        unregistered = cur.execute(
            "SELECT device_id, count(*) AS n, max(received_at) AS last_at FROM dead_letters"
            " WHERE received_at > %s AND code = 'unknown_device' AND device_id IS NOT NULL"
            " GROUP BY device_id ORDER BY n DESC, device_id LIMIT %s",
            (now - timedelta(hours=hours), limit),
        ).fetchall()
    return {
        "by_kind": list(by_kind.values()),
        "problems": [{**_public(r), "status": describe(r, now, hours)} for r in problems[:limit]],
        "problem_count": len(problems),
        "unregistered": [dict(r) for r in unregistered],
        "hours": hours,
        "silent_after_intervals": settings.silent_after_intervals,
    }


def _public(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "kind", "label", "cell", "online", "status_at", "last_seen", "battery_pct",
            "interval_s", "rejected", "last_code", "silent", "bad_only")
    return {k: row[k] for k in keys}


def silent_device_ids(conn: Conn, now: datetime, settings: DeviceHealthSettings) -> set[str]:
    """Ids of the devices silent at ``now`` (for detectors: a silent meter's missing readings
    are a device fault, never "no water used")."""
    return {r["id"] for r in _rows(conn, now, settings, 24, "WHERE silent")}


def check_silent_devices(
    conn: Conn, now: datetime, settings: DeviceHealthSettings,
    on_opened: OnOpened | None = None,
) -> SilentCheck:
    """Open or refresh a low ``device_silent`` alert for each silent device and resolve the
    alert of each device that reports again. Run inside the caller's transaction.

    When more than ``mass_silence_fraction`` of the devices (10 or more) are silent at once, the
    fault is ours (ingest, the broker or the network), not theirs: no alert is opened or cleared,
    and a warning is logged instead of an alert storm.
    """
    rows = _rows(conn, now, settings, 24)
    silent = [r for r in rows if r["silent"]]
    ids = [r["id"] for r in silent]
    if len(rows) >= MASS_SILENCE_MIN_DEVICES and (
        len(silent) > settings.mass_silence_fraction * len(rows)
    ):
        log.warning("most devices are silent: is ingest or the broker down? no device alerts",
                    extra={"silent": len(silent), "devices": len(rows)})
        return SilentCheck(ids, [], [], suppressed=True)
    opened: list[str] = []
    cases: list[int] = []
    for row in silent:
        outcome = alerts.raise_alert(conn, alerts.AlertSignal(
            source_id=row["id"], kind=ALERT_KIND, severity="low",
            message=_silent_message(row, now), observed_at=now, grid_code=row["grid_code"],
            lon=row["lon"], lat=row["lat"],
            details={"device": row["label"], "last_seen": row["last_seen"],
                     "interval_s": row["interval_s"], "online": row["online"]},
        ))
        if outcome.opened:
            opened.append(row["id"])
            case = on_opened(conn, outcome.alert_id, now) if on_opened is not None else None
            if case is not None:
                cases.append(case.ticket_id)
    quiet = {r["id"] for r in silent}
    cleared = []
    with conn.cursor(row_factory=dict_row) as cur:
        sources = [r["source_id"] for r in cur.execute(
            "SELECT source_id FROM alerts WHERE kind = %s AND status <> 'resolved'",
            (ALERT_KIND,),
        )]
    for source in sources:
        if source not in quiet and alerts.clear_condition(
            conn, source, ALERT_KIND, now, "the device reports again"
        ):
            cleared.append(source)
    return SilentCheck(ids, opened, cleared, cases=cases)


def _silent_message(row: dict[str, Any], now: datetime) -> str:
    what = f"{KIND_NAMES.get(row['kind'], row['kind'])} {row['id']} ({row['label']})"
    interval = duration_text(timedelta(seconds=row["interval_s"]))
    if row["last_seen"] is None:
        text = f"{what} has sent no reading since it was installed (expected every {interval})"
    else:
        text = (f"{what} has sent no reading for {duration_text(now - row['last_seen'])}"
                f" (expected every {interval})")
    if row["online"] is False:
        text += "; it went offline"
    text += ". A device fault: check its power and connection."
    if row["kind"] == "water_meter":
        text += " Its silence does not mean that no water was used."
    return text

