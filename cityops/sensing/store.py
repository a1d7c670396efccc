"""The readings store: what ingest writes, in one transaction per batch, on a connection of its own.

:meth:`ReadingsStore.write` takes a batch of received messages and what ingest decoded of them
(:mod:`cityops.sensing.messages`) and, in ONE transaction: binary-COPYs the readings into a
temporary staging table, inserts them into ``readings`` with ``ON CONFLICT DO NOTHING`` on their
natural key (device, metric, time: a redelivered or repeated reading changes nothing and only new
rows come back), updates the devices' last_seen and battery, queues the hours they count in for
the hourly rollups (:mod:`cityops.sensing.retention`), COPYs the dead letters and applies status
updates (a status older than the one stored changes nothing). It returns the new readings, which
ingest acknowledges after the commit and hands to detection.

The store keeps the device registry (ids and kinds) ingest validates against: reloaded, at most
every :data:`REGISTRY_REFRESH_S` seconds, when a message names an unknown device, and whenever a
batch names devices deleted since. A batch the database refuses is stored message by message,
each refused one a dead letter ``refused_by_database``. A lost or unreachable database raises
:class:`StoreUnavailable` (nothing written): ingest holds the messages unacknowledged and retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import args_row

from cityops.platform import db
from cityops.sensing.messages import Decoded, Rejection, StatusUpdate
from cityops.sensing.readings import Reading, rollup_time_sql

log = logging.getLogger(__name__)

REGISTRY_REFRESH_S = 5.0  # at most one reload of the device registry per this many seconds

CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    device_id text, metric text, ts timestamptz, value float8, received_at timestamptz
) ON COMMIT DELETE ROWS
"""
COPY_STAGING = (
    "COPY ingest_staging (device_id, metric, ts, value, received_at) FROM STDIN (FORMAT BINARY)"
)
STAGING_TYPES = ["text", "text", "timestamptz", "float8", "timestamptz"]

# New rows only come back; the devices they came from get last_seen, and battery_pct when a
# battery reading is at least as recent as anything heard from the device before; the UTC hours
# they count in (an interval metric: the hour its interval ends in) are queued for the hourly
# rollup (cityops.sensing.retention).
INSERT_READINGS = """
WITH new AS (
    INSERT INTO readings (device_id, metric, ts, value, received_at)
    SELECT device_id, metric, ts, value, received_at FROM ingest_staging
    ON CONFLICT DO NOTHING
    RETURNING device_id, metric, ts, value
), seen AS (
    SELECT device_id, max(ts) AS last_seen,
           max(ts) FILTER (WHERE metric = 'battery_pct') AS battery_ts,
           -- numeric, rounded: a tiny value (1e-50) would not fit devices.battery_pct (real)
           round(((array_agg(value ORDER BY ts DESC)
                   FILTER (WHERE metric = 'battery_pct'))[1])::numeric, 1) AS battery
    FROM new GROUP BY device_id
), touched AS (
    UPDATE devices d
    SET last_seen = greatest(d.last_seen, s.last_seen),
        battery_pct = CASE WHEN s.battery_ts >= coalesce(d.last_seen, '-infinity')
                           THEN s.battery ELSE d.battery_pct END
    FROM seen s WHERE d.id = s.device_id
), dirty AS (
    INSERT INTO readings_dirty_hours (hour)
    SELECT DISTINCT date_trunc('hour', {rollup_time}, 'UTC') FROM new
)
SELECT device_id, metric, ts, value FROM new
""".replace("{rollup_time}", rollup_time_sql())

# readings.device_id has no foreign key (migration 0005): this keeps the batch's devices
# from being deleted until COMMIT, and a trigger on devices refuses to delete one with readings.
LOCK_DEVICES = "SELECT id FROM devices WHERE id = ANY(%s) FOR KEY SHARE"

COPY_DEAD_LETTERS = (
    "COPY dead_letters (received_at, topic, payload, reason, device_id, code)"
    " FROM STDIN (FORMAT BINARY)"
)
DEAD_LETTER_TYPES = ["timestamptz", "text", "bytea", "text", "text", "text"]

