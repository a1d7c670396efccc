"""Send the notification outbox (the ``dispatches`` table): MQTT, and a webhook for SMS gateways.

Rows are written in the same transaction as what they tell (a dispatch, a reminder, an
escalation; :mod:`cityops.cases.outbox`), and sent after the commit by a :class:`Notifier`, one per
channel:

- :class:`MqttNotifier` (channel ``mqtt``): published at QoS 1 on the row's topic. A worker's row
  (``worker_id`` set) holds their whole open-task list and is retained on
  ``<prefix>/dispatch/<worker_id>``, so a phone that connects later gets the current list at
  once; a centre's row (``<prefix>/centre/<cell_code>``) is an event and is not retained.
  A row is marked sent only after the broker acknowledged it (PUBACK).
- :class:`WebhookNotifier` (channel ``webhook``): POSTed as JSON to one URL, marked sent on a 2xx
  answer.

Both keep the order: a row that fails stays queued (its ``attempts`` counted) and the rows after
it wait for the next run. One sender per channel runs at a time across all processes (a
transaction-level advisory lock), so two processes never interleave a channel's rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import psycopg

from cityops.platform import mqtt as mqtt_helpers
from cityops.platform.database import Database

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-CityOps-Signature"


class Notifier(Protocol):
    """Sends the unsent outbox rows of one channel, in order."""

    def send_pending(self, db: Database, limit: int = 200) -> int:
        """Send up to ``limit`` unsent rows; return how many were delivered."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _sender_lock(conn: psycopg.Connection[Any], channel: str) -> bool:
    """One sender of a channel at a time cluster-wide (held until the transaction ends)."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtext(%s)) AS got", (f"cityops-outbox-{channel}",)
    ).fetchone()
    return bool(row and row["got"])


def _unsent(conn: psycopg.Connection[Any], channel: str, limit: int) -> list[dict[str, Any]]:
    return list(conn.execute(
        "SELECT id, ticket_id, worker_id, topic, payload, attempts, created_at FROM dispatches"
        " WHERE sent_at IS NULL AND refused_at IS NULL AND channel = %s"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (channel, limit),
    ).fetchall())


def _mark(conn: psycopg.Connection[Any], sent_ids: list[int], failed_id: int | None) -> None:
    if sent_ids:
        conn.execute(
            "UPDATE dispatches SET sent_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)",
            (sent_ids,),
        )
    if failed_id is not None:
        conn.execute("UPDATE dispatches SET attempts = attempts + 1 WHERE id = %s", (failed_id,))


class MqttNotifier:
    """Publishes the ``mqtt`` rows; safe to call from several threads (one publishes at a time)."""

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

    def send_pending(self, db: Database, limit: int = 200) -> int:
        """Publish unsent rows in order; return how many were confirmed by the broker."""
        with self._lock, db.transaction() as conn:
            if not _sender_lock(conn, "mqtt"):
                return 0  # another process is sending; it takes these rows too
            rows = _unsent(conn, "mqtt", limit)
            if not rows:
                return 0
            try:
                client = self._connected()
            except ConnectionError as exc:
                log.warning("dispatch not sent: broker unreachable", extra={"error": str(exc)})
                return 0
            sent_ids: list[int] = []
            failed: int | None = None
            for row in rows:
                # a worker's task list is retained (the phone's current state); centre
                # messages are events
                retain = row["worker_id"] is not None
                info = client.publish(
                    row["topic"], json.dumps(row["payload"]).encode(), qos=1, retain=retain
                )
                with contextlib.suppress(RuntimeError, ValueError):  # not connected / timed out
                    info.wait_for_publish(timeout=5)
                if info.is_published():
                    sent_ids.append(row["id"])
                else:
                    failed = row["id"]
                    break  # keep the order: the next ones wait for this one
            _mark(conn, sent_ids, failed)
            self.sent += len(sent_ids)
            return len(sent_ids)

    def close(self) -> None:
        """Disconnect from the broker."""
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None


def webhook_body(row: dict[str, Any]) -> bytes:
    """The JSON body POSTed for an outbox row (docs/cases.md, "Webhook")."""
    body = {
        "id": row["id"],
        "ticket_id": row["ticket_id"],
        "worker_id": row["worker_id"],
        "topic": row["topic"],
        "queued_at": row["created_at"].isoformat(),
        "message": row["payload"],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# Client errors that say "later", not "never": timeout, too early, too many requests.
RETRYABLE_4XX = (408, 425, 429)


class WebhookNotifier:
    """POSTs the ``webhook`` rows as JSON to ``url`` (an SMS gateway, a chat bot ...).

    The standard library's urllib is enough for one POST at a time and keeps ``requests`` (present
    here only as a dependency of Dash, not one of ours) out of our dependencies.
    """

    def __init__(self, url: str, secret: str | None = None, timeout: float = 5.0) -> None:
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._lock = threading.Lock()
        self.sent = 0

    def _post(self, body: bytes) -> tuple[bool | None, str]:
        """POST one body: True delivered, False to retry later, None refused for good (a 4xx
        other than 408, 425 and 429: sending it again would get the same answer)."""
        headers = {"Content-Type": "application/json", "User-Agent": "cityops-notify"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return 200 <= response.status < 300, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:  # 4xx/5xx (and 3xx urllib does not follow)
            refused = 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX
            return (None if refused else False), f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:  # refused, timed out, DNS ...
            return False, str(getattr(exc, "reason", exc))

    def send_pending(self, db: Database, limit: int = 200) -> int:
        """POST unsent rows in order; return how many the receiver accepted (2xx)."""
        with self._lock, db.transaction() as conn:
            if not _sender_lock(conn, "webhook"):
                return 0
            sent_ids: list[int] = []
            failed: int | None = None
            for row in _unsent(conn, "webhook", limit):
                ok, outcome = self._post(webhook_body(row))
                if ok:
                    sent_ids.append(row["id"])
                    continue
                if ok is None:
                    conn.execute(
                        "UPDATE dispatches SET refused_at = now(), last_error = %s,"
                        " attempts = attempts + 1 WHERE id = %s",
                        (outcome, row["id"]),
                    )
                    log.error("webhook receiver refused a message; set aside, not sent again",
                              extra={"dispatch_id": row["id"], "error": outcome})
                    continue
                failed = row["id"]
                log.warning("webhook not delivered; retried on the next run",
                            extra={"dispatch_id": row["id"], "attempts": row["attempts"] + 1,
                                   "error": outcome})
                break  # keep the order
            _mark(conn, sent_ids, failed)
            self.sent += len(sent_ids)
            return len(sent_ids)

    def close(self) -> None:
        """Nothing to release (a connection per request)."""
