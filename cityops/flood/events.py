"""Flood events (docs/cases.md, "Flood season"): what a flood did, gauge by gauge and case by case.

A flood event is a period with at least one unresolved ``flood_depth`` alert; alerts whose
times overlap or lie within ``EVENT_GAP`` (60 min) of each other are one event.
:func:`flood_events` lists them with their gauges (peak depth, levels crossed), the cases opened
in them and the response times; :func:`current_flood` is the event going on now, for the wall.

An alert's time span is from its ``first_seen`` (the reading that opened it) to the reading that
cleared it (``details.cleared_at``), or when it was resolved by hand; an unresolved alert is still
going on. An event's id is the id of its first alert.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cityops.cases import assignment
from cityops.cases.tickets import OPEN_STATES
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.sensing.cameras import NEARBY_M, cameras_within

# Cases of these categories opened during an event count as its cases (besides its alerts').
FLOOD_CATEGORIES = ("E0401", "C0205")  # road waterlogging; underpass facilities damaged
EVENT_GAP = timedelta(minutes=60)
DEFAULT_LEVELS_MM = (150.0, 270.0, 500.0)

ALERTS_SQL = """
SELECT * FROM (
    SELECT a.id, a.source_id, a.severity, a.status, a.message, a.details, a.grid_code, a.lon,
           a.lat, a.first_seen, a.last_seen,
           CASE WHEN a.status = 'resolved' THEN
               COALESCE((a.details ->> 'cleared_at')::timestamptz, a.resolved_at) END AS ended,
           d.label, d.config, g.name AS cell
    FROM alerts a
    LEFT JOIN devices d ON d.id = a.source_id
    LEFT JOIN grids g ON g.code = a.grid_code
    -- low is a river gauge's action stage (get ready), not a flood: a street's first level and
    -- a river's minor flood stage are medium
    WHERE a.kind = 'flood_depth' AND a.severity <> 'low' AND a.first_seen <= %(until)s) s
