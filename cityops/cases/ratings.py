"""Ratings (好差评) of closed cases: scores, bad-review follow-up, re-rating and appeals.

- A citizen or a 12345 caller rates a **closed** (or already evaluated) case 1-5. The first rating
  moves the case ``closed -> evaluated`` (the only way a case becomes evaluated).
- Scores 1 and 2 are **bad reviews**: each must be followed up (what was fixed) within
  ``cases.bad_review_follow_up_days`` working days (default 5) of the rating.
- Re-rating writes a **new row**; the latest rating of a case is the one that counts.
- The handling side (operations, or the grid worker who had the case) may **appeal** a bad review;
  a supervisor or an administrator decides: the bad review is either *upheld* (it stands) or
  *overturned*: it needs no follow-up and does not count against satisfaction (the metrics of
  :mod:`cityops.cases.metrics` take a case's latest rating that is not an overturned bad review).

Every step is an event on the case's timeline (kinds ``rating``, ``follow_up``, ``appeal``),
written in the same transaction as the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from cityops.cases.tickets import Actor, TransitionError, record_event, transition
from cityops.platform.database import Database
from cityops.platform.worktime import WorkCalendar, working_days

SCORES = range(1, 6)
BAD_SCORES = (1, 2)
CHANNELS = ("hotline", "open311", "web")
# Who records a rating for the rater: the citizen's own channel (system) or the staff on the
# phone to the caller.
RECORDERS = ("system", "hotline", "operations", "admin")
FOLLOWERS_UP = ("operations", "admin", "hotline", "supervisor", "grid_worker")
APPELLANTS = ("operations", "grid_worker")
APPEAL_JUDGES = ("supervisor", "admin")
DEFAULT_FOLLOW_UP_DAYS = 5


class RatingError(ValueError):
    """A rating change that is not allowed; the message says why."""


@dataclass(frozen=True)
class Rating:
    """One rating row (a re-rating is another row; the latest counts)."""

    id: int
    ticket_id: int
    score: int
    channel: str
    comment: str
    recorded_by: str
    at: datetime
    follow_up_due_at: datetime | None
    followed_up_at: datetime | None
    followed_up_by: str | None
    follow_up_note: str | None
    appeal_status: str | None
    appeal_reason: str | None
    appealed_by: str | None
    appeal_decided_by: str | None
    appeal_decided_at: datetime | None

    @property
    def bad(self) -> bool:
        """A bad review (score 1 or 2)."""
        return self.score in BAD_SCORES

    @property
    def counts_against(self) -> bool:
        """A bad review that counts against satisfaction (not overturned on appeal)."""
        return self.bad and self.appeal_status != "overturned"

    def follow_up_state(self, now: datetime) -> str:
        """'followed up', 'overdue', 'due' (bad reviews), or '' for a good rating."""
        if not self.bad:
            return ""
        if self.followed_up_at is not None:
            return "followed up"
        if self.appeal_status == "overturned":
            return "overturned"
        assert self.follow_up_due_at is not None
        return "overdue" if self.follow_up_due_at < now else "due"


_COLUMNS = (
    "id, ticket_id, score, channel, comment, recorded_by, at, follow_up_due_at, followed_up_at,"
    " followed_up_by, follow_up_note, appeal_status, appeal_reason, appealed_by,"
    " appeal_decided_by, appeal_decided_at"
)


def _rating(row: dict[str, Any]) -> Rating:
    return Rating(**{k: row[k] for k in Rating.__dataclass_fields__})


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"{now} has no time zone")
    return now


def rate_case(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    score: int,
    *,
    channel: str,
    recorded_by: Actor,
    comment: str = "",
    calendar: WorkCalendar,
    follow_up_days: float = DEFAULT_FOLLOW_UP_DAYS,
    now: datetime | None = None,
) -> Rating:
    """Record a rating of a closed or evaluated case; return it.

    The first rating moves the case ``closed -> evaluated``; a later one is a re-rating (a new
    row, the latest counts). A bad review (1-2) is due for follow-up ``follow_up_days`` working
    days (``settings.cases.bad_review_follow_up_days``) after ``now`` on ``calendar``.
    Raises :class:`RatingError` saying why when the rating is refused.
    """
    now = _now(now)
    if not isinstance(score, int) or isinstance(score, bool) or score not in SCORES:
        raise RatingError(f"a score is a whole number from 1 to 5, not {score!r}")
    if channel not in CHANNELS:
        raise RatingError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if recorded_by.role not in RECORDERS:
        raise RatingError(f"a {recorded_by.role} cannot record a rating")
    comment = comment.strip()
    ticket = conn.execute(
        "SELECT status FROM tickets WHERE id = %s FOR UPDATE", (ticket_id,)
    ).fetchone()
    if ticket is None:
        raise RatingError(f"case {ticket_id} does not exist")
    status = ticket["status"]
    if status not in ("closed", "evaluated"):
        raise RatingError(f"case {ticket_id} is {status}; only a closed case can be rated")
    due = working_days(calendar, now, follow_up_days) if score in BAD_SCORES else None
    row = conn.execute(
        f"INSERT INTO case_ratings (ticket_id, score, channel, comment, recorded_by, at,"
        f" follow_up_due_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (ticket_id, score, channel, comment, recorded_by.name, now, due),
    ).fetchone()
    assert row is not None
    rating = _rating(row)
    first = status == "closed"
    if first:
        try:
            transition(conn, ticket_id, "evaluated", recorded_by, f"rated {score}/5",
                       _via_function=True)
        except TransitionError as exc:  # e.g. a role the state machine does not allow
            raise RatingError(str(exc)) from None
    what = "rated" if first else "rated again"
    text = f"{what} {score}/5 ({channel})"
    if comment:
        text += f": {comment}"
    if due is not None:
        text += f" — bad review, follow up by {due:%Y-%m-%d %H:%M %Z}"
    record_event(conn, ticket_id, recorded_by.name, "evaluated", "evaluated", text,
                 kind="rating", role=recorded_by.role)
    return rating


def _locked(conn: psycopg.Connection[Any], rating_id: int) -> tuple[Rating, dict[str, Any]]:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM case_ratings WHERE id = %s FOR UPDATE", (rating_id,)
    ).fetchone()
    if row is None:
        raise RatingError(f"rating {rating_id} does not exist")
    ticket = conn.execute(
        "SELECT id, status, worker_id, handled_by FROM tickets WHERE id = %s",
        (row["ticket_id"],),
    ).fetchone()
    assert ticket is not None
    return _rating(row), ticket


def _handles(actor: Actor, ticket: dict[str, Any]) -> bool:
    """True when a grid worker had the case (assigned, or handled it)."""
    return (actor.worker_id is not None and actor.worker_id == ticket["worker_id"]) or (
        actor.name == ticket["handled_by"]
    )


def record_follow_up(
    conn: psycopg.Connection[Any], rating_id: int, by: Actor, note: str,
    *, now: datetime | None = None,
) -> Rating:
    """Record the follow-up of a bad review: what was fixed (once per bad review)."""
    now = _now(now)
    rating, ticket = _locked(conn, rating_id)
    if by.role not in FOLLOWERS_UP:
        raise RatingError(f"a {by.role} cannot record a follow-up")
    if by.role == "grid_worker" and not _handles(by, ticket):
        raise RatingError(f"case {rating.ticket_id} is not yours to follow up")
    if not rating.bad:
        raise RatingError(f"rating {rating_id} is {rating.score}/5, not a bad review: no"
                          " follow-up is needed")
    if rating.followed_up_at is not None:
        raise RatingError(f"rating {rating_id} was already followed up by"
                          f" {rating.followed_up_by}")
    if not note.strip():
        raise RatingError("say what was fixed in the follow-up")
    row = conn.execute(
        f"UPDATE case_ratings SET followed_up_at = %s, followed_up_by = %s, follow_up_note = %s"
        f" WHERE id = %s RETURNING {_COLUMNS}",
        (now, by.name, note.strip(), rating_id),
    ).fetchone()
    assert row is not None
    late = ""
    if rating.follow_up_due_at is not None and now > rating.follow_up_due_at:
        late = " (late)"
    record_event(conn, rating.ticket_id, by.name, ticket["status"], ticket["status"],
                 f"bad review of {rating.at:%Y-%m-%d} followed up{late}: {note.strip()}",
                 kind="follow_up", role=by.role)
    return _rating(row)


def appeal(
    conn: psycopg.Connection[Any], rating_id: int, actor: Actor, reason: str
) -> Rating:
    """The handling side contests a bad review (operations, or the case's grid worker); a
    supervisor or an administrator decides with :func:`decide_appeal`."""
    rating, ticket = _locked(conn, rating_id)
    if actor.role not in APPELLANTS:
        raise RatingError(f"a {actor.role} cannot appeal a rating: the handling side does"
                          " (operations or the case's grid worker)")
    if actor.role == "grid_worker" and not _handles(actor, ticket):
        raise RatingError(f"case {rating.ticket_id} was not yours: only its grid worker or"
                          " operations may appeal")
    if not rating.bad:
        raise RatingError(f"rating {rating_id} is {rating.score}/5: only a bad review can be"
                          " appealed")
    if rating.appeal_status is not None:
        raise RatingError(f"rating {rating_id} was already appealed ({rating.appeal_status})")
    if not reason.strip():
        raise RatingError("say why the bad review is unfair")
    row = conn.execute(
        f"UPDATE case_ratings SET appeal_status = 'pending', appeal_reason = %s,"
        f" appealed_by = %s WHERE id = %s RETURNING {_COLUMNS}",
        (reason.strip(), actor.name, rating_id),
    ).fetchone()
    assert row is not None
    record_event(conn, rating.ticket_id, actor.name, ticket["status"], ticket["status"],
                 f"appeals the bad review {rating.score}/5 of {rating.at:%Y-%m-%d}:"
                 f" {reason.strip()}", kind="appeal", role=actor.role)
    return _rating(row)


def decide_appeal(
    conn: psycopg.Connection[Any], rating_id: int, actor: Actor, upheld: bool, note: str,
    *, now: datetime | None = None,
) -> Rating:
    """A supervisor or administrator decides a pending appeal.

    ``upheld=True``: the bad review stands (the appeal is refused; appeal_status 'upheld').
    ``upheld=False``: the bad review is overturned (appeal_status 'overturned'): it no longer
    counts against satisfaction and needs no follow-up.
    """
    now = _now(now)
    rating, ticket = _locked(conn, rating_id)
    if actor.role not in APPEAL_JUDGES:
        raise RatingError(f"a {actor.role} cannot decide an appeal: a supervisor or an"
                          " administrator does")
    if rating.appeal_status != "pending":
        state = rating.appeal_status or "not appealed"
        raise RatingError(f"rating {rating_id} has no appeal waiting ({state})")
    if actor.name == rating.appealed_by:
        raise RatingError("you made this appeal; someone else must decide it")
    if not note.strip():
        raise RatingError("give the reason for the decision")
    status = "upheld" if upheld else "overturned"
    row = conn.execute(
        f"UPDATE case_ratings SET appeal_status = %s, appeal_decided_by = %s,"
        f" appeal_decided_at = %s WHERE id = %s RETURNING {_COLUMNS}",
        (status, actor.name, now, rating_id),
    ).fetchone()
    assert row is not None
    outcome = ("bad review upheld" if upheld
               else "bad review overturned: it does not count against satisfaction")
    record_event(conn, rating.ticket_id, actor.name, ticket["status"], ticket["status"],
                 f"appeal decided, {outcome}: {note.strip()}", kind="appeal", role=actor.role)
    return _rating(row)


def ratings_of(conn: psycopg.Connection[Any], ticket_id: int) -> list[Rating]:
    """All ratings of a case, oldest first (the last one counts)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM case_ratings WHERE ticket_id = %s ORDER BY at, id",
        (ticket_id,),
    ).fetchall()
    return [_rating(r) for r in rows]


def latest_rating(conn: psycopg.Connection[Any], ticket_id: int) -> Rating | None:
    """The rating of a case that counts (its latest), or None."""
    found = ratings_of(conn, ticket_id)
    return found[-1] if found else None


def overdue_follow_ups(conn: psycopg.Connection[Any], now: datetime) -> list[Rating]:
    """Bad reviews not followed up by their due time (and not overturned), oldest due first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM case_ratings WHERE follow_up_due_at < %s"
        " AND followed_up_at IS NULL AND appeal_status IS DISTINCT FROM 'overturned'"
        " ORDER BY follow_up_due_at, id",
        (now,),
    ).fetchall()
    return [_rating(r) for r in rows]


def rate(db: Database, ticket_id: int, score: int, *, channel: str, recorded_by: Actor,
         comment: str = "", calendar: WorkCalendar,
         follow_up_days: float = DEFAULT_FOLLOW_UP_DAYS) -> Rating:
    """:func:`rate_case` in a transaction of its own."""
    with db.transaction() as conn:
        return rate_case(conn, ticket_id, score, channel=channel, recorded_by=recorded_by,
                         comment=comment, calendar=calendar, follow_up_days=follow_up_days)
