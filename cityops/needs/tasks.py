"""Review tasks of the "policy finds people" rules (issue 5): list them and close them.

``cityops.needs.rules.run_rules`` opens the tasks; civil-affairs staff work them here. A task
carries the household's name and address, so every read of the list is written to the audit log
in the same transaction (``view_tasks``), and so is every close (``close_task``). Each task is
shown with what fired it in plain words (``describe``), derived from the ``data`` its rule stored;
the raw ``data`` stays on the task.

A closed task does not come back on the same facts: ``run_rules`` skips a household whose task of
that rule version was closed with the same ``data``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from cityops.needs.labels import ASSISTANCE_PROGRAMMES
from cityops.needs.rules import ALL, BY_ID
from cityops.platform import users
from cityops.platform.database import Database

Conn = psycopg.Connection[dict[str, Any]]
STATUSES = ("open", "done", "dismissed")
CLOSED = ("done", "dismissed")
ALERT_KINDS = {
    "water_silence": "no water use",
    "water_running": "water running for hours",
    "water_decline": "water use falling for days",
}


class TaskError(ValueError):
    """A close that cannot be done: a blank note, a bad status, an unknown task."""


class TaskClosedError(TaskError):
    """The task was closed already (by someone else, or earlier)."""

    def __init__(self, task_id: int, status: str, done_by: str, done_at: datetime) -> None:
        self.task_id, self.status, self.done_by, self.done_at = task_id, status, done_by, done_at
        super().__init__(f"task {task_id} was already marked {status} by {done_by} at "
                         f"{done_at:%Y-%m-%d %H:%M %Z}")


@dataclass(frozen=True)
class ReviewTask:
    """One review task, with its household and what fired it in plain words."""

    id: int
    household_id: str
    head_name: str
    address: str
    community: str
    rule_id: str
    rule_version: str
    title: str             # the rule's title (the rule id when the rule no longer exists)
    explanation: str       # what a caseworker reads; the current rule's text
    fired_at: datetime
    fired_by: str          # the data that fired it, in plain words
    data: dict[str, Any]   # the raw data the rule stored
    status: str
    done_by: str | None
    done_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class RuleTasks:
    """How many tasks one rule has, by status (``version``: the rule's current version)."""

    rule_id: str
    version: str
    title: str
    open: int
    done: int
    dismissed: int


@dataclass(frozen=True)
class TaskView:
    """One audited read: the newest tasks matching a filter and the counts per rule."""

    tasks: tuple[ReviewTask, ...]
    total: int                      # tasks matching the filter; the newest ``limit`` are listed
    counts: tuple[RuleTasks, ...]

    def open_total(self) -> int:
        """Open tasks of all rules."""
        return sum(c.open for c in self.counts)

    def any_tasks(self) -> bool:
        """True when any task exists, of any rule and status."""
        return any(c.open or c.done or c.dismissed for c in self.counts)


def task_counts(conn: Conn) -> tuple[RuleTasks, ...]:
    """Tasks per rule and status: every current rule (in ``needs_rules.ALL`` order, zeros
    included), then any rule id that has tasks but is no longer a rule."""
    rows = conn.execute(
        "SELECT rule_id, count(*) FILTER (WHERE status = 'open') AS open,"
        " count(*) FILTER (WHERE status = 'done') AS done,"
        " count(*) FILTER (WHERE status = 'dismissed') AS dismissed"
        " FROM review_tasks GROUP BY rule_id ORDER BY rule_id").fetchall()
    found = {r["rule_id"]: r for r in rows}
    order = [r.id for r in ALL] + [rid for rid in found if rid not in BY_ID]
    out = []
    for rid in order:
        row = found.get(rid, {"open": 0, "done": 0, "dismissed": 0})
        rule = BY_ID.get(rid)
        out.append(RuleTasks(rid, rule.version if rule else "", rule.title if rule else rid,
                             int(row["open"]), int(row["done"]), int(row["dismissed"])))
    return tuple(out)


_SELECT = """
    SELECT t.id, t.household_id, h.head_name, h.address, g.name AS community, t.rule_id,
           t.rule_version, t.fired_at, t.data, t.status, t.done_by, t.done_at, t.note,
           CASE WHEN jsonb_typeof(t.data -> 'alert_ids') = 'array' THEN
               (SELECT count(*) FROM alerts a
                WHERE a.status <> 'resolved' AND a.id IN (
                    SELECT jsonb_array_elements_text(t.data -> 'alert_ids')::bigint))
           END AS alerts_still_open
    FROM review_tasks t
    JOIN households h ON h.id = t.household_id
    JOIN grids g ON g.code = h.community_code
"""


def list_tasks(conn: Conn, *, rule_id: str | None = None, status: str = "open",
               limit: int = 200) -> tuple[tuple[ReviewTask, ...], int]:
    """The newest ``limit`` tasks of ``status`` (of one rule, or all when ``rule_id`` is None)
    and how many match in all. Personal details: the caller audits the read (``view_tasks``)."""
    if status not in STATUSES:
        raise TaskError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    where = " WHERE t.status = %(status)s AND (%(rule)s::text IS NULL OR t.rule_id = %(rule)s)"
    params = {"status": status, "rule": rule_id, "limit": limit}
    rows = conn.execute(_SELECT + where + " ORDER BY t.fired_at DESC, t.id DESC LIMIT %(limit)s",
                        params).fetchall()
    count = conn.execute("SELECT count(*) AS n FROM review_tasks t" + where, params).fetchone()
    total = int(count["n"]) if count else 0
    return tuple(_task(r) for r in rows), total


def view_tasks(conn: Conn, by: str, *, rule_id: str | None = None, status: str = "open",
               limit: int = 200) -> TaskView:
    """``list_tasks`` and ``task_counts`` read by ``by``, the view written to the audit log in
    the same transaction."""
    with conn.transaction():
        tasks, total = list_tasks(conn, rule_id=rule_id, status=status, limit=limit)
        counts = task_counts(conn)
        users.audit(conn, by, "view", "review_tasks",
                    {"rule": rule_id, "status": status, "tasks": [t.id for t in tasks],
                     "households": sorted({t.household_id for t in tasks})})
    return TaskView(tasks, total, counts)


def household_tasks(conn: Conn, household_id: str) -> tuple[ReviewTask, ...]:
    """Every task of one household, open ones first, newest first (the caller audits)."""
    rows = conn.execute(_SELECT + " WHERE t.household_id = %s"
                        " ORDER BY t.status <> 'open', t.fired_at DESC, t.id DESC",
                        (household_id,)).fetchall()
    return tuple(_task(r) for r in rows)


def get_task(conn: Conn, task_id: int) -> ReviewTask | None:
    """One task by id, or None (personal details: the caller audits)."""
    row = conn.execute(_SELECT + " WHERE t.id = %s", (task_id,)).fetchone()
    return _task(row) if row else None


def close_task(conn: Conn, task_id: int, status: str, note: str, by: str,
               now: datetime) -> ReviewTask:
    """Mark an open task ``done`` or ``dismissed`` by ``by`` at ``now`` with a note a person can
    read, audited in the same transaction; returns the closed task. Raises ``TaskError`` for a
    bad status, a blank note or an unknown task, ``TaskClosedError`` when it is closed already."""
    if status not in CLOSED:
        raise TaskError(f"a task is closed as done or dismissed, not {status!r}")
    reason = (note or "").strip()
    if not reason:
        raise TaskError("write a note: what was done, or why the task is dismissed "
                        "(the next person reads it)")
    with conn.transaction():
        updated = conn.execute(
            "UPDATE review_tasks SET status = %s, done_by = %s, done_at = %s, note = %s"
            " WHERE id = %s AND status = 'open' RETURNING id",
            (status, by, now, reason, task_id)).fetchone()
        task = get_task(conn, task_id)
        if task is None:
            raise TaskError(f"there is no review task {task_id}")
        if updated is None:
            assert task.done_by is not None and task.done_at is not None
            raise TaskClosedError(task_id, task.status, task.done_by, task.done_at)
        users.audit(conn, by, f"task_{status}", f"review_task {task_id}",
                    {"household_id": task.household_id, "rule_id": task.rule_id,
                     "rule_version": task.rule_version, "note": reason})
    return task


def describe(rule_id: str, data: Mapping[str, Any], alerts_still_open: int | None = None) -> str:
    """What fired a task, in plain words, from the data its rule stored (``alerts_still_open``:
    how many of a care-visit task's alerts are not resolved now)."""
    describer = _DESCRIBERS.get(rule_id)
    if describer is not None:
        try:
            return describer(data, alerts_still_open)
        except (KeyError, TypeError, ValueError):
            pass  # data of another shape (an older or newer rule version): shown as stored
    return "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in data.items())


def _task(row: Mapping[str, Any]) -> ReviewTask:
    rule = BY_ID.get(row["rule_id"])
    explanation = rule.explanation if rule else "This rule is no longer in use."
    if rule and rule.version != row["rule_version"]:
        explanation += (f" (This task was opened by version {row['rule_version']}; the rule is "
                        f"now at version {rule.version}.)")
    return ReviewTask(
        id=row["id"], household_id=row["household_id"], head_name=row["head_name"],
        address=row["address"], community=row["community"], rule_id=row["rule_id"],
        rule_version=row["rule_version"], title=rule.title if rule else row["rule_id"],
        explanation=explanation, fired_at=row["fired_at"],
        fired_by=describe(row["rule_id"], row["data"], row["alerts_still_open"]),
        data=row["data"], status=row["status"], done_by=row["done_by"],
        done_at=row["done_at"], note=row["note"])


def _number(value: Any) -> str:
    """1980 -> '1,980'; 2129.99 -> '2,129.99'."""
    amount = Decimal(str(value))
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{amount:,.2f}"


def _percent(share: float, above: float | None = None) -> str:
    """A share as a whole percent, with decimals when rounding would hide that it is above."""
    whole = round(share * 100)
    if above is None or whole > round(above * 100, 6):
        return f"{whole} %"
    return f"{share * 100:.2f} %"


def _receives(programmes: list[str], none: str = "no assistance") -> str:
    if not programmes:
        return none
    return "receives " + ", ".join(ASSISTANCE_PROGRAMMES.get(p, p) for p in programmes)


def _old_age(data: Mapping[str, Any], _open: int | None) -> str:
    if data["age"] is not None:
        age = f"age {data['age']} (born {data['birth_year']})"
    else:
        age = "age band 80+ on the needs profile (birth year unknown)"
    return (f"{age}, no old-age allowance; "
            f"{_receives(data['assistance'], 'no other assistance')}")


def _low_income(data: Mapping[str, Any], _open: int | None) -> str:
    return (f"income {_number(data['income_per_capita'])} CNY per person per month, under "
            f"1.5 × {_number(data['dibao'])} = {_number(data['limit'])}; "
            f"{_receives(data['assistance'])}")


def _spending(data: Mapping[str, Any], _open: int | None) -> str:
    parts = [f"{kind} spending {_percent(data[f'{kind}_spending_share'], data[f'{kind}_cutoff'])}"
             f" of income (limit {_percent(data[f'{kind}_cutoff'])})" for kind in data["over"]]
    return f"{' and '.join(parts)}; {_receives(data['assistance'])}"


def _care(data: Mapping[str, Any], still_open: int | None) -> str:
    count = int(data["water_alerts_30_days"])
    text = f"{count} water-use alert{'s' if count != 1 else ''} in 30 days"
    if still_open is not None:
        text += f" ({still_open} still open)"
    kinds = [ALERT_KINDS.get(k, k) for k in data["kinds"]]
    return f"{text}: {', '.join(kinds)}; elderly person living alone"


_DESCRIBERS: dict[str, Callable[[Mapping[str, Any], int | None], str]] = {
    "old_age_allowance": _old_age,
    "low_income_edge": _low_income,
    "expenditure_hardship": _spending,
    "care_visit": _care,
}


def read_tasks(db: Database, by: str, *, rule_id: str | None = None, status: str = "open",
               limit: int = 200) -> TaskView:
    """:func:`view_tasks` (audited) in a transaction of its own."""
    with db.transaction() as conn:
        return view_tasks(conn, by, rule_id=rule_id, status=status, limit=limit)


def close(db: Database, task_id: int, status: str, note: str, by: str,
          now: datetime) -> ReviewTask:
    """:func:`close_task` (audited) in a transaction of its own."""
    with db.transaction() as conn:
        return close_task(conn, task_id, status, note, by, now)