WHERE ended IS NULL OR ended >= %(since)s
ORDER BY first_seen, id
"""


def merge_alerts(alerts: Sequence[Mapping[str, Any]], gap: timedelta = EVENT_GAP) -> list[
    dict[str, Any]
]:
    """Group alerts (``first_seen``, ``ended``: None while unresolved) into events: an alert
    starting at most ``gap`` after the event's end so far joins it. Returns events with
    ``start``, ``end`` (None while going on) and ``alerts`` (in order of start)."""
    events: list[dict[str, Any]] = []
    for a in sorted(alerts, key=lambda a: (a["first_seen"], a["id"])):
        current = events[-1] if events else None
        if current is not None and (current["end"] is None
                                    or a["first_seen"] <= current["end"] + gap):
            current["alerts"].append(a)
            current["end"] = None if a["ended"] is None or current["end"] is None \
                else max(current["end"], a["ended"])
        else:
            events.append({"start": a["first_seen"], "end": a["ended"], "alerts": [a]})
    for event in events:
        event["id"] = event["alerts"][0]["id"]
    return events


def _levels(alert: Mapping[str, Any]) -> list[float]:
    details, config = alert["details"] or {}, alert["config"] or {}
    if details.get("levels_mm"):
        return [float(x) for x in details["levels_mm"]]
    first = float(config.get("threshold_mm", DEFAULT_LEVELS_MM[0]))
    return [first, *(x for x in DEFAULT_LEVELS_MM[1:] if x > first)]


def _level_name(depth: float | None, levels: Sequence[float]) -> str:
    reached = sum(1 for x in levels if depth is not None and depth >= x)
    if reached == 0:
        return f"under level 1 ({levels[0]:.0f} mm)"
    return f"level {reached} of {len(levels)} ({levels[reached - 1]:.0f} mm)"


def _gauges(conn: psycopg.Connection[Any], event: dict[str, Any], until: datetime) -> list[
    dict[str, Any]
]:
    """Per gauge of the event: peak depth and when, the level reached, when each level was first
    crossed (from the readings; the alerts' depths count too), its alerts."""
    by_gauge: dict[str, list[Mapping[str, Any]]] = {}
    for a in event["alerts"]:
        by_gauge.setdefault(a["source_id"], []).append(a)
    end = event["end"] or until
    gauges = []
    for device_id, alerts in by_gauge.items():
        first = alerts[0]
        levels = _levels(alerts[-1])
        rows = conn.execute(
            "SELECT ts, value FROM readings WHERE device_id = %s AND metric = 'depth_mm'"
            " AND ts >= %s AND ts <= %s ORDER BY ts",
            (device_id, event["start"], end),
        ).fetchall()
        peak, peak_at = None, None
        for r in rows:
            if peak is None or r["value"] > peak:
                peak, peak_at = float(r["value"]), r["ts"]
        for a in alerts:
            depth = (a["details"] or {}).get("depth_mm")
            if depth is not None and (peak is None or float(depth) > peak):
                peak, peak_at = float(depth), a["last_seen"]
        crossed = []
        for i, level in enumerate(levels, start=1):
            at = next((r["ts"] for r in rows if r["value"] >= level), None)
            if at is None and i == 1:
                at = first["first_seen"]  # the alert itself says the first level was reached
            if at is not None and (i == 1 or (peak is not None and peak >= level)):
                crossed.append({"level": i, "mm": level, "at": at})
        open_alert = next((a for a in alerts if a["ended"] is None), None)
        last = alerts[-1]
        depth = (last["details"] or {}).get("depth_mm")
        if depth is None and rows:
            depth = float(rows[-1]["value"])
        gauges.append({
            "device_id": device_id, "label": first["label"] or device_id, "cell": first["cell"],
            "grid_code": first["grid_code"], "lon": first["lon"], "lat": first["lat"],
            "levels_mm": levels, "peak_mm": peak, "peak_at": peak_at,
            "peak_level": _level_name(peak, levels), "crossed": crossed,
            "severity": max((a["severity"] for a in alerts), key=_SEVERITY_RANK.index),
            "alerts": [a["id"] for a in alerts], "flooding": open_alert is not None,
            "depth_mm": depth, "level": _level_name(depth, levels) if depth is not None else None,
            "rise_mm_per_min": (last["details"] or {}).get("rise_mm_per_min"),
            "message": last["message"], "last_seen": last["last_seen"],
            "first_seen": first["first_seen"], "ended": None if open_alert else
            max(a["ended"] for a in alerts),
        })
    gauges.sort(key=lambda g: (-(g["peak_mm"] or 0), g["device_id"]))
    return gauges


_SEVERITY_RANK = ["low", "medium", "high", "critical"]
CASE_STAGES = ("dispatched", "signed_for", "handled")


def _cases(conn: psycopg.Connection[Any], event: dict[str, Any], until: datetime) -> list[
    dict[str, Any]
]:
    """Cases of the event's alerts, and of the flood categories opened during it, with the first
    time each reached dispatched, signed for and handled, and the response times (seconds)."""
    rows = conn.execute(
        """
        SELECT t.id, t.title, t.category, t.status, t.priority, t.source, t.grid_code,
               g.name AS cell, t.worker_id, w.name AS worker, t.created_at, t.alert_id,
               t.lon, t.lat,
               (SELECT min(e.at) FROM ticket_events e WHERE e.ticket_id = t.id
                  AND e.to_status = 'dispatched' AND e.from_status <> 'dispatched')
                 AS dispatched_at,
               (SELECT min(e.at) FROM ticket_events e WHERE e.ticket_id = t.id
                  AND e.to_status = 'signed_for' AND e.from_status <> 'signed_for') AS signed_at,
               (SELECT min(e.at) FROM ticket_events e WHERE e.ticket_id = t.id
                  AND e.to_status = 'handled' AND e.from_status <> 'handled') AS handled_at
        FROM tickets t
        LEFT JOIN grids g ON g.code = t.grid_code
        LEFT JOIN workers w ON w.id = t.worker_id
        WHERE t.alert_id = ANY(%(alerts)s)
           OR (t.category = ANY(%(categories)s) AND t.created_at >= %(start)s
               AND t.created_at <= %(end)s)
        ORDER BY t.created_at, t.id
        """,
        {"alerts": [a["id"] for a in event["alerts"]], "categories": list(FLOOD_CATEGORIES),
         "start": event["start"], "end": event["end"] or until},
    ).fetchall()
    cases = []
    for r in rows:
        d = r["dispatched_at"]
        cases.append({
            **r, "open": r["status"] in OPEN_STATES,
            "sign_s": (r["signed_at"] - d).total_seconds() if d and r["signed_at"] else None,
            "handle_s": (r["handled_at"] - d).total_seconds() if d and r["handled_at"] else None,
        })
    return cases


def _stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "median_s": statistics.median(values) if values else None,
            "max_s": max(values) if values else None}


