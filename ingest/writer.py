"""The batching writer: decode queued MQTT messages, store a batch in one transaction, then ack.

Two threads form a pipeline. The decoder takes :class:`Delivery` items from a queue, gathers up
to ``batch_size`` of them or whatever arrived within ``batch_ms`` of the first and decodes them
(:mod:`ingest.payloads`) while the writer stores the batch before it, so Python's work on one
batch overlaps PostgreSQL's on the other. The writer stores a batch in ONE transaction: it
binary-COPYs the readings into a temporary staging table, inserts them into ``readings`` with
``ON CONFLICT DO NOTHING`` (a redelivered or repeated reading changes nothing and only new rows
come back), stores dead letters and updates the devices' last_seen, battery and online state.
Only after COMMIT are the messages acknowledged to the broker, batch after batch in the order
they arrived, and only then is the ``on_committed`` hook called with the new readings. The
decoder runs at most one batch ahead. While the database is unreachable the batch is retried
with backoff and nothing is acknowledged, so the broker keeps (and later redelivers) it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import args_row

from cityops.platform import db
from cityops.platform.topics import Topics
from cityops.sensing.readings import Reading, rollup_time_sql
from ingest.payloads import Decoded, Rejection, StatusUpdate, decode_message

log = logging.getLogger(__name__)

REGISTRY_REFRESH_S = 5.0  # at most one reload of the device registry per this many seconds
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0

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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One MQTT message as received, with what acknowledging it needs."""

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    connection: int = 0  # which broker connection it arrived on; acks go back on that one only


@dataclass(slots=True)
class Counters:
    """Running totals since start (read them with :meth:`as_dict`)."""

    messages_received: int = 0
    readings_stored: int = 0
    duplicates_ignored: int = 0
    dead_letters: int = 0
    status_updates: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)


class DevicesGone(Exception):
    """Devices a batch has readings of were deleted after the registry was loaded."""

    def __init__(self, device_ids: list[str]) -> None:
        super().__init__(f"device(s) {', '.join(device_ids)} are no longer registered")
        self.device_ids = device_ids


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A batch as received and as decoded, on its way from the decoder to the writer."""

    batch: list[Delivery]
    decoded: list[Decoded]


@dataclass(slots=True)
class _Written:
    """What the statements of one batch did (counted only once the transaction commits)."""

    new: list[Reading] = field(default_factory=list)
    duplicates: int = 0
    dead_letters: int = 0
    status_updates: int = 0

    def add(self, other: _Written) -> None:
        self.new += other.new
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.status_updates += other.status_updates


class DeviceRegistry:
    """Registered device ids and their kinds; reloaded when an unknown id shows up, rate-limited."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        self._refreshed_at = float("-inf")

    def load(self, conn: psycopg.Connection[Any]) -> None:
        """Read every device's id and kind."""
        rows = conn.execute("SELECT id, kind FROM devices").fetchall()
        self.kinds = {row["id"]: row["kind"] for row in rows}

    def refresh_for_unknown(self, conn: psycopg.Connection[Any]) -> bool:
        """Reload because an unknown id arrived, unless that was done in the last few seconds."""
        now = time.monotonic()
        if now - self._refreshed_at < REGISTRY_REFRESH_S:
            return False
        self._refreshed_at = now
        self.load(conn)
        return True


OnCommitted = Callable[[list[Reading]], None]
Ack = Callable[[Sequence[Delivery]], None]


