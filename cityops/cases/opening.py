"""Opening cases as the policy plans them (:mod:`cityops.cases.policy`), in the caller's
transaction: a case for a new alert (sensor detection, device health), and the moves after a case
is filed (intake, the flood season's inspections). The dispatch outbox row is sent by the
notifier after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import psycopg

from cityops.cases import assignment
from cityops.cases.assignment import Assignment
from cityops.cases.clock import CaseClock
from cityops.cases.policy import CasePlan, Origin, plan_case
from cityops.cases.tickets import Actor, NewCase, create_case, record_event, transition
from cityops.org.grids import GridIndex, load_grid_index
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Opened:
    """A case opened for an alert: its id, its status and the dispatch tried (or None)."""

    ticket_id: int
    status: str
    assignment: Assignment | None

    @property
    def worker_id(self) -> str | None:
        """The worker the case was dispatched to (None: not dispatched)."""
        return self.assignment.worker_id if self.assignment else None


def _alert(conn: Conn, alert_id: int) -> dict[str, Any]:
    alert = conn.execute(
        "SELECT a.id, a.kind, a.severity, a.message, a.grid_code, a.lon, a.lat, a.source_id,"
        " d.label, (SELECT t.id FROM tickets t WHERE t.alert_id = a.id LIMIT 1) AS ticket_id"
        " FROM alerts a LEFT JOIN devices d ON d.id = a.source_id WHERE a.id = %s",
        (alert_id,),
    ).fetchone()
    if alert is None:
        raise ValueError(f"alert {alert_id} does not exist")
    return dict(alert)


def _alert_plan(alert: dict[str, Any]) -> CasePlan:
    source = "device_health" if alert["kind"] == "device_silent" else "sensor"
    return plan_case(Origin(source, alert_kind=alert["kind"], severity=alert["severity"]))


def create_for_alert(conn: Conn, alert_id: int, *,
                     dispatch_due_at: datetime | None = None) -> int | None:
    """Open the case the policy plans for an alert unless it has one (smart discovery: the
    system accepts and registers it at once); return the new case id, None if the alert had one
    already. It is not dispatched here (:func:`open_for_alert` does both)."""
    alert = _alert(conn, alert_id)
    if alert["ticket_id"] is not None:
        return None
    return _create(conn, alert, _alert_plan(alert), dispatch_due_at)


def _create(conn: Conn, alert: dict[str, Any], plan: CasePlan,
            dispatch_due_at: datetime | None) -> int:
    where = alert["label"] or "sensor"
    case = NewCase(
        source=plan.source, category=plan.category, title=f"{plan.title} — {where}",
        description=alert["message"], priority=plan.priority, lon=alert["lon"],
        lat=alert["lat"], grid_code=alert["grid_code"], alert_id=alert["id"],
        dispatch_due_at=dispatch_due_at,
    )
    system = Actor.system()
    ticket_id = create_case(conn, case, system)
    transition(conn, ticket_id, "accepted", system, f"opened by alert #{alert['id']}")
    transition(conn, ticket_id, "registered", system)
    return ticket_id


def open_for_alert(conn: Conn, alert_id: int, at: datetime, *, clock: CaseClock,
                   topics: Topics, index: GridIndex | None = None) -> Opened | None:
    """The case of a newly opened alert, registered and sent as the policy plans it: by grid to
    the on-duty worker (``index``: the grid cells, read from the database when not given), or to
    the category's unit with no grid worker. None when the alert had a case already."""
    alert = _alert(conn, alert_id)
    if alert["ticket_id"] is not None:
        return None
    plan = _alert_plan(alert)
    due = clock.dispatch_due(at, plan.urgent) if plan.dispatch == "grid" else None
    ticket_id = _create(conn, alert, plan, due)
    status, sent = send(conn, ticket_id, plan, clock=clock, topics=topics, at=at, index=index)
    return Opened(ticket_id, status, sent)


def advance(conn: Conn, ticket_id: int, plan: CasePlan, filer: Actor, *, note: str,
            clock: CaseClock, topics: Topics, at: datetime,
            index: GridIndex | None = None) -> tuple[str, Assignment | None]:
    """Move a case just filed (``reported``) on as ``plan`` says: accepted and registered by the
    system or by the filer, then sent (:func:`send`); a case for the centre stays reported.
    Returns its status and the dispatch tried."""
    if plan.registered_by == "centre":
        return "reported", None
    mover = filer if plan.registered_by == "filer" else Actor.system()
    transition(conn, ticket_id, "accepted", mover, note)
    transition(conn, ticket_id, "registered", mover)
    return send(conn, ticket_id, plan, clock=clock, topics=topics, at=at, index=index)


def send(conn: Conn, ticket_id: int, plan: CasePlan, *, clock: CaseClock, topics: Topics,
         at: datetime, index: GridIndex | None = None) -> tuple[str, Assignment | None]:
    """Send a registered case where ``plan`` says: by grid now (its status then ``dispatched``,
    or ``registered`` with the reason when nobody is available), to the category's unit (it
    stays ``registered``, the unit named), or nowhere yet."""
    if plan.dispatch == "grid":
        sent = assignment.assign_ticket(conn, ticket_id, index or load_grid_index(conn), clock,
                                        topics, at)
        return ("dispatched" if sent.worker_id else "registered"), sent
    if plan.dispatch == "unit":
        unit = clock.catalogue.get(plan.category).unit
        reason = f"for the {unit}: a device fault is not sent to a grid worker"
        conn.execute("UPDATE tickets SET unit = %s, assigned_reason = %s WHERE id = %s",
                     (unit, reason, ticket_id))
        record_event(conn, ticket_id, "system", "registered", "registered", reason,
                     kind="assignment", role="system")
    return "registered", None


def alert_opener(settings: Settings, index: GridIndex | None = None) -> Callable[
    [Conn, int, datetime], Opened | None
]:
    """:func:`open_for_alert` with the settings' clock and topics: what detection and device
    health hand each new alert to (``index``: the grid cells, when the caller has them)."""
    return partial(open_for_alert, clock=CaseClock.from_settings(settings),
                   topics=Topics(settings.topic_prefix), index=index)
