"""What the 12345 hotline page reads: an operator's recent calls and the callbacks to make.

Callers' names and phones are personal: these functions are for hotline (and operations) users
only; the page checks the role before it calls them. Cases are filed through
:func:`cityops.cases.intake.file_case` and rated through :mod:`cityops.cases.ratings`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from cityops.platform.database import Database

CALL_TYPE_NAMES = {
    "consultation": "Consultation",
    "help": "Help request",
    "suggestion": "Suggestion",
    "complaint": "Complaint",
    "report": "Report",
}


def recent_calls(
    conn: psycopg.Connection[Any], operator: str, limit: int = 15
) -> list[dict[str, Any]]:
    """The cases ``operator`` filed from calls, newest first, with their status and deadline."""
    return conn.execute(
        """
        SELECT id, created_at, call_type, category, title, status, priority, due_at,
               dispatch_due_at, duplicate_of, reporter_name, reporter_phone
        FROM tickets WHERE source = 'hotline' AND reported_by = %s
        ORDER BY created_at DESC, id DESC LIMIT %s
        """,
        (operator, limit),
    ).fetchall()


def awaiting_rating(conn: psycopg.Connection[Any], limit: int = 50) -> list[dict[str, Any]]:
    """Closed hotline cases nobody has rated yet (call the caller back), longest waiting first."""
    return conn.execute(
        """
        SELECT t.id, t.closed_at, t.call_type, t.category, t.title, t.reporter_name,
               t.reporter_phone
        FROM tickets t
        WHERE t.source = 'hotline' AND t.status = 'closed' AND t.duplicate_of IS NULL
          AND NOT EXISTS (SELECT 1 FROM case_ratings r WHERE r.ticket_id = t.id)
        ORDER BY t.closed_at NULLS FIRST, t.id LIMIT %s
        """,
        (limit,),
    ).fetchall()


def bad_reviews(conn: psycopg.Connection[Any], limit: int = 50) -> list[dict[str, Any]]:
    """Hotline cases whose latest rating is a bad review (follow up, then rate again), with the
    follow-up due time and state; the most urgent first."""
    return conn.execute(
        """
        SELECT * FROM (
            SELECT DISTINCT ON (r.ticket_id) r.id AS rating_id, r.ticket_id, r.score,
                   r.comment, r.at, r.follow_up_due_at, r.followed_up_at, r.followed_up_by,
                   r.follow_up_note, r.appeal_status, t.title, t.category, t.reporter_name,
                   t.reporter_phone
            FROM case_ratings r JOIN tickets t ON t.id = r.ticket_id
            WHERE t.source = 'hotline'
            ORDER BY r.ticket_id, r.at DESC, r.id DESC
        ) latest
        WHERE score <= 2 AND appeal_status IS DISTINCT FROM 'overturned'
        ORDER BY followed_up_at IS NOT NULL, follow_up_due_at, rating_id LIMIT %s
        """,
        (limit,),
    ).fetchall()


def follow_up_state(row: dict[str, Any], now: datetime) -> str:
    """'followed up', 'overdue' or 'due' for a :func:`bad_reviews` row."""
    if row["followed_up_at"] is not None:
        return "followed up"
    if row["appeal_status"] == "pending":
        return "appealed; overdue" if row["follow_up_due_at"] < now else "appealed; due"
    return "overdue" if row["follow_up_due_at"] < now else "due"


def case_outcome(conn: psycopg.Connection[Any], ticket_id: int) -> dict[str, Any]:
    """A case just filed: its status, deadlines, worker and the case it duplicates."""
    row = conn.execute(
        "SELECT t.id, t.status, t.due_at, t.dispatch_due_at, t.duplicate_of, t.call_type,"
        " t.priority, w.name AS worker FROM tickets t LEFT JOIN workers w ON w.id = t.worker_id"
        " WHERE t.id = %s",
        (ticket_id,),
    ).fetchone()
    if row is None:
        raise ValueError(f"case {ticket_id} does not exist")
    return dict(row)


def read_lists(db: Database, operator: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                     list[dict[str, Any]]]:
    """The operator's recent calls, the closed cases awaiting a rating and the bad reviews."""
    with db.transaction() as conn:
        return recent_calls(conn, operator), awaiting_rating(conn), bad_reviews(conn)


def read_outcome(db: Database, ticket_id: int) -> dict[str, Any]:
    """:func:`case_outcome` of a case just filed."""
    with db.transaction() as conn:
        return case_outcome(conn, ticket_id)