# A status older than the one already stored (a late or retained message) changes nothing.
UPDATE_STATUS = """
UPDATE devices d
SET online = s.online, status_at = s.ts,
    battery_pct = CASE WHEN s.battery IS NOT NULL AND s.ts >= coalesce(d.last_seen, '-infinity')
                       THEN round(s.battery, 1) ELSE d.battery_pct END
FROM unnest(%s::text[], %s::bool[], %s::timestamptz[], %s::numeric[]) AS s(id, online, ts, battery)
WHERE d.id = s.id AND (d.status_at IS NULL OR d.status_at <= s.ts)
"""


class Message(Protocol):
    """A received message as the store needs it (ingest's delivery has these)."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def received_at(self) -> datetime: ...


# Decode one message against the device registry (ids -> kinds); ingest's decoder.
Decode = Callable[[Any, Mapping[str, str]], Decoded]


class StoreUnavailable(Exception):
    """The database is unreachable or the connection was lost: nothing of the batch is stored."""


class DevicesGone(Exception):
    """Devices a batch has readings of were deleted after the registry was loaded."""

    def __init__(self, device_ids: list[str]) -> None:
        super().__init__(f"device(s) {', '.join(device_ids)} are no longer registered")
        self.device_ids = device_ids


@dataclass(slots=True)
class Written:
    """What one batch's statements did (counted only once the transaction commits)."""

    new: list[Reading] = field(default_factory=list)
    duplicates: int = 0
    dead_letters: int = 0
    status_updates: int = 0

    def add(self, other: Written) -> None:
        """Count ``other`` in too."""
        self.new += other.new
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.status_updates += other.status_updates