def _describe(conn: psycopg.Connection[Any], event: dict[str, Any], until: datetime) -> dict[
    str, Any
]:
    event["active"] = event["end"] is None
    event["gauges"] = _gauges(conn, event, until)
    event["cases"] = _cases(conn, event, until)
    event["response"] = {
        "sign": _stats([c["sign_s"] for c in event["cases"] if c["sign_s"] is not None]),
        "handle": _stats([c["handle_s"] for c in event["cases"] if c["handle_s"] is not None]),
    }
    event["peak_mm"] = max((g["peak_mm"] for g in event["gauges"] if g["peak_mm"] is not None),
                           default=None)
    event["duration_s"] = ((event["end"] or until) - event["start"]).total_seconds()
    return event


def flood_events(
    conn: psycopg.Connection[Any], start: datetime, end: datetime, *, detail: bool = True
) -> list[dict[str, Any]]:
    """Flood events overlapping ``start``..``end``, oldest first: ``id``, ``start``, ``end``
    (None while going on), ``active``, ``alerts``; with ``detail`` also ``gauges`` (peak depth,
    levels crossed), ``cases`` (with ``sign_s`` and ``handle_s``: dispatch to signed for and to
    handled), ``response`` (n, median and max of each), ``peak_mm`` and ``duration_s``."""
    lo, hi = start, end
    while True:  # widen the window until no alert joins the events from outside it
        rows = conn.execute(ALERTS_SQL, {"since": lo - EVENT_GAP, "until": hi + EVENT_GAP})
        events = [e for e in merge_alerts(rows.fetchall())
                  if e["start"] <= end and (e["end"] is None or e["end"] >= start)]
        wider = (min([lo, *(e["start"] for e in events)]),
                 max([hi, *(e["end"] for e in events if e["end"] is not None)]))
        if wider == (lo, hi):
            break
        lo, hi = wider
    if detail:
        events = [_describe(conn, e, end) for e in events]
    return events


def flood_event(conn: psycopg.Connection[Any], key: str, now: datetime) -> dict[str, Any] | None:
    """One event, by the id of any of its alerts (its own id is its first alert's) or by a time
    in it (ISO 8601), with details and its ``timeline``; None when there is no such event."""
    if key.isdigit():
        row = conn.execute(
            "SELECT first_seen FROM alerts WHERE id = %s AND kind = 'flood_depth'", (int(key),)
        ).fetchone()
        if row is None:
            return None
        at = row["first_seen"]
    else:
        try:
            at = datetime.fromisoformat(key)
        except ValueError:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    events = flood_events(conn, at, at, detail=False)
    match = next((e for e in events if not key.isdigit()
                  or int(key) in {a["id"] for a in e["alerts"]}), None)
    if match is None:
        return None
    event = _describe(conn, match, now if match["end"] is None else match["end"])
    event["timeline"] = timeline(conn, event)
    return event


