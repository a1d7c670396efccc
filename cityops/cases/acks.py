"""Acknowledgements from the grid workers' phones over MQTT.

A phone publishes on ``<prefix>/dispatch/<worker_id>/ack`` (QoS 1)::

    {"ticket_id": 12, "action": "sign_for"}      # or "in_progress"

The listener applies the move as that worker (:func:`cityops.cases.tickets.transition` with the
worker's user name, role ``grid_worker`` and the worker id of the topic, so a worker can only move
their own cases; the broker's ACL lets a phone publish only on its own ``/ack``), refreshes the
worker's task list through the outbox, and answers on ``<prefix>/dispatch/<worker_id>/ack/result``
(QoS 1, not retained)::

    {"ticket_id": 12, "action": "sign_for", "ok": true, "status": "signed_for", "reason": null}
    {"ticket_id": 99, "action": "sign_for", "ok": false, "status": null,
     "reason": "ticket 99 is not assigned to you"}

A repeated acknowledgement (the phone sent it twice, or the broker redelivered it) of a move
already made answers ok. Messages are handled on the client's network thread and acknowledged to
the broker (manual PUBACK) only after the database commit, with a persistent session, so an
acknowledgement sent while the listener is down is handled when it is back, and one whose
handling failed (the database was down) comes again after a reconnect.

Every process that runs the scheduler runs a listener (an acknowledgement handled by two of them
is applied once and answered ok twice); ``shared=True`` splits them between processes instead
(MQTT 5 shared subscription; Mosquitto, not amqtt).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

from cityops.cases import assignment
from cityops.cases.tickets import Actor, TransitionError
from cityops.platform import mqtt as mqtt_helpers
from cityops.platform.database import Database
from cityops.platform.topics import Topics

log = logging.getLogger(__name__)

ACTIONS = {"sign_for": "signed_for", "in_progress": "in_progress"}
SHARED_GROUP = "cityops-acks"


@dataclass(frozen=True)
class AckResult:
    """The answer to one acknowledgement."""

    ticket_id: int | None
    action: str | None
    ok: bool
    status: str | None
    reason: str | None

    def payload(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "action": self.action, "ok": self.ok,
                "status": self.status, "reason": self.reason}


def parse_ack(raw: bytes) -> tuple[int, str]:
    """(ticket id, action) of a payload; ValueError with a reason the phone can show."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the acknowledgement is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError('the acknowledgement must be a JSON object {"ticket_id", "action"}')
    ticket_id, action = data.get("ticket_id"), data.get("action")
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
        raise ValueError("ticket_id must be a whole number")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return ticket_id, action


def apply_ack(
    conn: psycopg.Connection[Any], worker_id: str, raw: bytes, topics: Topics
) -> AckResult:
    """Apply one acknowledgement of ``worker_id`` in the caller's transaction; never raises for
    a refused move (the result says why)."""
    ticket_id: int | None = None
    action: str | None = None
    try:
        ticket_id, action = parse_ack(raw)
    except ValueError as exc:
        try:  # keep what can be read, so the phone can match the answer
            data = json.loads(raw)
            if isinstance(data, dict):
                tid = data.get("ticket_id")
                ticket_id = tid if isinstance(tid, int) and not isinstance(tid, bool) else None
                act = data.get("action")
                action = act if isinstance(act, str) else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
        return AckResult(ticket_id, action, False, None, str(exc))
    worker = conn.execute(
        "SELECT w.id, w.username, w.active FROM workers w WHERE w.id = %s", (worker_id,)
    ).fetchone()
    if worker is None or not worker["active"]:
        return AckResult(ticket_id, action, False, None, f"worker {worker_id} is not known")
    to_status = ACTIONS[action]
    ticket = conn.execute(
        "SELECT status, worker_id FROM tickets WHERE id = %s FOR UPDATE", (ticket_id,)
    ).fetchone()
    if ticket is None:
        return AckResult(ticket_id, action, False, None, f"ticket {ticket_id} does not exist")
    if ticket["worker_id"] != worker_id:
        return AckResult(ticket_id, action, False, None,
                         f"ticket {ticket_id} is not assigned to you")
    if ticket["status"] == to_status:  # sent twice, or redelivered
        return AckResult(ticket_id, action, True, to_status, f"already {to_status}")
    actor = Actor(worker["username"] or worker_id, "grid_worker", worker_id)
    try:
        with conn.transaction():  # a refused move leaves nothing behind
            assignment.change_ticket(conn, ticket_id, to_status, actor, topics, "over MQTT")
    except TransitionError as exc:
        return AckResult(ticket_id, action, False, ticket["status"], str(exc))
    return AckResult(ticket_id, action, True, to_status, None)


