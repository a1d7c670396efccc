"""Users, roles and the audit log.

Roles: ``operations`` (wall screen, all tickets), ``grid_worker`` (own and own cell's tickets),
``civil_affairs`` (the only role that sees residents' personal details; every view is audited),
``admin`` (loads data, watches device health), ``hotline`` (12345 operators: file cases from calls,
see the callers' names and phones, record ratings), ``supervisor`` (verifies handled cases, decides
appeals of bad reviews). Passwords are stored as werkzeug scrypt hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from werkzeug.security import check_password_hash, generate_password_hash

from cityops.platform.database import Database

ROLES = ("operations", "grid_worker", "civil_affairs", "admin", "hotline", "supervisor")


@dataclass(frozen=True)
class User:
    """A signed-in person."""

    username: str
    display_name: str
    role: str
    worker_id: str | None = None
    cell_code: str | None = None


def create_user(
    conn: psycopg.Connection[Any],
    username: str,
    display_name: str,
    role: str,
    password: str,
    worker_id: str | None = None,
    cell_code: str | None = None,
) -> User:
    """Create a user (or reset an existing one's password and role); link a grid worker.

    ``cell_code``: the centre an operations or supervisor user belongs to (a street's code: that
    street's cases; None or the district's code: all cases). A grid worker's cell is its worker's.
    """
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    if (role == "grid_worker") != (worker_id is not None):
        raise ValueError("a grid_worker user needs a worker id, and only a grid_worker has one")
    if cell_code is not None and role not in ("operations", "supervisor"):
        raise ValueError("only an operations or supervisor user belongs to a centre (cell code)")
    conn.execute(
        """
        INSERT INTO users (username, display_name, role, password_hash, cell_code)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,
            role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, active = true,
            cell_code = EXCLUDED.cell_code
        """,
        (username, display_name, role, generate_password_hash(password), cell_code),
    )
    if worker_id is not None:
        updated = conn.execute(
            "UPDATE workers SET username = %s WHERE id = %s RETURNING id", (username, worker_id)
        ).fetchone()
        if updated is None:
            raise ValueError(f"worker {worker_id} does not exist")
    user = get_user(conn, username)
    assert user is not None
    return user


def get_user(conn: psycopg.Connection[Any], username: str) -> User | None:
    """The active user of that name, with the linked worker if any."""
    row = conn.execute(
        "SELECT u.username, u.display_name, u.role, w.id AS worker_id,"
        " COALESCE(w.cell_code, u.cell_code) AS cell_code"
        " FROM users u LEFT JOIN workers w ON w.username = u.username"
        " WHERE u.username = %s AND u.active",
        (username,),
    ).fetchone()
    if row is None:
        return None
    return User(row["username"], row["display_name"], row["role"], row["worker_id"],
                row["cell_code"])


def authenticate(conn: psycopg.Connection[Any], username: str, password: str) -> User | None:
    """The user if the password is right, else None (same answer for unknown users)."""
    row = conn.execute(
        "SELECT password_hash FROM users WHERE username = %s AND active", (username,)
    ).fetchone()
    if row is None or not check_password_hash(row["password_hash"], password):
        return None
    return get_user(conn, username)


def audit(
    conn: psycopg.Connection[Any],
    username: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append to the audit log (who did or saw what)."""
    conn.execute(
        "INSERT INTO audit_log (username, action, subject, details) VALUES (%s, %s, %s, %s)",
        (username, action, subject, json.dumps(details or {}, default=str)),
    )


def load_user(db: Database, username: str) -> User | None:
    """The active user of that name (a web session's user, on each request)."""
    with db.transaction() as conn:
        return get_user(conn, username)


def sign_in(db: Database, username: str, password: str, ip: str | None) -> User | None:
    """The user if the password is right, with the sign-in audited in the same transaction."""
    with db.transaction() as conn:
        user = authenticate(conn, username, password)
        if user is not None:
            audit(conn, user.username, "sign_in", "web", {"ip": ip})
    return user
