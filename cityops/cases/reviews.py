"""Bad reviews to act on (``/reviews``) and the reminder when a follow-up is late.

:mod:`cityops.cases.ratings` records ratings, follow-ups and appeals; this module lists the bad
reviews a user acts on and reminds the street centre of the late ones.

Who sees which bad reviews (:func:`bad_reviews`):

- a grid worker: those of the cases they had (assigned to them, or handled by them), the same
  rule :mod:`cityops.cases.ratings` uses to let a worker follow up or appeal;
- operations, supervisors and administrators of a street centre (``users.cell_code`` = a
  street's code): those of the cases inside that street; with no cell code, or the district's,
  all of them.

A bad review's state (:func:`review_state`), the first that applies: *overturned* (appeal
overturned: nothing more to do), *re-rated* (a later rating of the case exists), *followed up*,
*appealed* (waiting for a decision), *appeal upheld*, *overdue* (past its follow-up due time),
*waiting*. Appealed and upheld bad reviews still need their follow-up, so they are flagged late
past their due time too.

:func:`remind_overdue` (the scheduler's ``review-reminders`` job) writes, once per bad review whose
follow-up is overdue (:func:`cityops.cases.ratings.overdue_follow_ups`' rule), an event of kind
``reminder`` on the case ("follow-up of the bad review of <date> (rating #<id>) overdue since
<due time>") and queues a notification to the street centre of the case's cell on
``<prefix>/centre/<street code>`` (and the webhook when one is set), addressed as
:mod:`cityops.cases.escalation` addresses the centres. The marker ``(rating #<id>)`` in the event's
note is what makes it once only: the job skips a bad review whose case already has that reminder,
and locks the rating rows it works on, so two runs at once remind nobody twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from cityops.cases import ratings
from cityops.cases.escalation import CENTRES_SQL
from cityops.cases.outbox import queue_notification
from cityops.cases.tickets import Actor, record_event
from cityops.org.grids import level_of
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.platform.users import User

log = logging.getLogger(__name__)

ROLES = ("operations", "admin", "supervisor", "grid_worker")
STATES = ("waiting", "overdue", "followed up", "re-rated", "appealed", "appeal upheld",
          "overturned")


class ReviewError(ValueError):
    """The user may not list bad reviews; the message says why."""


def scope(user: User) -> tuple[str | None, str | None]:
    """(street or area cell code, grid worker's id) limiting what ``user`` sees; None: no limit.

    Raises :class:`ReviewError` for a role that does not act on bad reviews."""
    if user.role not in ROLES:
        raise ReviewError(f"a {user.role} user does not act on bad reviews")
    if user.role == "grid_worker":
        return None, user.worker_id or ""
    cell = user.cell_code.strip() if user.cell_code else None
    if cell is None or level_of(cell) == "district":
        return None, None
    return cell, None


LIST_SQL = """
WITH RECURSIVE area AS (
    SELECT code FROM grids WHERE code = %(cell)s
    UNION ALL
    SELECT g.code FROM grids g JOIN area a ON g.parent_code = a.code
)
SELECT r.id, r.ticket_id, r.score, r.channel, r.comment, r.recorded_by, r.at,
       r.follow_up_due_at, r.followed_up_at, r.followed_up_by, r.follow_up_note,
       r.appeal_status, r.appeal_reason, r.appealed_by, r.appeal_decided_by, r.appeal_decided_at,
       t.title, t.category, t.status, t.grid_code, g.name AS cell, t.worker_id, t.handled_by,
       later.score AS rerated_score, later.at AS rerated_at,
       EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = r.ticket_id
                 AND e.kind = 'reminder' AND e.note LIKE '%%(rating #' || r.id || ')%%'
              ) AS reminded
FROM case_ratings r
JOIN tickets t ON t.id = r.ticket_id
LEFT JOIN grids g ON g.code = t.grid_code
LEFT JOIN LATERAL (
    SELECT n.score, n.at FROM case_ratings n
    WHERE n.ticket_id = r.ticket_id AND (n.at, n.id) > (r.at, r.id)
    ORDER BY n.at DESC, n.id DESC LIMIT 1
) later ON true
WHERE r.score <= 2
  AND (%(cell)s::text IS NULL OR t.grid_code IN (SELECT code FROM area))
  AND (%(worker)s::text IS NULL OR t.worker_id = %(worker)s OR t.handled_by = %(username)s)
  AND (%(all)s OR r.appeal_status = 'pending'
       OR (r.followed_up_at IS NULL AND r.appeal_status IS DISTINCT FROM 'overturned'
           AND later.at IS NULL))
ORDER BY (r.followed_up_at IS NULL AND r.appeal_status IS DISTINCT FROM 'overturned') DESC,
         r.follow_up_due_at, r.id
