"""The unit of work: where every transaction of a running CityOps process starts and ends.

A :class:`Database` is a pool of connections to the CityOps database. Service functions (the
public functions of the rooms that pages, the scheduler and ingest call) take it as their first
argument and open their transaction with :meth:`Database.transaction`: the block commits when it
ends and rolls back when it raises, so a page never decides where a transaction starts, and what
must be written together (a personal-data view and its audit row, a change and its outbox row)
is written in one block. Functions that take a ``conn`` instead run inside the caller's
transaction and compose.

Only ``cityops`` uses connections; ``dashboards`` and ``ingest`` hold a :class:`Database` (or a
store built on one) and call service functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

Connection = psycopg.Connection[dict[str, Any]]
Pool = ConnectionPool[Connection]


class Database:
    """A pool of connections with dict rows, handing out transactions."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @classmethod
    def open(cls, url: str, *, min_size: int = 1, max_size: int = 8,
             name: str = "cityops") -> Database:
        """Connect a pool to ``url`` (connections are checked before being handed out)."""
        pool: Pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, name=name,
            kwargs={"row_factory": dict_row}, check=ConnectionPool.check_connection, open=False,
        )
        pool.open(wait=True, timeout=30)
        return cls(pool)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """A connection for work that commits in several transactions of its own (a job that
        claims and files one case at a time); what is left open commits when the block ends."""
        with self._pool.connection() as conn:
            yield conn

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()
