"""The public side of cases, as Open311 GeoReport v2 publishes them (docs/cases.md, "Citizens'
reports (Open311)"). Everything here may be shown to anybody on the internet.

What is published, and what never is:

- cases of every source except the 12345 hotline (a caller's case stays between them and the
  centre), the care categories ``E08xx`` (welfare checks and help requests are about a person)
  and sensor cases of water meters (a household's water use); such cases are left out of
  listings entirely and are "not found" by id;
- of a published case: its id, category, state, the responsible unit, the times, the point; the
  description and the address only of a citizen's own request (what the citizen wrote for
  publication), the category's name for the others;
- never a reporter's name, phone or e-mail: the queries do not read those columns at all;
- photos: only those a citizen uploaded with their own published request (metadata removed at
  upload), never a worker's photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from cityops.cases.photos import OPEN311_UPLOADER, Photo
from cityops.cases.tickets import FINAL_STATES
from cityops.platform.database import Database

MAX_RESULTS = 1000


def _published(t: str) -> str:
    """SQL: the case of alias ``t`` may be published."""
    return f"""
    {t}.source <> 'hotline' AND {t}.category NOT LIKE 'E08%%'
    AND NOT ({t}.source = 'sensor' AND EXISTS (
        SELECT 1 FROM alerts a JOIN devices d ON d.id = a.source_id
        WHERE a.id = {t}.alert_id AND d.kind = 'water_meter'))
"""


_SELECT = f"""
    SELECT t.id, t.status, t.duplicate_of, t.category, t.source, t.unit,
           CASE WHEN t.source = 'citizen' THEN t.description END AS description,
           CASE WHEN t.source = 'citizen' THEN t.address END AS address,
           t.created_at, t.updated_at, t.due_at, t.lon, t.lat,
           EXISTS (SELECT 1 FROM tickets o WHERE o.id = t.duplicate_of AND {_published("o")})
               AS duplicate_public,
           (SELECT p.id FROM case_photos p
             WHERE p.ticket_id = t.id AND p.uploaded_by = '{OPEN311_UPLOADER}'
               AND t.source = 'citizen'
             ORDER BY p.id LIMIT 1) AS photo_id
    FROM tickets t
    WHERE {_published("t")}
"""


def is_open(status: str) -> bool:
    """Open311's two states: open until the case is closed, evaluated or voided."""
    return status not in FINAL_STATES


def get_request(conn: psycopg.Connection[Any], ticket_id: int) -> dict[str, Any] | None:
    """One published case by id, or None (no such case, or one that is not published)."""
    return conn.execute(_SELECT + " AND t.id = %s", (ticket_id,)).fetchone()


def list_requests(
    conn: psycopg.Connection[Any],
    *,
    ids: Sequence[int] | None = None,
    codes: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = MAX_RESULTS,
) -> list[dict[str, Any]]:
    """Published cases, newest first: those of ``ids`` if given, else those reported in
    [start, end) of the category codes and Open311 statuses (``open``/``closed``) given."""
    where, params = [], []
    if ids is not None:
        where.append("t.id = ANY(%s)")
        params.append(list(ids))
    if codes:
        where.append("t.category = ANY(%s)")
        params.append(list(codes))
    if start is not None:
        where.append("t.created_at >= %s")
        params.append(start)
    if end is not None:
        where.append("t.created_at < %s")
        params.append(end)
    if statuses is not None and set(statuses) != {"open", "closed"}:
        where.append("t.status = ANY(%s)" if "closed" in statuses else "t.status <> ALL(%s)")
        params.append(list(FINAL_STATES))
    sql = _SELECT + "".join(f" AND {w}" for w in where) + " ORDER BY t.created_at DESC, t.id DESC"
    sql += " LIMIT %s"
    params.append(min(limit, MAX_RESULTS))
    return list(conn.execute(sql, params).fetchall())


def public_photo(conn: psycopg.Connection[Any], photo_id: int) -> Photo | None:
    """A photo anybody may fetch: uploaded by the citizen with their own published request."""
    row = conn.execute(
        f"SELECT p.content_type, p.data FROM case_photos p JOIN tickets t ON t.id = p.ticket_id"
        f" WHERE p.id = %s AND p.uploaded_by = %s AND t.source = 'citizen' AND {_published('t')}",
        (photo_id, OPEN311_UPLOADER),
    ).fetchone()
    return None if row is None else Photo(bytes(row["data"]), row["content_type"])


# --- the services the Open311 routes call (one transaction each) ------------------------------

def read_request(db: Database, ticket_id: int) -> dict[str, Any] | None:
    """:func:`get_request`."""
    with db.transaction() as conn:
        return get_request(conn, ticket_id)


def read_requests(db: Database, **filters: Any) -> list[dict[str, Any]]:
    """:func:`list_requests` with its filters."""
    with db.transaction() as conn:
        return list_requests(conn, **filters)


def read_photo(db: Database, photo_id: int) -> Photo | None:
    """:func:`public_photo`."""
    with db.transaction() as conn:
        return public_photo(conn, photo_id)