LIMIT %(limit)s
"""


def bad_reviews(
    conn: psycopg.Connection[Any], user: User, *, settled: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """The bad reviews ``user`` acts on, those still to follow up first (by due time).

    Without ``settled`` only the open ones: not followed up, not overturned and not re-rated, or
    with an appeal waiting. Each row has the rating's fields (``id`` is the rating's), the case's
    title, category, status, cell, worker and handler, the later rating if the case was rated
    again (``rerated_score``, ``rerated_at``) and whether the late reminder was sent
    (``reminded``). No caller's name or phone."""
    cell, worker = scope(user)
    return conn.execute(LIST_SQL, {"cell": cell, "worker": worker, "username": user.username,
                                   "all": settled, "limit": limit}).fetchall()


def review_state(row: dict[str, Any], now: datetime) -> tuple[str, bool]:
    """(state, late) of a :func:`bad_reviews` row: the state is one of :data:`STATES`; ``late``
    is True when the follow-up is still owed and past its due time."""
    owed = row["followed_up_at"] is None and row["appeal_status"] != "overturned"
    late = owed and row["follow_up_due_at"] is not None and row["follow_up_due_at"] < now
    if row["appeal_status"] == "overturned":
        return "overturned", False
    if row.get("rerated_at") is not None:
        return "re-rated", late
    if row["followed_up_at"] is not None:
        return "followed up", False
    if row["appeal_status"] == "pending":
        return "appealed", late
    if row["appeal_status"] == "upheld":
        return "appeal upheld", late
    return ("overdue" if late else "waiting"), late


@dataclass(frozen=True)
class Reminder:
    """One late follow-up reminded: the case, the rating and whom it was sent to."""

    ticket_id: int
    rating_id: int
    centre: str | None   # the street (or district) centre's code; None: no grid cells loaded
    note: str


def marker(rating_id: int) -> str:
    """The text in a reminder's note that names its bad review (what makes it once only)."""
    return f"(rating #{rating_id})"


OVERDUE_SQL = """
SELECT r.id, r.ticket_id, r.score, r.at, r.follow_up_due_at, r.appeal_status,
       t.status, t.title, t.grid_code, t.worker_id
FROM case_ratings r JOIN tickets t ON t.id = r.ticket_id
WHERE r.follow_up_due_at < %(now)s AND r.followed_up_at IS NULL
  AND r.appeal_status IS DISTINCT FROM 'overturned'
  AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = r.ticket_id
                    AND e.kind = 'reminder' AND e.note LIKE '%%(rating #' || r.id || ')%%')
ORDER BY r.follow_up_due_at, r.id
FOR UPDATE OF r SKIP LOCKED
"""


def _centre(conn: psycopg.Connection[Any], grid_code: str | None) -> dict[str, Any] | None:
    """The street centre of a cell (the district centre when it has no street), with its staff."""
    if grid_code is None:
        rows = conn.execute("SELECT code, level, name FROM grids WHERE level = 'district'"
                            " ORDER BY code LIMIT 1").fetchall()
    else:
        rows = conn.execute(CENTRES_SQL, (grid_code,)).fetchall()
    by_level = {r["level"]: r for r in rows}
    found = by_level.get("street") or by_level.get("district")
    if found is None:
        return None
    staff = conn.execute(
        "SELECT username FROM users WHERE active AND role IN ('operations', 'supervisor')"
        " AND (cell_code = %s OR (%s AND cell_code IS NULL)) ORDER BY username",
        (found["code"], found["level"] == "district"),
    ).fetchall()
    return {**found, "staff": [s["username"] for s in staff]}


