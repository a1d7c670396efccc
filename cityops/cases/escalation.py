"""Escalation up the grid hierarchy: a case late at a stage is told to the worker, then to the
street centre, then to the district centre (1 district + 13 streets + 63 grids + X workers).

The scheduler runs :func:`escalate` every minute, once cluster-wide (a claim row per period).

Stages and the deadline each is measured from (set by :mod:`cityops.cases.assignment`):

========  ==========================================  ===============
stage     the case is                                  late after
========  ==========================================  ===============
dispatch  reported / accepted / registered / returned  dispatch_due_at
sign      dispatched                                   ack_due_at
handle    signed_for / in_progress / postponed / rework due_at
========  ==========================================  ===============

Steps (minutes after the deadline, clock time, ``CITYOPS_CASES__*``):

- level 1 at the deadline: a reminder to the case's worker (event ``reminder``, a fresh push of
  their task list). The dispatch stage has no worker yet: its first step is level 2.
- level 2 at ``escalate_street_after_min`` (30; for the dispatch stage at the deadline): the
  street centre that contains the case's grid cell (event ``escalation``, a message on
  ``<prefix>/centre/<street code>``).
- level 3 at ``escalate_district_after_min`` (60): the district centre, the same way.

Each step happens once per case, stage and deadline: a row in ``case_escalations`` is inserted (or
renewed, when the deadline was reset since, e.g. the case was returned and dispatched again, or
postponed) and only the caller that wrote it records the event and queues the notifications, so
two schedulers running at once tell nobody twice. Acknowledging stops the chain: a case signed for
is no longer in the ``sign`` stage, one handled no longer in ``handle``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from cityops.cases.outbox import queue_notification, queue_worker_update
from cityops.cases.tickets import STAGE_STATES, record_event
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics

log = logging.getLogger(__name__)

LEVELS = {1: "worker", 2: "street", 3: "district"}
WHY = {"dispatch": "not dispatched", "sign": "not signed for", "handle": "not handled"}

CANDIDATES_SQL = """
SELECT t.id, t.status, t.title, t.priority, t.grid_code, t.worker_id,
       CASE WHEN t.status = ANY(%(dispatch)s) THEN 'dispatch'
            WHEN t.status = ANY(%(sign)s) THEN 'sign' ELSE 'handle' END AS stage,
       CASE WHEN t.status = ANY(%(dispatch)s) THEN t.dispatch_due_at
            WHEN t.status = ANY(%(sign)s) THEN t.ack_due_at ELSE t.due_at END AS deadline
FROM tickets t
WHERE (t.status = ANY(%(dispatch)s) AND t.dispatch_due_at <= %(now)s)
   OR (t.status = ANY(%(sign)s) AND t.ack_due_at <= %(now)s)
   OR (t.status = ANY(%(handle)s) AND t.due_at <= %(now)s)
ORDER BY t.id
FOR UPDATE OF t SKIP LOCKED
"""

# The step is taken by whoever inserts its row, or renews a row of an earlier deadline.
STEP_SQL = """
INSERT INTO case_escalations (ticket_id, stage, level, cell_code, at)
VALUES (%(ticket)s, %(stage)s, %(level)s, %(cell)s, %(now)s)
ON CONFLICT (ticket_id, stage, level) DO UPDATE
    SET cell_code = EXCLUDED.cell_code, at = EXCLUDED.at
    WHERE case_escalations.at < %(deadline)s
RETURNING 1
"""

CENTRES_SQL = """
WITH RECURSIVE up AS (
    SELECT code, level, name, parent_code FROM grids WHERE code = %s
    UNION ALL
    SELECT g.code, g.level, g.name, g.parent_code FROM grids g JOIN up ON g.code = up.parent_code
)
SELECT code, level, name FROM up WHERE level IN ('street', 'district')
"""


@dataclass(frozen=True)
class Centre:
    """A street centre or the district centre, and its operations staff."""

    code: str
    level: str
    name: str
    staff: tuple[str, ...]


@dataclass(frozen=True)
class Escalation:
    """One step taken: whom a late case was told about, and why."""

    ticket_id: int
    stage: str          # dispatch / sign / handle
    level: int          # 1 worker, 2 street centre, 3 district centre
    told: str | None    # the worker id or the centre's code (None: nobody to tell)
    deadline: datetime
    note: str


def steps_due(stage: str, deadline: datetime, now: datetime, settings: Settings) -> list[int]:
    """Levels whose time has come for a case late at ``stage`` since ``deadline``."""
    cases = settings.cases
    street = timedelta(minutes=cases.escalate_street_after_min)
    district = timedelta(minutes=cases.escalate_district_after_min)
    offsets = ({2: timedelta(0), 3: district} if stage == "dispatch"
               else {1: timedelta(0), 2: street, 3: district})
    return [level for level, after in offsets.items() if deadline + after <= now]


class _Centres:
    """The street and district centre of grid cells, looked up once per run."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._cache: dict[str | None, dict[str, Centre]] = {}

    def of(self, grid_code: str | None) -> dict[str, Centre]:
        if grid_code not in self._cache:
            if grid_code is None:  # no location: only the district centre is known
                rows = self._conn.execute(
                    "SELECT code, level, name FROM grids WHERE level = 'district'"
                    " ORDER BY code LIMIT 1"
                ).fetchall()
            else:
                rows = self._conn.execute(CENTRES_SQL, (grid_code,)).fetchall()
            self._cache[grid_code] = {
                r["level"]: Centre(r["code"], r["level"], r["name"], self._staff(r))
                for r in rows
            }
        return self._cache[grid_code]

    def _staff(self, row: dict[str, Any]) -> tuple[str, ...]:
        # a district-centre user may have no cell (NULL) or the district's code
        district = row["level"] == "district"
        users = self._conn.execute(
            "SELECT username FROM users WHERE active AND role IN ('operations', 'supervisor')"
            " AND (cell_code = %s OR (%s AND cell_code IS NULL)) ORDER BY username",
            (row["code"], district),
        ).fetchall()
        return tuple(u["username"] for u in users)


