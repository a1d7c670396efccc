"""Service tickets (工单): the case workflow of digital urban management (GB/T 30428 / CJ/T 315).

A case comes from a sensor alert, a grid worker on patrol, a citizen (Open311) or a 12345 hotline
call, and moves through these states (``TRANSITIONS`` says who may make each move)::

    reported -> accepted -> registered -> dispatched -> signed_for -> in_progress -> handled
             -> verified -> closed -> evaluated
    reported / accepted / registered -> voided        (not a case for us, with a reason)
    dispatched / signed_for -> returned -> dispatched (wrong owner: back to dispatch, with reason)
    handled -> rework -> in_progress                  (verification failed: back to the handler)
    signed_for / in_progress -> postponed -> in_progress / handled  (approved, with a new due time)
    reported -> closed      (a patrol worker fixed it on the spot; a consultation answered at once)

Every change is a row in ``ticket_events`` (who, role, when, from, to, note, photos), written in
the same transaction as the change itself. Deadlines are set by :mod:`cityops.cases.assignment`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

STATES = (
    "reported", "accepted", "voided", "registered", "dispatched", "signed_for", "in_progress",
    "handled", "verified", "closed", "evaluated", "returned", "rework", "postponed",
)
FINAL_STATES = ("voided", "closed", "evaluated")
OPEN_STATES = tuple(s for s in STATES if s not in FINAL_STATES)
# States in which the case is in a grid worker's hands (their task list).
WORKER_STATES = ("dispatched", "signed_for", "in_progress", "postponed", "rework")
# The stage whose time limit runs, by state: accept, register and dispatch; sign for; handle. A
# handled case waits for verification and a verified one for closing: no limit runs.
STAGE_STATES = {
    "dispatch": ("reported", "accepted", "registered", "returned"),
    "sign": ("dispatched",),
    "handle": ("signed_for", "in_progress", "postponed", "rework"),
}
PRIORITIES = ("urgent", "normal", "low")  # most pressing first
SOURCES = ("sensor", "patrol", "citizen", "hotline", "scheduled")
CALL_TYPES = ("consultation", "help", "suggestion", "complaint", "report")

OPS = ("operations", "admin")
VERIFIERS = ("supervisor", "operations", "admin", "grid_worker")


@dataclass(frozen=True)
class Rule:
    """Who may move a case to a state, and from which states."""

    froms: tuple[str, ...]
    roles: tuple[str, ...]
    note_required: bool = False
    assignee_only: bool = False  # a grid worker must be the case's worker
    not_handler: bool = False    # the actor must not be who handled the case


TRANSITIONS: dict[str, Rule] = {
    "accepted": Rule(("reported",), ("system", *OPS, "hotline")),
    # the system voids a report that duplicates an open case (cityops.cases.intake)
    "voided": Rule(("reported", "accepted", "registered"), ("system", *OPS, "hotline"),
                   note_required=True),
    "registered": Rule(("accepted",), ("system", *OPS, "hotline")),
    "dispatched": Rule(("registered", "returned"), ("system", *OPS)),
    "returned": Rule(("dispatched", "signed_for"), ("grid_worker",), note_required=True,
                     assignee_only=True),
    "signed_for": Rule(("dispatched",), ("grid_worker", *OPS), assignee_only=True),
    "in_progress": Rule(("signed_for", "rework", "postponed"), ("grid_worker",),
                        assignee_only=True),
    "postponed": Rule(("signed_for", "in_progress"), OPS, note_required=True),
    "handled": Rule(("in_progress", "postponed"), ("grid_worker",), note_required=True,
                    assignee_only=True),
    "verified": Rule(("handled",), VERIFIERS, not_handler=True),
    "rework": Rule(("handled",), VERIFIERS, note_required=True, not_handler=True),
    # from reported: only the special cases of check_transition (fixed on the spot; a consultation
    # answered)
    "closed": Rule(("verified", "reported"), OPS),
    "evaluated": Rule(("closed",), ("system", *OPS, "hotline")),
}
# Moves that only a dedicated function makes (it records what the move needs).
VIA_FUNCTION = {"postponed": "decide_postponement", "evaluated": "cityops.cases.ratings"}

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


@dataclass(frozen=True)
class NewCase:
    """What a new case is filed with (any source)."""

    source: str
    category: str              # "E0401"
    title: str
    description: str
    priority: str = "normal"   # urgent / normal / low
    lon: float | None = None
    lat: float | None = None
    grid_code: str | None = None
    address: str | None = None
    reported_by: str | None = None      # the user who filed it
    reporter_name: str | None = None    # citizen or caller: personal
    reporter_phone: str | None = None
    reporter_email: str | None = None
    call_type: str | None = None
    alert_id: int | None = None
    fixed_on_spot: bool = False
    key_site_id: str | None = None
    unit: str | None = None
    dispatch_due_at: datetime | None = None


def allowed_next(status: str, role: str) -> list[str]:
    """States a user of ``role`` may move a ticket from ``status`` to (through the generic
    :func:`transition`; the special moves from ``reported`` to ``closed`` are left out)."""
    return [
        to for to, rule in TRANSITIONS.items()
        if status in rule.froms and role in rule.roles and to not in VIA_FUNCTION
        and not (to == "closed" and status == "reported")
    ]


def record_event(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    actor: str,
    from_status: str | None,
    to_status: str,
    note: str = "",
    *,
    kind: str = "transition",
    role: str | None = None,
    photos: Sequence[int] = (),
) -> None:
    """Append an event to a ticket's timeline."""
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, actor, from_status, to_status, note, kind, role,"
        " photos) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (ticket_id, actor, from_status, to_status, note, kind, role, list(photos)),
    )


