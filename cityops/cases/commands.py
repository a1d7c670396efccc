"""What people do to a case from the pages, each one transaction: move it through the workflow,
decide a postponement, dispatch it by hand. Whatever changes a worker's cases refreshes their
phone's task list through the outbox in the same transaction (:mod:`cityops.cases.outbox`); the
notifier sends it after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cityops.cases import assignment, outbox, tickets
from cityops.cases.clock import CaseClock
from cityops.cases.tickets import Actor, TransitionError
from cityops.platform.database import Database
from cityops.platform.topics import Topics


def move(db: Database, ticket_id: int, to_status: str, actor: Actor, topics: Topics,
         note: str = "", photos: Sequence[int] = ()) -> None:
    """Move a case (sign for, start, handle, verify, close ...); raises TransitionError saying
    why when the move is refused (see :func:`cityops.cases.assignment.change_ticket`)."""
    with db.transaction() as conn:
        assignment.change_ticket(conn, ticket_id, to_status, actor, topics, note, photos)


def decide_postponement(db: Database, ticket_id: int, actor: Actor, approve: bool, note: str,
                        topics: Topics) -> None:
    """Operations approve or refuse (saying why) the postponement the worker asked for."""
    if not approve and not note.strip():
        raise TransitionError("say in the note why the postponement is refused")
    with db.transaction() as conn:
        tickets.decide_postponement(conn, ticket_id, actor, approve, note)
        row = conn.execute("SELECT worker_id FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
        if row and row["worker_id"]:
            outbox.queue_worker_update(conn, row["worker_id"], topics, ticket_id, "postponement")


def dispatch_by_hand(db: Database, ticket_id: int, worker_id: str, actor: Actor,
                     clock: CaseClock, topics: Topics, at: datetime, note: str = "") -> None:
    """Operations dispatch a registered or returned case to a worker they choose
    (:func:`cityops.cases.assignment.dispatch_to`)."""
    with db.transaction() as conn:
        assignment.dispatch_to(conn, ticket_id, worker_id, actor, clock, topics, at, note)
