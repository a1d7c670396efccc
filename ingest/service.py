"""The ingest service: the MQTT client feeding the batching writer, as one object the CLI runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cityops.platform.topics import Topics
from ingest.mqtt_client import IngestMqttClient
from ingest.writer import BatchWriter, Delivery, OnCommitted

log = logging.getLogger(__name__)


class IngestService:
    """Subscribes to every device topic under ``topics`` and stores what arrives.

    ``shared=True`` subscribes through the MQTT 5 shared group ``$share/cityops-ingest/...`` so
    that several ingest processes (each with its own ``client_id``) split the load.
    ``on_committed`` receives the readings of each committed batch that were new.
    """

    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        *,
        topics: Topics,
        client_id: str,
        batch_size: int = 5000,
        batch_ms: int = 100,
        shared: bool = False,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._writer = BatchWriter(
            database_url, topics=topics, ack=self._ack, batch_size=batch_size,
            batch_ms=batch_ms, on_committed=on_committed,
        )
        self._mqtt = IngestMqttClient(
            mqtt_url,
            client_id=client_id,
            filters=topics.device_subscriptions(shared),
            deliver=self._writer.submit,
            receive_maximum=2 * batch_size,  # room for the next batch while one commits
            require_mqtt5=shared,
        )
        self._started = False

    @property
    def protocol(self) -> str | None:
        """The MQTT version in use once started: "5" or "3.1.1"."""
        return self._mqtt.protocol

    def counters(self) -> dict[str, int]:
        """Running totals: messages_received, readings_stored, duplicates_ignored, dead_letters,
        status_updates, batches."""
        return self._writer.counters.as_dict()

    def start(self) -> None:
        """Connect to the database and the broker and start storing.

        Raises :class:`cityops.sensing.store.StoreUnavailable` when the database is unreachable and
        :class:`ingest.mqtt_client.MqttConnectError` when the broker is.
        """
        self._writer.start()
        try:
            self._mqtt.connect()
        except Exception:
            self._writer.stop()
            raise
        self._started = True
        log.info("ingest started", extra={"mqtt_protocol": self._mqtt.protocol})

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, store and ack what is queued (up to ``timeout`` s), disconnect."""
        if not self._started:
            return
        self._started = False
        self._mqtt.pause()
        self._writer.stop(timeout)
        self._mqtt.disconnect()
        log.info("ingest stopped", extra=self.counters())

    def _ack(self, deliveries: Sequence[Delivery]) -> None:
        self._mqtt.ack(deliveries)
