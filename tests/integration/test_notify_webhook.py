"""The notification outbox: the webhook notifier against a local HTTP server, and the MQTT
notifier (real broker) keeping to its own channel."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from cityops.cases.notify import MqttNotifier, WebhookNotifier
from cityops.cases.outbox import queue_notification
from cityops.platform import mqtt as mqtt_helpers
from cityops.platform.database import Database
from cityops.platform.topics import Topics

pytestmark = pytest.mark.integration


class Receiver:
    """A local webhook receiver: records each POST, answers the queued status codes (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))  # case-insensitive
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def database(db_url: str):
    p = Database.open(db_url, max_size=2)
    yield p
    p.close()


def ticket(database) -> int:
    with database.session() as conn:
        return conn.execute("INSERT INTO tickets (title, description, category, priority, status)"
                            " VALUES ('Flooding', 'x', 'E0401', 'urgent', 'reported')"
                            " RETURNING id").fetchone()["id"]


def queue(database, tid: int, channel: str, n: int, topic: str = "test/v1/centre/C1") -> list[int]:
    with database.session() as conn:
        return [queue_notification(conn, channel=channel, topic=topic,
                                   payload={"type": "escalation", "seq": i}, ticket_id=tid)
                for i in range(n)]


def rows(database) -> list[dict]:
    with database.session() as conn:
        return conn.execute("SELECT id, channel, sent_at, attempts FROM dispatches ORDER BY id")\
            .fetchall()


def test_posts_json_signed_with_the_secret_in_order(database, receiver: Receiver) -> None:
    tid = ticket(database)
    ids = queue(database, tid, "webhook", 3)
    notifier = WebhookNotifier(receiver.url, secret="s3cret", timeout=5)
    assert notifier.send_pending(database) == 3
    assert [b["id"] for b in receiver.bodies()] == ids
    first = receiver.bodies()[0]
    assert first["ticket_id"] == tid and first["topic"] == "test/v1/centre/C1"
    assert first["message"] == {"type": "escalation", "seq": 0} and first["worker_id"] is None
    for headers, body in receiver.requests:
        assert headers["Content-Type"] == "application/json"
        expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-CityOps-Signature"] == f"sha256={expected}"
    assert all(r["sent_at"] is not None and r["attempts"] == 1 for r in rows(database))
    assert notifier.send_pending(database) == 0  # nothing sent twice
    assert len(receiver.requests) == 3


def test_a_failed_post_is_retried_later_and_the_order_kept(database, receiver: Receiver) -> None:
    tid = ticket(database)
    first, second = queue(database, tid, "webhook", 2)
    receiver.answers = [500]
    notifier = WebhookNotifier(receiver.url)
    assert notifier.send_pending(database) == 0
    assert [b["id"] for b in receiver.bodies()] == [first]  # the second waits for the first
    state = {r["id"]: r for r in rows(database)}
    assert state[first]["sent_at"] is None and state[first]["attempts"] == 1
    assert state[second]["sent_at"] is None and state[second]["attempts"] == 0
    assert notifier.send_pending(database) == 2
    assert [b["id"] for b in receiver.bodies()] == [first, first, second]
    state = {r["id"]: r for r in rows(database)}
    assert state[first]["attempts"] == 2 and state[first]["sent_at"] is not None
    assert "X-CityOps-Signature" not in receiver.requests[0][0]  # no secret, no signature


def test_a_message_refused_for_good_is_set_aside_and_the_next_ones_go(
    database, receiver: Receiver
) -> None:
    tid = ticket(database)
    first, second, third = queue(database, tid, "webhook", 3)
    receiver.answers = [400, 429]  # the first refused for good; the second: "later"
    notifier = WebhookNotifier(receiver.url)
    assert notifier.send_pending(database) == 0
    assert [b["id"] for b in receiver.bodies()] == [first, second]  # the third waits
    assert notifier.send_pending(database) == 2
    assert [b["id"] for b in receiver.bodies()] == [first, second, second, third]
    with database.session() as conn:
        state = {r["id"]: r for r in conn.execute(
            "SELECT id, sent_at, refused_at, last_error, attempts FROM dispatches").fetchall()}
    assert state[first]["refused_at"] is not None and state[first]["last_error"] == "HTTP 400"
    assert state[first]["sent_at"] is None and state[first]["attempts"] == 1
    assert state[second]["sent_at"] is not None and state[second]["refused_at"] is None
    assert notifier.send_pending(database) == 0  # the refused one is not sent again
    assert len(receiver.requests) == 4


def test_an_unreachable_receiver_keeps_the_rows(database) -> None:
    tid = ticket(database)
    queue(database, tid, "webhook", 2)
    notifier = WebhookNotifier("http://127.0.0.1:9/hook", timeout=1)  # discard port: refused
    assert notifier.send_pending(database) == 0
    assert [(r["sent_at"], r["attempts"]) for r in rows(database)] == [(None, 1), (None, 0)]


def test_each_notifier_sends_only_its_channel(database, receiver: Receiver, mqtt_broker_url: str,
                                              topic_prefix: str) -> None:
    topics = Topics(topic_prefix)
    tid = ticket(database)
    centre = topics.centre("310101001000000")
    hooks = queue(database, tid, "webhook", 1, centre)
    mqtts = queue(database, tid, "mqtt", 2, centre)
    with database.session() as conn:  # a worker's task list: retained
        conn.execute("INSERT INTO grids (code, level, name, geometry, centroid_lon, centroid_lat)"
                     " VALUES ('310101000000000', 'district', 'D', '{}', 0, 0)")
        conn.execute("INSERT INTO workers (id, name, cell_code)"
                     " VALUES ('W1', 'W1', '310101000000000')")
        task_list = queue_notification(conn, channel="mqtt", topic=topics.dispatch("W1"),
                                       payload={"tasks": []}, ticket_id=tid, worker_id="W1")
    got: list[tuple[str, bool]] = []
    listener = mqtt_helpers.connect(mqtt_broker_url, f"t-{topic_prefix[13:23]}")
    listener.on_message = lambda _c, _u, m: got.append((m.topic, bool(m.retain)))
    listener.subscribe(centre, qos=1)
    time.sleep(0.3)
    notifier = MqttNotifier(mqtt_broker_url, client_id=f"n-{topic_prefix[13:23]}")
    try:
        assert notifier.send_pending(database) == 3
        assert WebhookNotifier(receiver.url).send_pending(database) == 1
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [(centre, False), (centre, False)]
        # a phone connecting later finds its task list (retained), a centre topic nothing
        late: list[mqtt.MQTTMessage] = []
        later = mqtt_helpers.connect(mqtt_broker_url, f"l-{topic_prefix[13:23]}")
        later.on_message = lambda _c, _u, m: late.append(m)
        later.subscribe([(topics.dispatch("W1"), 1), (centre, 1)])
        time.sleep(0.5)
        assert [m.topic for m in late] == [topics.dispatch("W1")]
        later.disconnect()
        later.loop_stop()
    finally:
        notifier.close()
        listener.disconnect()
        listener.loop_stop()
    assert [b["id"] for b in receiver.bodies()] == hooks
    assert {r["id"] for r in rows(database) if r["sent_at"] is not None} == {*hooks, *mqtts,
                                                                         task_list}