class AckListener:
    """Subscribes to every worker's ``/ack`` and applies them (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        mqtt_url: str,
        topics: Topics,
        *,
        client_id: str = "cityops-acks",
        shared: bool = False,
        after_commit: Callable[[], object] | None = None,
    ) -> None:
        self._db = db
        self._url = mqtt_url
        self._topics = topics
        self._client_id = client_id
        self._filter = topics.dispatch_acks()
        if shared:
            self._filter = f"$share/{SHARED_GROUP}/{self._filter}"
        self._after_commit = after_commit
        self._client: mqtt.Client | None = None
        self._head = f"{topics.prefix}/dispatch/"
        self.handled = 0
        self.subscribed = threading.Event()

    def start(self) -> None:
        """Connect (persistent session), subscribe at QoS 1 and handle messages until stopped."""

        def setup(client: mqtt.Client) -> None:  # before CONNACK: a kept session delivers at once
            client.manual_ack_set(True)
            client.on_message = self._on_message
            client.on_subscribe = self._on_subscribe

        client = mqtt_helpers.connect(self._url, self._client_id, persistent=True, setup=setup)
        client.on_connect = self._on_connect
        self._client = client
        client.subscribe(self._filter, qos=1)

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if not getattr(reason, "is_failure", False):
            client.subscribe(self._filter, qos=1)  # after a reconnect (harmless if kept)

    def _on_subscribe(self, *_args: Any) -> None:
        self.subscribed.set()

    def worker_of(self, topic: str) -> str | None:
        """The worker id of an ``.../dispatch/<worker_id>/ack`` topic."""
        if not (topic.startswith(self._head) and topic.endswith("/ack")):
            return None
        worker = topic[len(self._head):-len("/ack")]
        return worker if worker and "/" not in worker else None

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        worker_id = self.worker_of(message.topic)
        if worker_id is None:
            log.warning("acknowledgement on an unexpected topic", extra={"topic": message.topic})
            client.ack(message.mid, message.qos)
            return
        try:
            result = self.handle(worker_id, message.payload)
        except Exception:  # the database is down: not acknowledged, redelivered on reconnect
            log.exception("acknowledgement not handled", extra={"worker_id": worker_id})
            return
        client.publish(self._topics.dispatch_ack_result(worker_id),
                       json.dumps(result.payload()).encode(), qos=1, retain=False)
        client.ack(message.mid, message.qos)  # after the commit

    def handle(self, worker_id: str, raw: bytes) -> AckResult:
        """Apply one acknowledgement and commit; log a refusal with its reason."""
        with self._db.transaction() as conn:
            result = apply_ack(conn, worker_id, raw, self._topics)
        self.handled += 1
        if result.ok:
            log.info("acknowledgement applied", extra={"worker_id": worker_id, **result.payload()})
            if self._after_commit is not None:
                try:
                    self._after_commit()  # push the refreshed task list now
                except Exception:
                    log.exception("sending the outbox after an acknowledgement failed")
        else:
            log.warning("acknowledgement refused", extra={"worker_id": worker_id,
                                                          **result.payload()})
        return result

    def stop(self) -> None:
        """Disconnect (the session stays with the broker: later acks wait there)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