def create_case(conn: psycopg.Connection[Any], case: NewCase, actor: Actor) -> int:
    """File a new case in state ``reported``; return its id."""
    if case.source not in SOURCES:
        raise ValueError(f"unknown case source {case.source!r}; one of {', '.join(SOURCES)}")
    if case.call_type is not None and case.call_type not in CALL_TYPES:
        raise ValueError(f"unknown call type {case.call_type!r}; one of {', '.join(CALL_TYPES)}")
    if case.priority not in PRIORITIES:
        raise ValueError(f"priority must be urgent, normal or low, not {case.priority!r}")
    row = conn.execute(
        """
        INSERT INTO tickets (alert_id, title, description, category, priority, status, grid_code,
                             lon, lat, source, call_type, address, reporter_name, reporter_phone,
                             reporter_email, reported_by, unit, dispatch_due_at, fixed_on_spot,
                             key_site_id)
        VALUES (%s, %s, %s, %s, %s, 'reported', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                %s, %s)
        RETURNING id
        """,
        (case.alert_id, case.title, case.description, case.category, case.priority,
         case.grid_code, case.lon, case.lat, case.source, case.call_type, case.address,
         case.reporter_name, case.reporter_phone, case.reporter_email, case.reported_by,
         case.unit, case.dispatch_due_at, case.fixed_on_spot, case.key_site_id),
    ).fetchone()
    assert row is not None
    ticket_id = int(row["id"])
    record_event(conn, ticket_id, actor.name, None, "reported", f"reported ({case.source})",
                 role=actor.role)
    return ticket_id