class ReadingsStore:
    """Writes decoded batches; one instance per writer thread (it owns one connection)."""

    def __init__(self, database_url: str, decode: Decode) -> None:
        self._url = database_url
        self._decode = decode
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self.kinds: dict[str, str] = {}
        self._refreshed_at = float("-inf")

    def load_registry(self) -> None:
        """Read every registered device's id and kind (raises StoreUnavailable)."""
        try:
            self._load_registry(self._connection())
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise StoreUnavailable(str(exc).strip()) from exc

    def decode_all(self, batch: Sequence[Message]) -> list[Decoded]:
        """Every message of ``batch`` decoded against the current registry."""
        return [self._decode(message, self.kinds) for message in batch]

    def write(self, batch: Sequence[Message], decoded: Sequence[Decoded]) -> Written:
        """Store one batch as the module docstring says; raises StoreUnavailable."""
        try:
            conn = self._connection()
            decoded = self._decoded_again_if_unknown(conn, batch, decoded)
            try:
                return self._write_batch(conn, batch, decoded)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise
            except psycopg.Error as exc:
                log.error("database refused a batch; storing its messages one by one",
                          extra={"error": str(exc).strip(), "messages": len(batch)})
                self._load_registry(conn)  # a device may have been deleted or changed its kind
                return self._write_one_by_one(conn, batch)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise StoreUnavailable(str(exc).strip()) from exc

    def close(self) -> None:
        """Close the connection (the next write opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _load_registry(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute("SELECT id, kind FROM devices").fetchall()
        self.kinds = {row["id"]: row["kind"] for row in rows}

    def _decoded_again_if_unknown(self, conn: psycopg.Connection[Any], batch: Sequence[Message],
                                  decoded: Sequence[Decoded]) -> Sequence[Decoded]:
        """The batch decoded again when it names an unknown device and the registry, reloaded
        (rate-limited), may now know it."""
        unknown = any(r.code == "unknown_device" for d in decoded for r in d.rejections)
        now = time.monotonic()
        if not unknown or now - self._refreshed_at < REGISTRY_REFRESH_S:
            return decoded
        self._refreshed_at = now
        self._load_registry(conn)
        return self.decode_all(batch)

    def _write_batch(self, conn: psycopg.Connection[Any], batch: Sequence[Message],
                     decoded: Sequence[Decoded]) -> Written:
        """The batch in one transaction; if some of its devices were deleted since the registry
        was loaded, reload it and write the batch again, their messages now dead letters."""
        try:
            with conn.transaction():
                return self._write(conn, batch, decoded)
        except DevicesGone as gone:
            log.warning(
                "devices deleted since the registry was loaded; their messages become dead letters",
                extra={"devices": gone.device_ids},
            )
            self._load_registry(conn)
            with conn.transaction():
                return self._write(conn, batch, self.decode_all(batch))

    def _write_one_by_one(self, conn: psycopg.Connection[Any],
                          batch: Sequence[Message]) -> Written:
        written = Written()
        with conn.transaction():
            for message in batch:
                decoded = self._decode(message, self.kinds)
                try:
                    with conn.transaction():
                        conn.execute("TRUNCATE ingest_staging")  # rows of the previous message
                        written.add(self._write(conn, [message], [decoded]))
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except (psycopg.Error, DevicesGone) as exc:
                    reason = f"the database refused this message: {str(exc).strip()}"
                    rejection = Rejection("refused_by_database", reason, message.payload)
                    refused = Decoded(message.topic, decoded.device_id, rejections=[rejection])
                    written.add(self._write(conn, [message], [refused]))
        return written

    def _write(self, conn: psycopg.Connection[Any], batch: Sequence[Message],
               decoded: Sequence[Decoded]) -> Written:
        """The statements of one batch, inside the caller's transaction."""
        staged = 0
        dead: list[tuple[datetime, str, bytes, str, str | None, str]] = []
        statuses: dict[str, StatusUpdate] = {}
        with conn.cursor(row_factory=args_row(Reading)) as cur:
            with cur.copy(COPY_STAGING) as copy:
                copy.set_types(STAGING_TYPES)
                for message, item in zip(batch, decoded, strict=True):
                    received_at = message.received_at
                    for reading in item.readings:
                        copy.write_row((*reading, received_at))
                    staged += len(item.readings)
                    for rejection in item.rejections:
                        dead.append((
                            received_at, item.topic, rejection.payload, rejection.reason,
                            item.device_id, rejection.code,
                        ))
                    status = item.status
                    if status is not None:
                        latest = statuses.get(status.device_id)
                        if latest is None or latest.ts <= status.ts:
                            statuses[status.device_id] = status
            if staged:
                _lock_devices(conn, decoded)
            # binary results: the new rows come back about a third faster than as text
            new: list[Reading] = (
                cur.execute(INSERT_READINGS, binary=True).fetchall() if staged else []
            )
            if dead:
                with cur.copy(COPY_DEAD_LETTERS) as copy:
                    copy.set_types(DEAD_LETTER_TYPES)
                    for row in dead:
                        copy.write_row(row)
            if statuses:
                updates = list(statuses.values())
                cur.execute(UPDATE_STATUS, (
                    [s.device_id for s in updates], [s.online for s in updates],
                    [s.ts for s in updates], [s.battery_pct for s in updates],
                ))
        return Written(new, staged - len(new), len(dead), len(statuses))

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            conn = db.connect(
                self._url, autocommit=True, connect_timeout=5, application_name="cityops-ingest"
            )
            conn.execute(CREATE_STAGING)
            self._conn = conn
        return self._conn


def _lock_devices(conn: psycopg.Connection[Any], decoded: Sequence[Decoded]) -> None:
    """Lock the batch's devices against deletion until COMMIT (what a foreign key's check does
    per row, here once per batch); raise DevicesGone if some no longer exist."""
    ids = list({r.device_id for item in decoded for r in item.readings})
    found = conn.execute(LOCK_DEVICES, (ids,)).fetchall()
    gone = set(ids).difference(row["id"] for row in found)
    if gone:
        raise DevicesGone(sorted(gone))
