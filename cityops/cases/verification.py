"""Verification of handled cases (核查): someone other than the handler checks the work on site.

Who sees which handled cases (:func:`cases_to_verify`):

- a supervisor, operations or admin user of a street centre (``users.cell_code`` = the street's
  code) sees the handled cases inside that street; with no cell code, or the district's, all;
- a grid worker (on patrol) sees the handled cases of their own cell that someone *else* handled.

:func:`decide` verifies a case or sends it back for rework (a reason is required), refusing the
handler and cases outside the user's area with the reason.
"""

from __future__ import annotations

from typing import Any

import psycopg

from cityops.cases.tickets import Actor, TransitionError, transition
from cityops.org.grids import level_of
from cityops.platform.database import Database
from cityops.platform.users import User

ROLES = ("supervisor", "operations", "admin", "grid_worker")


class VerificationError(ValueError):
    """A verification that is not allowed; the message says why."""


def scope_cell(user: User) -> str | None:
    """The cell whose cases ``user`` verifies (None: the whole district)."""
    if user.role not in ROLES:
        raise VerificationError(f"a {user.role} user does not verify cases")
    cell = user.cell_code.strip() if user.cell_code else None
    if user.role == "grid_worker":
        if cell is None:
            raise VerificationError("your worker record has no grid cell")
        return cell
    if cell is None or level_of(cell) == "district":
        return None
    return cell


_SCOPE = """
WITH RECURSIVE area AS (
    SELECT code FROM grids WHERE code = %(cell)s
    UNION ALL
    SELECT g.code FROM grids g JOIN area a ON g.parent_code = a.code
)
"""


def cases_to_verify(
    conn: psycopg.Connection[Any], user: User, limit: int = 100
) -> list[dict[str, Any]]:
    """Handled cases in the user's area waiting for verification, oldest handled first, with the
    handler's note and how many photos came with it. No caller details."""
    cell = scope_cell(user)
    return conn.execute(
        _SCOPE + """
        SELECT t.id, t.title, t.category, t.priority, t.address, t.source, t.grid_code,
               g.name AS cell, t.handled_by, t.handled_at, t.due_at,
               coalesce(h.note, '') AS handler_note,
               coalesce(cardinality(h.photos), 0) AS handler_photos,
               (SELECT count(*) FROM case_photos p WHERE p.ticket_id = t.id) AS photos,
               (SELECT count(*) FROM ticket_events r WHERE r.ticket_id = t.id
                  AND r.kind = 'transition' AND r.to_status = 'rework') AS reworks
        FROM tickets t
        LEFT JOIN grids g ON g.code = t.grid_code
        LEFT JOIN LATERAL (
            SELECT e.note, e.photos FROM ticket_events e
            WHERE e.ticket_id = t.id AND e.kind = 'transition' AND e.to_status = 'handled'
            ORDER BY e.at DESC, e.id DESC LIMIT 1
        ) h ON true
        WHERE t.status = 'handled'
          AND (%(cell)s::text IS NULL OR t.grid_code IN (SELECT code FROM area))
          AND (%(worker)s::text IS NULL OR t.handled_by IS DISTINCT FROM %(username)s)
        ORDER BY t.handled_at NULLS FIRST, t.id
        LIMIT %(limit)s
        """,
        {"cell": cell, "username": user.username, "limit": limit,
         "worker": user.worker_id if user.role == "grid_worker" else None},
    ).fetchall()


def in_scope(conn: psycopg.Connection[Any], user: User, ticket_id: int) -> bool:
    """True when the case lies in the area whose cases ``user`` verifies."""
    cell = scope_cell(user)
    if cell is None:
        return True
    row = conn.execute(
        _SCOPE + "SELECT 1 FROM tickets WHERE id = %(id)s"
        " AND grid_code IN (SELECT code FROM area)",
        {"cell": cell, "id": ticket_id},
    ).fetchone()
    return row is not None


def decide(
    conn: psycopg.Connection[Any], user: User, ticket_id: int, ok: bool, note: str = ""
) -> str:
    """Verify the case (``ok``) or send it back for rework (``note``: the reason, required);
    return the sentence to show. Raises :class:`VerificationError` with the reason when refused.
    """
    ticket = conn.execute(
        "SELECT status, handled_by FROM tickets WHERE id = %s", (ticket_id,)
    ).fetchone()
    if ticket is None:
        raise VerificationError(f"case {ticket_id} does not exist")
    if ticket["handled_by"] == user.username:
        raise VerificationError(
            f"you handled case {ticket_id} yourself; someone else must verify it"
        )
    if not ok and not note.strip():
        raise VerificationError("say what is still wrong when sending a case back for rework")
    if not in_scope(conn, user, ticket_id):
        raise VerificationError(f"case {ticket_id} is outside your area")
    actor = Actor(user.username, user.role, user.worker_id)
    try:
        transition(conn, ticket_id, "verified" if ok else "rework", actor, note.strip())
    except TransitionError as exc:
        raise VerificationError(str(exc)) from None
    if ok:
        return f"Case {ticket_id} verified."
    return f"Case {ticket_id} sent back to the handler for rework."


def cell_name(conn: psycopg.Connection[Any], code: str) -> str:
    """A grid cell's name (its code when unknown)."""
    row = conn.execute("SELECT name FROM grids WHERE code = %s", (code,)).fetchone()
    return str(row["name"]) if row else code


# --- the services the verification page calls (one transaction each) ---------------------------

def queue(db: Database, user: User, limit: int = 100) -> list[dict[str, Any]]:
    """:func:`cases_to_verify` of ``user`` (empty for a user who verifies nothing)."""
    try:
        with db.transaction() as conn:
            return cases_to_verify(conn, user, limit)
    except VerificationError:
        return []


def area_name(db: Database, code: str) -> str:
    """:func:`cell_name`."""
    with db.transaction() as conn:
        return cell_name(conn, code)


def verify(db: Database, user: User, ticket_id: int, ok: bool, note: str = "") -> str:
    """:func:`decide` in a transaction of its own."""
    with db.transaction() as conn:
        return decide(conn, user, ticket_id, ok, note)