def add_photo(
    conn: psycopg.Connection[Any], ticket_id: int, data: bytes, content_type: str, by: str
) -> int:
    """Store a photo of a case (JPEG, PNG or WebP, at most 5 MB); return its id."""
    if content_type not in ("image/jpeg", "image/png", "image/webp"):
        raise ValueError("a photo must be a JPEG, PNG or WebP image")
    if len(data) > 5 * 1024 * 1024:
        raise ValueError(f"a photo may be at most 5 MB; this one is {len(data) / 2**20:.1f} MB")
    row = conn.execute(
        "INSERT INTO case_photos (ticket_id, content_type, data, uploaded_by)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (ticket_id, content_type, data, by),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def check_transition(ticket: Mapping[str, Any], to_status: str, actor: Actor, note: str) -> None:
    """The state machine's rule, pure: raise :class:`TransitionError` (a reason a person can act
    on) unless ``actor`` may move ``ticket`` (its id, status, worker_id, handled_by,
    fixed_on_spot, reported_by, call_type and source) to ``to_status`` with ``note``."""
    rule = TRANSITIONS[to_status]
    current, tid = ticket["status"], ticket["id"]
    if to_status == "closed" and current == "reported":
        on_spot = ticket["fixed_on_spot"] and ticket["reported_by"] == actor.name
        answered = ticket["call_type"] == "consultation" and actor.role == "hotline"
        if not (on_spot or answered):
            raise TransitionError(
                f"ticket {tid} is reported; only its reporter closes it at once (fixed on the"
                " spot), or the hotline a consultation it answered"
            )
        if not note.strip():
            raise TransitionError("say what was done when closing a case at once")
        return
    if actor.role not in rule.roles:
        raise TransitionError(f"a {actor.role} cannot move a ticket to {to_status}")
    if actor.role == "hotline" and ticket["source"] != "hotline":
        raise TransitionError(f"ticket {tid} did not come from the hotline; the operations"
                              " centre takes it on")
    mine = ticket["worker_id"] == actor.worker_id
    if rule.assignee_only and actor.role == "grid_worker" and not mine:
        raise TransitionError(f"ticket {tid} is not assigned to you")
    if rule.not_handler and actor.name == ticket["handled_by"]:
        raise TransitionError(f"ticket {tid} was handled by you; someone else must verify it")
    if current not in rule.froms:
        options = ", ".join(allowed_next(current, actor.role)) or "nothing"
        raise TransitionError(
            f"ticket {tid} is {current}; it cannot become {to_status} (allowed: {options})"
        )
    if to_status == "dispatched" and ticket["worker_id"] is None:
        raise TransitionError(f"ticket {tid} has no worker yet: assign one to dispatch it")
    if rule.note_required and not note.strip():
        raise TransitionError(f"say what was done or why when a ticket becomes {to_status}")


# Columns a move sets besides the status ({actor} is the actor's name).
_SETS = {
    "handled": "handled_by = %(actor)s, handled_at = now()",
    "verified": "verified_by = %(actor)s, verified_at = now()",
    "returned": "worker_id = NULL",
    "closed": "closed_at = now()",
    "voided": "closed_at = now()",
}


def transition(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    to_status: str,
    actor: Actor,
    note: str = "",
    photos: Sequence[int] = (),
    *,
    _via_function: bool = False,
) -> str:
    """Move a ticket to ``to_status`` if the actor may; write the event; return the old status.

    Raises :class:`TransitionError` with a reason a person can act on.
    """
    if to_status not in TRANSITIONS:
        raise TransitionError(f"{to_status!r} is not a state a ticket can be moved to")
    if to_status in VIA_FUNCTION and not _via_function:
        raise TransitionError(f"a ticket becomes {to_status} through {VIA_FUNCTION[to_status]}")
    ticket = conn.execute(
        "SELECT id, status, worker_id, handled_by, fixed_on_spot, reported_by, call_type,"
        " source FROM tickets WHERE id = %s FOR UPDATE",
        (ticket_id,),
    ).fetchone()
    if ticket is None:
        raise TransitionError(f"ticket {ticket_id} does not exist")
    check_transition(ticket, to_status, actor, note)
    current = ticket["status"]
    extra = _SETS.get(to_status)
    conn.execute(
        f"UPDATE tickets SET status = %(to)s, updated_at = now(){', ' + extra if extra else ''}"
        " WHERE id = %(id)s",
        {"to": to_status, "id": ticket_id, "actor": actor.name},
    )
    returned_by = f" (was {ticket['worker_id']})" if to_status == "returned" else ""
    record_event(conn, ticket_id, actor.name, current, to_status, note.strip() + returned_by,
                 role=actor.role, photos=photos)
    if to_status == "signed_for":
        conn.execute(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now()"
            " WHERE id = (SELECT alert_id FROM tickets WHERE id = %s) AND status = 'open'",
            (ticket_id,),
        )
    return str(current)


def request_postponement(
    conn: psycopg.Connection[Any], ticket_id: int, actor: Actor, new_due_at: datetime, reason: str
) -> int:
    """The case's worker asks for more time; operations decide. Return the request id."""
    ticket = conn.execute(
        "SELECT status, worker_id, due_at FROM tickets WHERE id = %s FOR UPDATE", (ticket_id,)
    ).fetchone()
    if ticket is None:
        raise TransitionError(f"ticket {ticket_id} does not exist")
    if actor.role != "grid_worker" or ticket["worker_id"] != actor.worker_id:
        raise TransitionError("only the case's worker asks to postpone it")
    if ticket["status"] not in TRANSITIONS["postponed"].froms:
        raise TransitionError(f"ticket {ticket_id} is {ticket['status']}; it cannot be postponed")
    if not reason.strip():
        raise TransitionError("say why the case needs more time")
    if ticket["due_at"] is not None and new_due_at <= ticket["due_at"]:
        raise TransitionError("the new due time must be later than the current one")
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO case_postponements (ticket_id, requested_by, new_due_at, reason)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (ticket_id, actor.name, new_due_at, reason.strip()),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise TransitionError(f"ticket {ticket_id} already has a postponement waiting") from None
    assert row is not None
    record_event(conn, ticket_id, actor.name, ticket["status"], ticket["status"],
                 f"asks to postpone to {new_due_at:%Y-%m-%d %H:%M %Z}: {reason.strip()}",
                 kind="postponement", role=actor.role)
    return int(row["id"])


def decide_postponement(
    conn: psycopg.Connection[Any], ticket_id: int, actor: Actor, approve: bool, note: str = ""
) -> None:
    """Operations approve (the case becomes postponed with the new due time) or refuse the
    waiting request."""
    if actor.role not in OPS:
        raise TransitionError(f"a {actor.role} cannot decide on a postponement")
    request = conn.execute(
        "SELECT id, new_due_at, reason FROM case_postponements"
        " WHERE ticket_id = %s AND decided_at IS NULL FOR UPDATE",
        (ticket_id,),
    ).fetchone()
    if request is None:
        raise TransitionError(f"ticket {ticket_id} has no postponement waiting")
    conn.execute(
        "UPDATE case_postponements SET decided_by = %s, decided_at = now(), approved = %s"
        " WHERE id = %s",
        (actor.name, approve, request["id"]),
    )
    due = request["new_due_at"]
    if approve:
        transition(conn, ticket_id, "postponed", actor,
                   note.strip() or f"postponed to {due:%Y-%m-%d %H:%M %Z}: {request['reason']}",
                   _via_function=True)
        conn.execute("UPDATE tickets SET due_at = %s WHERE id = %s", (due, ticket_id))
    else:
        status = conn.execute(
            "SELECT status FROM tickets WHERE id = %s", (ticket_id,)
        ).fetchone()
        assert status is not None
        record_event(conn, ticket_id, actor.name, status["status"], status["status"],
                     f"postponement refused{': ' + note.strip() if note.strip() else ''}",
                     kind="postponement", role=actor.role)