def timeline(conn: psycopg.Connection[Any], event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What happened, in order: alerts opened, levels crossed, peaks, the cases' moves (opened,
    dispatched, signed for, handled, closed) and alerts resolved; the first and the last alert
    are marked. Each entry: at, kind, text."""
    items: list[dict[str, Any]] = []
    alerts = sorted(event["alerts"], key=lambda a: (a["first_seen"], a["id"]))
    labels = {g["device_id"]: g["label"] for g in event["gauges"]}
    for i, a in enumerate(alerts):
        where = labels.get(a["source_id"], a["source_id"])
        first = "First alert" if i == 0 else "Alert"
        items.append({"at": a["first_seen"], "kind": "first_alert" if i == 0 else "alert",
                      "text": f"{first}: {where} (alert #{a['id']})"})
    for g in event["gauges"]:
        for c in g["crossed"]:
            items.append({"at": c["at"], "kind": "level",
                          "text": f"{g['label']}: level {c['level']} ({c['mm']:.0f} mm) crossed"})
        if g["peak_mm"] is not None and g["peak_at"] is not None:
            items.append({"at": g["peak_at"], "kind": "peak",
                          "text": f"{g['label']}: peak {g['peak_mm']:.0f} mm"})
    ids = [c["id"] for c in event["cases"]]
    if ids:
        for e in conn.execute(
            "SELECT e.ticket_id, e.at, e.actor, e.to_status FROM ticket_events e"
            " WHERE e.ticket_id = ANY(%s) AND e.kind = 'transition'"
            " AND e.to_status IN ('reported', 'dispatched', 'signed_for', 'handled', 'closed')"
            " AND e.from_status IS DISTINCT FROM e.to_status ORDER BY e.at, e.id",
            (ids,),
        ):
            verb = {"reported": "opened", "dispatched": "dispatched", "signed_for": "signed for",
                    "handled": "handled", "closed": "closed"}[e["to_status"]]
            items.append({"at": e["at"], "kind": f"case_{e['to_status']}",
                          "text": f"Case #{e['ticket_id']} {verb} ({e['actor']})"})
    ended = [a for a in alerts if a["ended"] is not None]
    last = max(ended, key=lambda a: (a["ended"], a["id"])) if event["end"] is not None else None
    for a in ended:
        where = labels.get(a["source_id"], a["source_id"])
        final = a is last
        items.append({"at": a["ended"], "kind": "last_resolved" if final else "resolved",
                      "text": f"{'Last alert resolved' if final else 'Alert resolved'}: {where}"
                              f" (alert #{a['id']})"})
    order = {"first_alert": 0, "alert": 1, "level": 2, "peak": 3, "last_resolved": 9}
    items.sort(key=lambda x: (x["at"], order.get(x["kind"], 5)))
    return items


def current_flood(
    conn: psycopg.Connection[Any], now: datetime, tz: ZoneInfo | None = None, *,
    camera_radius_m: float = NEARBY_M,
) -> dict[str, Any] | None:
    """The flood event going on at ``now`` (an unresolved flood alert), for the wall; None when
    there is none. Besides :func:`flood_events`' details: per flooding gauge its ``cameras``
    within 300 m; ``open_cases``; ``crews``: the workers on duty now in the streets of the
    flooding gauges, with their cases in hand (the roster is read in ``tz``, by default the
    settings' default zone); ``streets``: those streets' codes and names."""
    tz = tz or ZoneInfo(Settings.model_fields["timezone"].default)  # rosters are local
    active = next((e for e in flood_events(conn, now, now, detail=False) if e["end"] is None),
                  None)
    if active is None:
        return None
    event = _describe(conn, active, now)
    for g in event["gauges"]:
        g["cameras"] = (cameras_within(conn, g["lon"], g["lat"], camera_radius_m)
                        if g["flooding"] and g["lon"] is not None else [])
    event["open_cases"] = [c for c in event["cases"] if c["open"]]
    prefixes = sorted({g["grid_code"][:9] for g in event["gauges"]
                       if g["flooding"] and g["grid_code"]})
    streets = conn.execute(
        "SELECT code, name FROM grids WHERE level = 'street' AND left(code, 9) = ANY(%s)"
        " ORDER BY code", (prefixes,)).fetchall()
    cells = [r["code"] for r in conn.execute(
        "SELECT code FROM grids WHERE level = 'community' AND left(code, 9) = ANY(%s)",
        (prefixes,))]
    crews = assignment.on_duty(conn, cells, now, tz) if cells else []
    names = {r["id"]: r for r in conn.execute(
        "SELECT w.id, w.name, g.name AS cell FROM workers w JOIN grids g ON g.code = w.cell_code"
        " WHERE w.id = ANY(%s)", ([c["id"] for c in crews],))}
    event["crews"] = [{"id": c["id"], "name": names[c["id"]]["name"],
                       "cell": names[c["id"]]["cell"], "cell_code": c["cell_code"],
                       "open_tickets": c["open_tickets"], "starts": c["starts"],
                       "ends": c["ends"]} for c in crews]
    event["crews"].sort(key=lambda c: (c["cell_code"], c["id"]))
    event["streets"] = list(streets)
    return event


def read_events(db: Database, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """:func:`flood_events` with their details (the /flood list)."""
    with db.transaction() as conn:
        return flood_events(conn, start, end)


def read_event(db: Database, key: str, now: datetime) -> dict[str, Any] | None:
    """:func:`flood_event` (one event's report)."""
    with db.transaction() as conn:
        return flood_event(conn, key, now)
