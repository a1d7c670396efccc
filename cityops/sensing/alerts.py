"""Alerts: facts about the world with a lifecycle (open -> acknowledged -> resolved).

At most one unresolved alert exists per source and kind; the database enforces it with a unique
partial index (``alerts_one_open``), so concurrent writers cannot duplicate an alert: a repeat of
the same condition updates the open alert (last_seen, occurrences, the worst severity).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import psycopg

SEVERITIES = ("low", "medium", "high", "critical")


class OpenedLike(Protocol):
    """What opening a case for an alert returns (``cityops.cases.opening.Opened``)."""

    ticket_id: int

    @property
    def worker_id(self) -> str | None: ...


# What a newly opened alert is handed to (connection, alert id, when observed): the case it
# opened, or None. The composition root wires in cityops.cases.opening.open_for_alert.
OnOpened = Callable[[psycopg.Connection[Any], int, datetime], OpenedLike | None]


@dataclass(frozen=True)
class AlertSignal:
    """A detector's finding about one source, ready to be stored."""

    source_id: str
    kind: str
    severity: str
    message: str
    observed_at: datetime
    grid_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        if self.observed_at.tzinfo is None:
            raise ValueError("observed_at must carry a time zone")


@dataclass(frozen=True)
class RaiseOutcome:
    """What storing a signal did: opened a new alert, or updated the open one."""

    alert_id: int
    opened: bool


class AlertStateError(ValueError):
    """An alert transition that is not allowed from the alert's current status."""


def raise_alert(conn: psycopg.Connection[Any], signal: AlertSignal) -> RaiseOutcome:
    """Open an alert for the signal, or update the open alert of the same source and kind."""
    row = conn.execute(
        """
        INSERT INTO alerts (source_id, kind, severity, message, details, grid_code, lon, lat,
                            first_seen, last_seen)
        VALUES (%(source_id)s, %(kind)s, %(severity)s, %(message)s, %(details)s, %(grid_code)s,
                %(lon)s, %(lat)s, %(observed_at)s, %(observed_at)s)
        ON CONFLICT (source_id, kind) WHERE status <> 'resolved' DO UPDATE SET
            occurrences = alerts.occurrences + 1,
            last_seen = GREATEST(alerts.last_seen, EXCLUDED.last_seen),
            first_seen = LEAST(alerts.first_seen, EXCLUDED.first_seen),
            severity = CASE WHEN array_position(%(order)s, EXCLUDED.severity)
                                 > array_position(%(order)s, alerts.severity)
                            THEN EXCLUDED.severity ELSE alerts.severity END,
            message = CASE WHEN EXCLUDED.last_seen >= alerts.last_seen
                           THEN EXCLUDED.message ELSE alerts.message END,
            details = CASE WHEN EXCLUDED.last_seen >= alerts.last_seen
                           THEN EXCLUDED.details ELSE alerts.details END
        RETURNING id, (xmax = 0) AS opened
        """,
        {
            "source_id": signal.source_id,
            "kind": signal.kind,
            "severity": signal.severity,
            "message": signal.message,
            "details": json.dumps(signal.details, default=str),
            "grid_code": signal.grid_code,
            "lon": signal.lon,
            "lat": signal.lat,
            "observed_at": signal.observed_at,
            "order": list(SEVERITIES),
        },
    ).fetchone()
    assert row is not None
    alert_id, opened = (row["id"], row["opened"]) if isinstance(row, dict) else row
    return RaiseOutcome(alert_id=alert_id, opened=bool(opened))


def clear_condition(
    conn: psycopg.Connection[Any], source_id: str, kind: str, observed_at: datetime, reason: str
) -> int | None:
    """Resolve the unresolved alert of this source and kind because its condition cleared.

    Returns the alert id, or None when there was no unresolved alert (or it started later).
    """
    row = conn.execute(
        """
        UPDATE alerts SET status = 'resolved', resolved_at = now(),
               details = details || jsonb_build_object('resolved_because', %s::text,
                                                       'cleared_at', %s::timestamptz)
        WHERE source_id = %s AND kind = %s AND status <> 'resolved' AND first_seen <= %s
        RETURNING id
        """,
        (reason, observed_at, source_id, kind, observed_at),
    ).fetchone()
    if row is None:
        return None
    return int(row["id"] if isinstance(row, dict) else row[0])


def acknowledge(conn: psycopg.Connection[Any], alert_id: int, actor: str) -> None:
    """Mark an open alert acknowledged (someone is on it)."""
    _move(conn, alert_id, "acknowledged", actor, allowed_from=("open",))


def resolve(conn: psycopg.Connection[Any], alert_id: int, actor: str, note: str = "") -> None:
    """Resolve an open or acknowledged alert."""
    _move(conn, alert_id, "resolved", actor, allowed_from=("open", "acknowledged"), note=note)


def _move(
    conn: psycopg.Connection[Any],
    alert_id: int,
    to: str,
    actor: str,
    allowed_from: tuple[str, ...],
    note: str = "",
) -> None:
    stamp = "acknowledged_at" if to == "acknowledged" else "resolved_at"
    row = conn.execute(
        f"""
        UPDATE alerts SET status = %s, {stamp} = now(),
               details = details || jsonb_build_object(%s::text, jsonb_build_object(
                   'by', %s::text, 'note', %s::text))
        WHERE id = %s AND status = ANY(%s)
        RETURNING id
        """,
        (to, to + "_by", actor, note, alert_id, list(allowed_from)),
    ).fetchone()
    if row is None:
        current = conn.execute("SELECT status FROM alerts WHERE id = %s", (alert_id,)).fetchone()
        if current is None:
            raise AlertStateError(f"alert {alert_id} does not exist")
        status = current["status"] if isinstance(current, dict) else current[0]
        raise AlertStateError(f"alert {alert_id} is {status}; it cannot become {to}")
