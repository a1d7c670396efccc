"""Service tickets (工单): work for people, with a state machine and an event per change.

States of the first workflow (the full GB/T 30428 case workflow extends it later)::

    new -> dispatched -> acknowledged -> arrived -> resolved -> closed
    resolved -> dispatched   (operations reopen it: the work was not done)
    any open state -> cancelled (operations, with a reason)

Every change is a row in ``ticket_events`` (who, when, from, to, note), written in the same
transaction as the change itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

OPEN_STATES = ("new", "dispatched", "acknowledged", "arrived", "resolved")
STATES = (*OPEN_STATES, "closed", "cancelled")

# to_state -> (states it may be reached from, roles that may do it)
TRANSITIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dispatched": (("new", "resolved"), ("system", "operations", "admin")),
    "acknowledged": (("dispatched",), ("grid_worker", "operations", "admin")),
    "arrived": (("acknowledged",), ("grid_worker",)),
    "resolved": (("arrived",), ("grid_worker",)),
    "closed": (("resolved",), ("operations", "admin")),
    "cancelled": (("new", "dispatched", "acknowledged", "arrived"), ("operations", "admin")),
}
NOTE_REQUIRED = {"resolved", "cancelled"}

# alert kind -> (ticket category, title)
ALERT_CATEGORIES: dict[str, tuple[str, str]] = {
    "flood_depth": ("emergency.road_waterlogging", "Street flooding"),
    "manhole_tilt": ("facility.manhole_cover", "Manhole cover displaced"),
    "water_silence": ("care.elderly_welfare_check", "Welfare check: no water use"),
    "water_running": ("care.elderly_welfare_check", "Welfare check: water running for hours"),
    "water_decline": ("care.elderly_welfare_check", "Welfare visit: water use falling for days"),
    "manhole_water": ("facility.manhole_cover", "Water standing in a manhole"),
    "gauge_fault": ("facility.sensor_fault", "Flood gauge stuck: check the sensor"),
}
SEVERITY_PRIORITY = {"critical": "urgent", "high": "urgent", "medium": "normal", "low": "low"}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (with role, and worker id for grid workers) or the system."""

    name: str
    role: str
    worker_id: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system", "system")


class TransitionError(ValueError):
    """A ticket change that is not allowed; the message says why and what is allowed."""


def allowed_next(status: str, role: str) -> list[str]:
    """States a user of ``role`` may move a ticket from ``status`` to."""
    return [to for to, (froms, roles) in TRANSITIONS.items() if status in froms and role in roles]


def record_event(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    actor: str,
    from_status: str | None,
    to_status: str,
    note: str = "",
) -> None:
    """Append an event to a ticket's timeline."""
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, actor, from_status, to_status, note)"
        " VALUES (%s, %s, %s, %s, %s)",
        (ticket_id, actor, from_status, to_status, note),
    )


def create_for_alert(
    conn: psycopg.Connection[Any], alert_id: int, *, ack_minutes: int, resolve_hours: int
) -> int | None:
    """Open a ticket for an alert unless it has one; return the new ticket id (None if existed).

    Deadlines run from the moment the ticket is opened (clock time; working-time calendars
    come with the full case workflow).
    """
    alert = conn.execute(
        "SELECT id, kind, severity, message, grid_code, lon, lat, first_seen, source_id"
        " FROM alerts WHERE id = %s",
        (alert_id,),
    ).fetchone()
    if alert is None:
        raise ValueError(f"alert {alert_id} does not exist")
    category, title = ALERT_CATEGORIES.get(alert["kind"], ("other", alert["kind"]))
    label = conn.execute(
        "SELECT label FROM devices WHERE id = %s", (alert["source_id"],)
    ).fetchone()
    where = label["label"] if label else alert["source_id"]
    row = conn.execute(
        """
        INSERT INTO tickets (alert_id, title, description, category, priority, status, grid_code,
                             lon, lat, ack_due_at, due_at)
        VALUES (%s, %s, %s, %s, %s, 'new', %s, %s, %s,
                now() + make_interval(mins => %s), now() + make_interval(hours => %s))
        ON CONFLICT (alert_id) DO NOTHING
        RETURNING id
        """,
        (
            alert_id,
            f"{title} — {where}",
            alert["message"],
            category,
            SEVERITY_PRIORITY[alert["severity"]],
            alert["grid_code"],
            alert["lon"],
            alert["lat"],
            ack_minutes,
            resolve_hours,
        ),
    ).fetchone()
    if row is None:
        return None
    ticket_id = int(row["id"])
    record_event(conn, ticket_id, "system", None, "new", f"opened by alert #{alert_id}")
    return ticket_id


def transition(
    conn: psycopg.Connection[Any], ticket_id: int, to_status: str, actor: Actor, note: str = ""
) -> str:
    """Move a ticket to ``to_status`` if the actor may; write the event; return the old status."""
    if to_status not in TRANSITIONS:
        raise TransitionError(f"{to_status!r} is not a state a ticket can be moved to")
    ticket = conn.execute(
        "SELECT status, worker_id FROM tickets WHERE id = %s FOR UPDATE", (ticket_id,)
    ).fetchone()
    if ticket is None:
        raise TransitionError(f"ticket {ticket_id} does not exist")
    current = ticket["status"]
    froms, roles = TRANSITIONS[to_status]
    if actor.role not in roles:
        raise TransitionError(f"a {actor.role} cannot move a ticket to {to_status}")
    if actor.role == "grid_worker" and ticket["worker_id"] != actor.worker_id:
        raise TransitionError(f"ticket {ticket_id} is not assigned to you")
    if current not in froms:
        options = ", ".join(allowed_next(current, actor.role)) or "nothing"
        raise TransitionError(
            f"ticket {ticket_id} is {current}; it cannot become {to_status} (allowed: {options})"
        )
    if to_status == "dispatched" and ticket["worker_id"] is None:
        raise TransitionError(f"ticket {ticket_id} has no worker yet: assign one to dispatch it")
    if to_status in NOTE_REQUIRED and not note.strip():
        raise TransitionError(f"say what was done or why when a ticket becomes {to_status}")
    conn.execute(
        "UPDATE tickets SET status = %s, updated_at = now(),"
        " closed_at = CASE WHEN %s IN ('closed', 'cancelled') THEN now() ELSE closed_at END"
        " WHERE id = %s",
        (to_status, to_status, ticket_id),
    )
    record_event(conn, ticket_id, actor.name, current, to_status, note.strip())
    if to_status == "acknowledged":
        conn.execute(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now()"
            " WHERE id = (SELECT alert_id FROM tickets WHERE id = %s) AND status = 'open'",
            (ticket_id,),
        )
    return str(current)
