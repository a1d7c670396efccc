"""The batching writer: decode queued MQTT messages, store a batch in one transaction, then ack.

Two threads form a pipeline. The decoder takes :class:`Delivery` items from a queue, gathers up
to ``batch_size`` of them or whatever arrived within ``batch_ms`` of the first and decodes them
(:mod:`ingest.payloads`) while the writer stores the batch before it, so Python's work on one
batch overlaps PostgreSQL's on the other. The writer hands each batch to the readings store
(:class:`cityops.sensing.store.ReadingsStore`), which writes it in ONE transaction (readings by
their natural key, devices, the rollups' dirty hours, dead letters, statuses). Only after COMMIT
are the messages acknowledged to the broker, batch after batch in the order they arrived, and
only then is the ``on_committed`` hook called with the new readings. The decoder runs at most one
batch ahead. While the database is unreachable the batch is retried with backoff and nothing is
acknowledged, so the broker keeps (and later redelivers) it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from cityops.platform.topics import Topics
from cityops.sensing.readings import Reading
from cityops.sensing.store import ReadingsStore, StoreUnavailable, Written
from ingest.payloads import Decoded, decode_message

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


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


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A batch as received and as decoded, on its way from the decoder to the writer."""

    batch: list[Delivery]
    decoded: list[Decoded]


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
        self._store = ReadingsStore(database_url, self._decode)
        self._abandon = threading.Event()
        self._writer_ended = threading.Event()
        self._decoder = threading.Thread(
            target=self._decode_loop, name="ingest-decoder", daemon=True
        )
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        """Connect, load the device registry and start the threads (raises if no database)."""
        self._store.load_registry()
        self._thread.start()
        self._decoder.start()
        log.info("ingest writer started", extra={"devices": len(self._store.kinds)})

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
        self._store.close()

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
        return self._store.decode_all(batch)

    def _decode(self, delivery: Delivery, kinds: Mapping[str, str]) -> Decoded:
        return decode_message(delivery.topic, delivery.payload, delivery.received_at, kinds,
                              self._topics)

    def _commit(self, item: _Decoded) -> list[Reading] | None:
        """Store the batch, retrying through database outages; None when abandoned at stop."""
        delay = RETRY_FIRST_S
        outage_since: float | None = None
        while True:
            try:
                written = self._store.write(item.batch, item.decoded)
            except StoreUnavailable as exc:
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning(
                        "database unavailable; holding messages unacknowledged and retrying",
                        extra={"error": str(exc), "messages": len(item.batch)},
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
            self._count(written)
            return written.new

    def _count(self, written: Written) -> None:
        counters = self.counters
        counters.batches += 1
        counters.readings_stored += len(written.new)
        counters.duplicates_ignored += written.duplicates
        counters.dead_letters += written.dead_letters
        counters.status_updates += written.status_updates
