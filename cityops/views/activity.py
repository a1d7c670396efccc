"""A plain summary of what the system did, for `cityops demo` and `cityops status`."""

from __future__ import annotations

from typing import Any

import psycopg


def activity_summary(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Counts of readings, dead letters, alerts, tickets, dispatches, injected incidents, needs
    assessments and open review tasks."""
    one = conn.execute(
        """
        SELECT (SELECT count(*) FROM readings) AS readings,
               (SELECT max(ts) FROM readings) AS latest_reading,
               (SELECT count(*) FROM dead_letters) AS dead_letters,
               (SELECT count(*) FROM devices) AS devices,
               (SELECT count(*) FROM devices WHERE online) AS devices_online,
               (SELECT count(*) FROM devices WHERE last_seen IS NOT NULL) AS devices_heard,
               (SELECT count(*) FROM dispatches WHERE sent_at IS NOT NULL) AS dispatches_sent,
               (SELECT count(*) FROM dispatches WHERE sent_at IS NULL) AS dispatches_pending,
               (SELECT count(*) FROM sim_incidents) AS incidents_injected,
               (SELECT count(*) FROM household_profiles) AS needs_profiles,
               (SELECT count(DISTINCT household_id) FROM needs_assessments) AS needs_assessed,
               (SELECT count(*) FROM review_tasks WHERE status = 'open') AS review_tasks_open
        """
    ).fetchone()
    assert one is not None
    alerts = conn.execute(
        "SELECT kind, status, count(*) AS n FROM alerts GROUP BY kind, status ORDER BY kind, status"
    ).fetchall()
    tickets = conn.execute(
        "SELECT status, count(*) AS n, count(worker_id) AS assigned FROM tickets"
        " GROUP BY status ORDER BY status"
    ).fetchall()
    incidents = conn.execute(
        "SELECT kind, count(*) AS n FROM sim_incidents GROUP BY kind ORDER BY kind"
    ).fetchall()
    return {
        **one,
        "alerts": {f"{a['kind']}/{a['status']}": a["n"] for a in alerts},
        "alerts_total": sum(a["n"] for a in alerts),
        "tickets": {t["status"]: t["n"] for t in tickets},
        "tickets_total": sum(t["n"] for t in tickets),
        "tickets_assigned": sum(t["assigned"] for t in tickets),
        "incidents": {i["kind"]: i["n"] for i in incidents},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as lines a person (or a script with grep) can read."""
    def kv(d: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"

    latest = summary["latest_reading"]
    return "\n".join([
        f"readings stored:    {summary['readings']}"
        + (f" (latest {latest:%Y-%m-%d %H:%M %Z})" if latest else ""),
        f"devices heard from: {summary['devices_heard']} of {summary['devices']}"
        f" ({summary['devices_online']} online now)",
        f"dead letters:       {summary['dead_letters']}",
        f"incidents injected: {summary['incidents_injected']} ({kv(summary['incidents'])})",
        f"alerts:             {summary['alerts_total']} ({kv(summary['alerts'])})",
        f"tickets:            {summary['tickets_total']} ({kv(summary['tickets'])}),"
        f" {summary['tickets_assigned']} assigned to a grid worker",
        f"dispatches sent:    {summary['dispatches_sent']}"
        f" ({summary['dispatches_pending']} pending)",
        f"needs assessed:     {summary['needs_assessed']} of {summary['needs_profiles']}"
        f" household profiles; {summary['review_tasks_open']} open review tasks",
    ])
