"""Send queued dispatches (the ``dispatches`` outbox) to grid workers over MQTT.

Each outbox row holds a worker's whole open-task list; it is published retained at QoS 1 on
``<prefix>/dispatch/<worker_id>``, so a phone that connects later gets the current list at once.
A row is marked sent only after the broker acknowledged it (PUBACK); failures stay queued.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from psycopg_pool import ConnectionPool

from cityops import mqtt as mqtt_helpers

log = logging.getLogger(__name__)


class MqttNotifier:
    """Publishes the outbox; safe to call from several threads (one publishes at a time)."""

    def __init__(self, mqtt_url: str, client_id: str = "cityops-notifier") -> None:
        self._url = mqtt_url
        self._client_id = client_id
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self.sent = 0

    def _connected(self) -> mqtt.Client:
        if self._client is None or not self._client.is_connected():
            if self._client is not None:
                self._client.loop_stop()
            self._client = mqtt_helpers.connect(self._url, self._client_id)
        return self._client

    def send_pending(
        self, pool: ConnectionPool[psycopg.Connection[dict[str, Any]]], limit: int = 200
    ) -> int:
        """Publish unsent dispatches in order; return how many were confirmed by the broker."""
        with self._lock, pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT id, topic, payload FROM dispatches WHERE sent_at IS NULL"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (limit,),
            ).fetchall()
            if not rows:
                return 0
            try:
                client = self._connected()
            except ConnectionError as exc:
                log.warning("dispatch not sent: broker unreachable", extra={"error": str(exc)})
                return 0
            sent_ids: list[int] = []
            for row in rows:
                info = client.publish(
                    row["topic"], json.dumps(row["payload"]).encode(), qos=1, retain=True
                )
                with contextlib.suppress(RuntimeError, ValueError):  # not connected / timed out
                    info.wait_for_publish(timeout=5)
                if info.is_published():
                    sent_ids.append(row["id"])
                else:
                    conn.execute(
                        "UPDATE dispatches SET attempts = attempts + 1 WHERE id = %s", (row["id"],)
                    )
                    break  # keep the order: the next ones wait for this one
            if sent_ids:
                conn.execute(
                    "UPDATE dispatches SET sent_at = now(), attempts = attempts + 1"
                    " WHERE id = ANY(%s)",
                    (sent_ids,),
                )
            self.sent += len(sent_ids)
            return len(sent_ids)

    def close(self) -> None:
        """Disconnect from the broker."""
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
