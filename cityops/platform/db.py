"""Database access: single connections, schema migrations (yoyo) and storage-engine detection
(pooled transactions: :mod:`cityops.platform.database`).

Migrations live in ``cityops/platform/migrations`` as numbered yoyo files (SQL, or Python where a
step depends on the server, such as the TimescaleDB hypertable). We use yoyo rather than Alembic
because our schema is hand-written SQL with no ORM models to autogenerate from; yoyo runs plain SQL
files, records what it applied and takes a lock so two processes starting together migrate once.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

Engine = Literal["timescaledb", "postgresql"]

BUCKET_ORIGIN = "2000-01-03 00:00+00"  # a Monday: the same week boundaries as time_bucket


def connect(url: str, **kwargs: Any) -> psycopg.Connection[dict[str, Any]]:
    """Open one connection whose rows are dicts."""
    return psycopg.connect(url, row_factory=dict_row, **kwargs)


def migrations_dir() -> Path:
    """The folder of yoyo migration files shipped with the package."""
    return Path(str(resources.files("cityops.platform") / "migrations"))


def yoyo_uri(url: str) -> str:
    """Translate a libpq URL (also a unix-socket one) into the URI form yoyo expects."""
    params = conninfo_to_dict(url)
    user = quote(str(params.pop("user", "postgres")), safe="")
    password = params.pop("password", None)
    auth = user + (":" + quote(str(password), safe="") if password else "")
    host = str(params.pop("host", "") or "")
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "postgres")), safe="")
    netloc = auth + "@"
    if host and not host.startswith("/"):
        netloc += host + (f":{port}" if port else "")
    else:
        if host:
            params["host"] = host
        if port:
            params["port"] = port
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"postgresql+psycopg://{netloc}/{dbname}" + (f"?{query}" if query else "")


def upgrade(url: str) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when up to date)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_uri(url))
    try:
        migrations = read_migrations(str(migrations_dir()))
        with backend.lock():
            pending = backend.to_apply(migrations)
            ids = [m.id for m in pending]
            if ids:
                log.info("applying migrations", extra={"migrations": ids})
                backend.apply_migrations(pending)
        return ids
    finally:
        backend.connection.close()


def pending_migrations(url: str) -> list[str]:
    """Ids of migrations not yet applied."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_uri(url))
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(migrations_dir())))]
    finally:
        backend.connection.close()


def readings_engine(conn: psycopg.Connection[Any]) -> Engine:
    """Which storage the readings table was created on: 'timescaledb' or 'postgresql'."""
    row = conn.execute(
        "SELECT value #>> '{}' AS v FROM meta WHERE key = 'readings_engine'"
    ).fetchone()
    if row is None:
        raise RuntimeError("the schema is not migrated: run `cityops db upgrade`")
    value = row["v"] if isinstance(row, dict) else row[0]
    return "timescaledb" if value == "timescaledb" else "postgresql"


def timescale_license(conn: psycopg.Connection[Any]) -> str | None:
    """'timescale', 'apache' or None (no TimescaleDB in this server)."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true) AS v").fetchone()
    value = row["v"] if isinstance(row, dict) else row[0]
    return value or None


def bucket_sql(engine: Engine, width: str, column: str = "ts") -> str:
    """SQL expression bucketing ``column`` into ``width`` (e.g. '15 minutes') on either engine."""
    if engine == "timescaledb":
        return f"time_bucket(interval '{width}', {column})"
    return f"date_bin(interval '{width}', {column}, timestamptz '{BUCKET_ORIGIN}')"