class BatchWriter:
    """Decodes and stores queued deliveries in batches on a thread of its own."""

    def __init__(
        self,
        database_url: str,
        *,
        topics: Topics,
        ack: Ack,
        batch_size: int = 5000,
        batch_ms: int = 100,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self.counters = Counters()
        self._url = database_url
        self._topics = topics
        self._ack = ack
        self._batch_size = batch_size
        self._batch_s = batch_ms / 1000
        self._on_committed = on_committed
        self._queue: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        # decoded batches waiting for the writer; None ends the writer
        self._decoded: queue.Queue[_Decoded | None] = queue.Queue(maxsize=1)
        self._registry = DeviceRegistry()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._abandon = threading.Event()
        self._writer_ended = threading.Event()
        self._decoder = threading.Thread(
            target=self._decode_loop, name="ingest-decoder", daemon=True
        )
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        """Connect, load the device registry and start the threads (raises if no database)."""
        self._registry.load(self._connection())
        self._thread.start()
        self._decoder.start()
        log.info("ingest writer started", extra={"devices": len(self._registry.kinds)})

    def submit(self, delivery: Delivery) -> None:
        """Queue one received message (called from the MQTT network thread)."""
        self.counters.messages_received += 1
        self._queue.put(delivery)

    def stop(self, timeout: float = 30.0) -> None:
        """Store and ack everything queued so far, then end the thread.

        If that takes longer than ``timeout`` (the database is down), give up: what is not
        committed is not acknowledged, and the broker delivers it again.
        """
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join()
            log.warning("ingest writer stopped before the database took every queued message")
        self._decoder.join()
        if self._conn is not None:
            self._conn.close()

    def _decode_loop(self) -> None:
        """The decoder thread: gather and decode batches, hand them to the writer in order."""
        try:
            done = False
            while not done:
                batch, done = self._collect()
                if batch and not self._hand_over(_Decoded(batch, self._decode_all(batch))):
                    return
        except Exception:
            log.critical("ingest decoder failed", exc_info=True)
        self._hand_over(None)

    def _hand_over(self, item: _Decoded | None) -> bool:
        """Queue for the writer, waiting while it is busy; False once the writer has ended."""
        while not self._writer_ended.is_set():
            try:
                self._decoded.put(item, timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def _run(self) -> None:
        """The writer thread: store, ack and report each decoded batch in turn."""
        try:
            while (item := self._decoded.get()) is not None:
                if not self._process(item):
                    return
        except Exception:
            log.critical("ingest writer failed", exc_info=True)
        finally:
            self._writer_ended.set()

    def _collect(self) -> tuple[list[Delivery], bool]:
        """Wait for a first delivery, then take more until the batch is full or its time is up."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self._batch_s
        while len(batch) < self._batch_size:
            remaining = deadline - time.monotonic()
            try:  # past the deadline, still take what is already queued: it costs no wait
                item = self._queue.get(timeout=max(remaining, 0))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _process(self, item: _Decoded) -> bool:
        """Store one batch, then ack it and run the hook; False when abandoned at stop."""
        new = self._commit(item)
        if new is None:
            return False
        self._ack(item.batch)
        if self._on_committed is not None and new:
            try:
                self._on_committed(new)
            except Exception:
                log.exception("on_committed hook failed", extra={"readings": len(new)})
        return True

    def _decode_all(self, batch: list[Delivery]) -> list[Decoded]:
        return [self._decode(d) for d in batch]

    def _redecode_if_unknown(self, item: _Decoded) -> list[Decoded]:
        """The batch decoded again when it names an unknown device and the registry, reloaded
        (rate-limited) on the writer's connection, may now know it."""
        unknown = any(r.code == "unknown_device" for d in item.decoded for r in d.rejections)
        if unknown and self._registry.refresh_for_unknown(self._connection()):
            return self._decode_all(item.batch)
        return item.decoded

    def _decode(self, delivery: Delivery) -> Decoded:
        return decode_message(
            delivery.topic, delivery.payload, delivery.received_at, self._registry.kinds,
            self._topics,
        )

    def _commit(self, item: _Decoded) -> list[Reading] | None:
        """Store the batch, retrying through database outages; None when abandoned at stop."""
        delay = RETRY_FIRST_S
        outage_since: float | None = None
        while True:
            try:
                new = self._store(item)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning(
                        "database unavailable; holding messages unacknowledged and retrying",
                        extra={"error": str(exc).strip(), "messages": len(item.batch)},
                    )
                if self._abandon.wait(delay):
                    return None
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if outage_since is not None:
                log.warning(
                    "database reachable again",
                    extra={"outage_s": round(time.monotonic() - outage_since, 1)},
                )
            return new

    def _store(self, item: _Decoded) -> list[Reading]:
        """One transaction for the batch; a batch the database refuses is stored message by
        message, each refused message becoming a dead letter."""
        batch = item.batch
        decoded = self._redecode_if_unknown(item)
        conn = self._connection()
        try:
            written = self._write_batch(conn, batch, decoded)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except psycopg.Error as exc:
            log.error(
                "database refused a batch; storing its messages one by one",
                extra={"error": str(exc).strip(), "messages": len(batch)},
            )
            self._registry.load(conn)  # a device may have been deleted or changed its kind
            written = self._write_one_by_one(conn, batch)
        counters = self.counters
        counters.batches += 1
        counters.readings_stored += len(written.new)
        counters.duplicates_ignored += written.duplicates
        counters.dead_letters += written.dead_letters
        counters.status_updates += written.status_updates
        return written.new

    def _write_batch(
        self, conn: psycopg.Connection[Any], batch: list[Delivery], decoded: list[Decoded]
    ) -> _Written:
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
            self._registry.load(conn)
            with conn.transaction():
                return self._write(conn, batch, self._decode_all(batch))

    def _write_one_by_one(self, conn: psycopg.Connection[Any], batch: list[Delivery]) -> _Written:
        written = _Written()
        with conn.transaction():
            for delivery in batch:
                decoded = self._decode(delivery)
                try:
                    with conn.transaction():
                        conn.execute("TRUNCATE ingest_staging")  # rows of the previous message
                        written.add(self._write(conn, [delivery], [decoded]))
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except (psycopg.Error, DevicesGone) as exc:
                    reason = f"the database refused this message: {str(exc).strip()}"
                    rejection = Rejection("refused_by_database", reason, delivery.payload)
                    refused = Decoded(delivery.topic, decoded.device_id, rejections=[rejection])
                    written.add(self._write(conn, [delivery], [refused]))
        return written

    def _write(
        self, conn: psycopg.Connection[Any], batch: list[Delivery], decoded: list[Decoded]
    ) -> _Written:
        """The statements of one batch, inside the caller's transaction."""
        staged = 0
        dead: list[tuple[datetime, str, bytes, str, str | None, str]] = []
        statuses: dict[str, StatusUpdate] = {}
        with conn.cursor(row_factory=args_row(Reading)) as cur:
            with cur.copy(COPY_STAGING) as copy:
                copy.set_types(STAGING_TYPES)
                for delivery, item in zip(batch, decoded, strict=True):
                    received_at = delivery.received_at
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
                self._lock_devices(conn, decoded)
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
        return _Written(new, staged - len(new), len(dead), len(statuses))

    @staticmethod
    def _lock_devices(conn: psycopg.Connection[Any], decoded: list[Decoded]) -> None:
        """Lock the batch's devices against deletion until COMMIT (what a foreign key's check
        does per row, here once per batch); raise DevicesGone if some no longer exist."""
        ids = list({r.device_id for item in decoded for r in item.readings})
        found = conn.execute(LOCK_DEVICES, (ids,)).fetchall()
        gone = set(ids).difference(row["id"] for row in found)
        if gone:
            raise DevicesGone(sorted(gone))

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            conn = db.connect(
                self._url, autocommit=True, connect_timeout=5, application_name="cityops-ingest"
            )
            conn.execute(CREATE_STAGING)
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
