"""The notification outbox (the ``dispatches`` table): the one place that writes to it.

A notification is queued in the same transaction as what it tells (a dispatch, a task-list
refresh, a reminder, an escalation), so a crash between the two loses nothing; the notifiers of
:mod:`cityops.cases.notify` send it after the commit. A worker's row holds their whole open-task
list (:func:`queue_worker_update`), retained on their topic so that a phone connecting later gets
the current list at once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from cityops.cases.tickets import WORKER_STATES
from cityops.platform.topics import Topics

CHANNELS = ("mqtt", "webhook")


def queue_notification(
    conn: psycopg.Connection[Any],
    *,
    channel: str,
    topic: str,
    payload: dict[str, Any],
    ticket_id: int,
    worker_id: str | None = None,
) -> int:
    """Put a notification in the outbox (in the caller's transaction); return its id.

    ``topic`` is the MQTT topic (for a webhook row: the topic the same message has on MQTT, sent
    along in the body so the receiver knows whom it is for).
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    row = conn.execute(
        "INSERT INTO dispatches (ticket_id, worker_id, topic, payload, channel)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (ticket_id, worker_id, topic, json.dumps(payload), channel),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def worker_tasks(conn: psycopg.Connection[Any], worker_id: str) -> list[dict[str, Any]]:
    """A worker's cases in hand (the worker states) as sent to the phone (no reporter's or
    resident's personal details)."""
    rows = conn.execute(
        """
        SELECT t.id, t.title, t.description, t.priority, t.status, t.grid_code, g.name AS cell,
               t.lon, t.lat, t.ack_due_at, t.due_at, t.created_at
        FROM tickets t LEFT JOIN grids g ON g.code = t.grid_code
        WHERE t.worker_id = %s AND t.status = ANY(%s)
        ORDER BY (t.priority = 'urgent') DESC, t.due_at, t.id
        """,
        (worker_id, list(WORKER_STATES)),
    ).fetchall()
    return [
        {
            "ticket_id": r["id"], "title": r["title"], "what": r["description"],
            "priority": r["priority"], "status": r["status"], "cell": r["cell"],
            "grid_code": r["grid_code"], "lon": r["lon"], "lat": r["lat"],
            "ack_due_at": _iso(r["ack_due_at"]), "due_at": _iso(r["due_at"]),
        }
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def queue_worker_update(
    conn: psycopg.Connection[Any], worker_id: str, topics: Topics, ticket_id: int, event: str
) -> int:
    """Queue the worker's current open-task list (retained on their topic) in the outbox."""
    payload = {
        "worker_id": worker_id,
        "event": {"type": event, "ticket_id": ticket_id},
        "tasks": worker_tasks(conn, worker_id),
    }
    return queue_notification(conn, channel="mqtt", topic=topics.dispatch(worker_id),
                              payload=payload, ticket_id=ticket_id, worker_id=worker_id)
