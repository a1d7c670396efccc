"""Acknowledgements over MQTT (cityops.cases.acks) with the real broker and PostgreSQL."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator

import pytest

from cityops.cases.acks import AckListener
from cityops.cases.tickets import Actor, NewCase, create_case
from cityops.platform import db
from cityops.platform import mqtt as mqtt_helpers
from cityops.platform.database import Database
from cityops.platform.topics import Topics

pytestmark = pytest.mark.integration

DISTRICT = "310101000000000"


@pytest.fixture
def setup(db_url: str, mqtt_broker_url: str, topic_prefix: str) -> Iterator[dict]:
    topics = Topics(topic_prefix)
    with db.connect(db_url) as conn:
        conn.execute("INSERT INTO grids (code, level, name, geometry, centroid_lon, centroid_lat)"
                     " VALUES (%s, 'district', 'D', '{}', 0, 0)", (DISTRICT,))
        for wid, user in [("W1", "gw1"), ("W2", "gw2")]:
            conn.execute("INSERT INTO users (username, display_name, role, password_hash)"
                         " VALUES (%s, %s, 'grid_worker', 'x')", (user, user))
            conn.execute("INSERT INTO workers (id, name, cell_code, username)"
                         " VALUES (%s, %s, %s, %s)", (wid, wid, DISTRICT, user))
        cases = {}
        for name, worker in [("mine", "W1"), ("theirs", "W2")]:
            tid = create_case(conn, NewCase(source="patrol", category="E0401", title=name,
                                            description="x", grid_code=DISTRICT), Actor.system())
            conn.execute("UPDATE tickets SET status = 'dispatched', worker_id = %s WHERE id = %s",
                         (worker, tid))
            cases[name] = tid
    database = Database.open(db_url, max_size=2)
    tag = uuid.uuid4().hex[:8]
    sent: list[int] = []
    listener = AckListener(database, mqtt_broker_url, topics, client_id=f"acks-{tag}",
                           after_commit=lambda: sent.append(1))
    results: queue.Queue = queue.Queue()
    phone = mqtt_helpers.connect(mqtt_broker_url, f"phone-{tag}")
    phone.on_message = lambda _c, _u, m: results.put((m.topic, json.loads(m.payload), m.retain))
    phone.subscribe(f"{topic_prefix}/dispatch/+/ack/result", qos=1)
    listener.start()
    assert listener.subscribed.wait(5)
    yield {"url": db_url, "topics": topics, "phone": phone, "results": results,
           "cases": cases, "sent": sent}
    listener.stop()
    phone.disconnect()
    phone.loop_stop()
    database.close()
    # the listener's session is persistent: end it so the broker keeps nothing for it
    ended = mqtt_helpers.connect(mqtt_broker_url, f"acks-{tag}")
    ended.disconnect()
    ended.loop_stop()


def ack(s: dict, worker: str, payload: object) -> tuple[str, dict, bool]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    s["phone"].publish(s["topics"].dispatch_ack(worker), raw, qos=1).wait_for_publish(5)
    return s["results"].get(timeout=10)


def status(s: dict, tid: int) -> str:
    with db.connect(s["url"]) as conn:
        return conn.execute("SELECT status FROM tickets WHERE id = %s", (tid,)).fetchone()["status"]


def test_an_ack_signs_the_case_for_as_that_worker(setup) -> None:
    s = setup
    tid = s["cases"]["mine"]
    topic, answer, retained = ack(s, "W1", {"ticket_id": tid, "action": "sign_for"})
    assert topic == s["topics"].dispatch_ack_result("W1") and not retained
    assert answer == {"ticket_id": tid, "action": "sign_for", "ok": True, "status": "signed_for",
                      "reason": None}
    assert status(s, tid) == "signed_for"
    with db.connect(s["url"]) as conn:
        event = conn.execute("SELECT actor, role, from_status, to_status FROM ticket_events"
                             " WHERE ticket_id = %s ORDER BY id DESC LIMIT 1", (tid,)).fetchone()
        assert event == {"actor": "gw1", "role": "grid_worker", "from_status": "dispatched",
                         "to_status": "signed_for"}
        outbox = conn.execute("SELECT topic, payload FROM dispatches").fetchone()
        assert outbox["topic"] == s["topics"].dispatch("W1")
        assert outbox["payload"]["event"] == {"type": "signed_for", "ticket_id": tid}
    assert s["sent"]  # the refreshed task list is pushed at once
    # sent twice: applied once, answered ok
    _, again, _ = ack(s, "W1", {"ticket_id": tid, "action": "sign_for"})
    assert again["ok"] and again["reason"] == "already signed_for"
    _, started, _ = ack(s, "W1", {"ticket_id": tid, "action": "in_progress"})
    assert started["ok"] and status(s, tid) == "in_progress"


def test_a_foreign_or_refused_ack_changes_nothing_and_is_answered(setup) -> None:
    s = setup
    theirs, mine = s["cases"]["theirs"], s["cases"]["mine"]
    topic, answer, _ = ack(s, "W1", {"ticket_id": theirs, "action": "sign_for"})
    assert topic == s["topics"].dispatch_ack_result("W1")
    assert answer["ok"] is False and answer["ticket_id"] == theirs
    assert answer["reason"] == f"ticket {theirs} is not assigned to you"
    assert status(s, theirs) == "dispatched"
    # a move the state machine refuses: start before signing for
    _, refused, _ = ack(s, "W1", {"ticket_id": mine, "action": "in_progress"})
    assert refused["ok"] is False and refused["status"] == "dispatched"
    assert "cannot become in_progress" in refused["reason"]
    assert status(s, mine) == "dispatched"
    _, bad, _ = ack(s, "W1", b"sign it")
    assert bad == {"ticket_id": None, "action": None, "ok": False, "status": None,
                   "reason": "the acknowledgement is not JSON"}
    _, unknown, _ = ack(s, "W9", {"ticket_id": mine, "action": "sign_for"})
    assert unknown["reason"] == "worker W9 is not known" and status(s, mine) == "dispatched"
    with db.connect(s["url"]) as conn:
        assert conn.execute("SELECT count(*) AS n FROM dispatches").fetchone()["n"] == 0