def escalate(
    conn: psycopg.Connection[Any], now: datetime, settings: Settings, topics: Topics
) -> list[Escalation]:
    """Take every escalation step whose time has come at ``now``; return the steps taken.

    Run it in a transaction: the steps, their events and their notifications commit together.
    Cases another transaction holds locked are left for the next run.
    """
    rows = conn.execute(CANDIDATES_SQL, {
        "now": now, **{stage: list(states) for stage, states in STAGE_STATES.items()},
    }).fetchall()
    centres = _Centres(conn)
    taken: list[Escalation] = []
    for case in rows:
        for level in steps_due(case["stage"], case["deadline"], now, settings):
            step = _step(conn, case, level, now, settings, topics, centres)
            if step is not None:
                taken.append(step)
    return taken


def _step(
    conn: psycopg.Connection[Any],
    case: dict[str, Any],
    level: int,
    now: datetime,
    settings: Settings,
    topics: Topics,
    centres: _Centres,
) -> Escalation | None:
    tid, stage, deadline = case["id"], case["stage"], case["deadline"]
    late = int((now - deadline).total_seconds() // 60)
    worker = case["worker_id"]
    local = deadline.astimezone(settings.tz)
    when = f"by {local:%Y-%m-%d %H:%M} ({late} min late)"
    reason = f"{WHY[stage]} {when}"  # to the worker
    if worker and stage != "dispatch":  # to a centre: by whom
        reason_centre = f"{WHY[stage]} by worker {worker} {when}"
    else:
        reason_centre = reason
    centre: Centre | None = None
    if level > 1:
        known = centres.of(case["grid_code"])
        centre = known.get(LEVELS[level]) or known.get("district")
    won = conn.execute(STEP_SQL, {
        "ticket": tid, "stage": stage, "level": level, "now": now, "deadline": deadline,
        "cell": centre.code if centre else None,
    }).fetchone()
    if won is None:
        return None  # taken already for this deadline
    status = case["status"]
    message: dict[str, Any] = {
        "type": "reminder" if level == 1 else "escalation",
        "ticket_id": tid, "stage": stage, "level": level, "title": case["title"],
        "priority": case["priority"], "status": status, "grid_code": case["grid_code"],
        "worker_id": worker, "deadline": deadline.isoformat(), "minutes_late": late,
        "at": now.isoformat(),
    }
    webhook = settings.notify.webhook_url is not None
    if level == 1:
        note = (f"reminder to worker {worker}: {reason}" if worker
                else f"no worker to remind: {reason}")
        record_event(conn, tid, "system", status, status, note, kind="reminder", role="system")
        if worker:
            queue_worker_update(conn, worker, topics, tid, "reminder")
            if webhook:
                queue_notification(conn, channel="webhook", topic=topics.dispatch(worker),
                                   payload={**message, "to": {"kind": "worker", "id": worker},
                                            "note": note},
                                   ticket_id=tid, worker_id=worker)
        return Escalation(tid, stage, level, worker, deadline, note)
    if centre is None:
        note = f"no centre to escalate to (no grid cells loaded): {reason_centre}"
        record_event(conn, tid, "system", status, status, note, kind="escalation", role="system")
        log.warning("escalation with no centre", extra={"ticket_id": tid, "stage": stage})
        return Escalation(tid, stage, level, None, deadline, note)
    kind = "street centre" if centre.level == "street" else "district centre"
    instead = " (the case has no street)" if LEVELS[level] != centre.level else ""
    staff = ", ".join(centre.staff) if centre.staff else "no operations user registered there"
    note = (f"escalated to the {kind} {centre.name} ({centre.code}{instead}; {staff}):"
            f" {reason_centre}")
    record_event(conn, tid, "system", status, status, note, kind="escalation", role="system")
    message = {**message, "note": note,
               "to": {"kind": centre.level, "id": centre.code, "name": centre.name,
                      "staff": list(centre.staff)}}
    topic = topics.centre(centre.code)
    queue_notification(conn, channel="mqtt", topic=topic, payload=message, ticket_id=tid)
    if webhook:
        queue_notification(conn, channel="webhook", topic=topic, payload=message, ticket_id=tid)
    return Escalation(tid, stage, level, centre.code, deadline, note)