def remind_overdue(
    conn: psycopg.Connection[Any], now: datetime, settings: Settings, topics: Topics
) -> list[Reminder]:
    """Remind the street centre of every bad review whose follow-up is overdue at ``now`` and was
    not reminded yet; return the reminders written.

    Run it in a transaction: the events and notifications commit together. Ratings another
    transaction holds locked are left for the next run."""
    rows = conn.execute(OVERDUE_SQL, {"now": now}).fetchall()
    webhook = settings.notify.webhook_url is not None
    done: list[Reminder] = []
    for r in rows:
        # again, now that the row is locked: a run that committed meanwhile is seen here
        if conn.execute("SELECT 1 FROM ticket_events WHERE ticket_id = %s AND kind = 'reminder'"
                        " AND note LIKE %s", (r["ticket_id"], f"%{marker(r['id'])}%")
                        ).fetchone() is not None:
            continue
        rated = r["at"].astimezone(settings.tz)
        due = r["follow_up_due_at"].astimezone(settings.tz)
        appeal = f"; appeal {r['appeal_status']}" if r["appeal_status"] else ""
        centre = _centre(conn, r["grid_code"])
        to = ""
        if centre is not None:
            kind = "street centre" if centre["level"] == "street" else "district centre"
            staff = ", ".join(centre["staff"]) or "no operations user registered there"
            to = f"; reminded the {kind} {centre['name']} ({centre['code']}; {staff})"
        note = (f"follow-up of the bad review of {rated:%Y-%m-%d} {marker(r['id'])} overdue"
                f" since {due:%Y-%m-%d %H:%M} ({r['score']}/5{appeal}){to}")
        record_event(conn, r["ticket_id"], "system", r["status"], r["status"], note,
                     kind="reminder", role="system")
        if centre is None:
            log.warning("late follow-up with no centre to remind",
                        extra={"ticket_id": r["ticket_id"], "rating_id": r["id"]})
        else:
            message = {
                "type": "follow_up_overdue", "ticket_id": r["ticket_id"], "rating_id": r["id"],
                "score": r["score"], "title": r["title"], "status": r["status"],
                "grid_code": r["grid_code"], "worker_id": r["worker_id"],
                "rated_at": r["at"].isoformat(), "due": r["follow_up_due_at"].isoformat(),
                "appeal_status": r["appeal_status"], "at": now.isoformat(), "note": note,
                "to": {"kind": centre["level"], "id": centre["code"], "name": centre["name"],
                       "staff": centre["staff"]},
            }
            topic = topics.centre(centre["code"])
            queue_notification(conn, channel="mqtt", topic=topic, payload=message,
                               ticket_id=r["ticket_id"])
            if webhook:
                queue_notification(conn, channel="webhook", topic=topic, payload=message,
                                   ticket_id=r["ticket_id"])
        done.append(Reminder(r["ticket_id"], r["id"], centre["code"] if centre else None, note))
    return done


def in_scope(conn: psycopg.Connection[Any], user: User, rating_id: int) -> bool:
    """True when the rating is a bad review ``user`` sees (:func:`bad_reviews`' scope), settled
    or not; a rating that does not exist is in scope (:mod:`cityops.cases.ratings` says so)."""
    cell, worker = scope(user)
    exists = conn.execute("SELECT 1 FROM case_ratings WHERE id = %s", (rating_id,)).fetchone()
    if exists is None:
        return True
    row = conn.execute(
        """
        WITH RECURSIVE area AS (
            SELECT code FROM grids WHERE code = %(cell)s
            UNION ALL
            SELECT g.code FROM grids g JOIN area a ON g.parent_code = a.code
        )
        SELECT 1 FROM case_ratings r JOIN tickets t ON t.id = r.ticket_id
        WHERE r.id = %(id)s
          AND (%(cell)s::text IS NULL OR t.grid_code IN (SELECT code FROM area))
          AND (%(worker)s::text IS NULL OR t.worker_id = %(worker)s
               OR t.handled_by = %(username)s)
        """,
        {"id": rating_id, "cell": cell, "worker": worker, "username": user.username},
    ).fetchone()
    return row is not None


# --- the services the reviews page calls (one transaction each) -------------------------------

REVIEW_ACTIONS = ("follow_up", "appeal", "uphold", "overturn")


def read_bad_reviews(db: Database, user: User, settled: bool = False) -> list[dict[str, Any]]:
    """:func:`bad_reviews` of ``user`` (empty for a user who acts on none)."""
    try:
        with db.transaction() as conn:
            return bad_reviews(conn, user, settled=settled)
    except ReviewError:
        return []


def act_on_review(db: Database, user: User, action: str, rating_id: int, text: str) -> str:
    """Record a follow-up, an appeal, or a decision on an appeal (``uphold``, ``overturn``) of a
    bad review in ``user``'s scope; return the sentence to show. Raises
    :class:`~cityops.cases.ratings.RatingError` with the reason when refused."""
    if action not in REVIEW_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(REVIEW_ACTIONS)}, not {action!r}")
    actor = Actor(user.username, user.role, user.worker_id)
    with db.transaction() as conn:
        if not in_scope(conn, user, rating_id):
            raise ratings.RatingError(f"rating {rating_id} is not one of the bad reviews you"
                                      " act on")
        if action == "follow_up":
            done = ratings.record_follow_up(conn, rating_id, actor, text)
            return f"Follow-up of the bad review of case #{done.ticket_id} recorded."
        if action == "appeal":
            done = ratings.appeal(conn, rating_id, actor, text)
            return (f"Appeal against the bad review of case #{done.ticket_id} sent: a"
                    " supervisor or an administrator decides.")
        upheld = action == "uphold"
        done = ratings.decide_appeal(conn, rating_id, actor, upheld, text)
    if upheld:
        return f"Appeal refused: the bad review of case #{done.ticket_id} stands."
    return (f"Bad review of case #{done.ticket_id} overturned: it does not count against"
            " satisfaction.")
