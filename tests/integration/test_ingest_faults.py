"""Faults while messages flow: after each, every published reading is stored exactly once.

- kill -9 of the `cityops ingest` process mid-stream, then a restart with the same client id;
- a restart of a private Mosquitto (persistence on, fixed port) mid-stream;
- a stop and start of a private PostgreSQL mid-stream, and a crash of ingest while the database is
  down (what it held then must not have been acknowledged).

The device side is a paho client at QoS 1 with a persistent session that re-sends, after a
reconnect, whatever the broker had not confirmed (as a real device does). Ingest is a real
subprocess (see :class:`test_ingest_scaleout.IngestProcess`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityops.platform import db, embedded
from cityops.platform.mqtt import parse_mqtt_url
from cityops.platform.topics import Topics
from tests.helpers import wait_until
from tests.integration.test_ingest_scaleout import (
    IngestProcess,
    forget_session,
    load_small_district,
    stored_readings,
    stream,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES, PER_MESSAGE, RATE = 1200, 5, 400.0  # a 3 s stream of 6,000 readings
TOTAL = MESSAGES * PER_MESSAGE


class Device:
    """Publishes a stream at a steady rate from a thread: QoS 1, persistent session; paho re-sends
    what the broker did not confirm once it is connected again."""

    def __init__(self, url: str, client_id: str) -> None:
        address = parse_mqtt_url(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)  # keep everything while the broker is away
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self._confirmed: set[int] = set()  # PUBACKed mids (is_published() raises while offline)
        self._mids: list[int] = []
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self._confirmed.add(mid)
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self._thread: threading.Thread | None = None

    def send(self, payloads: list[tuple[str, bytes]]) -> None:
        """Start publishing ``payloads`` at RATE messages/s."""
        def run() -> None:
            began = time.monotonic()
            for i, (topic, payload) in enumerate(payloads):
                delay = began + i / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._mids.append(self.client.publish(topic, payload, qos=1).mid)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def wait_confirmed(self, timeout: float = 30.0) -> None:
        """Block until everything sent so far is confirmed by the broker (PUBACK)."""
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        while not self._confirmed.issuperset(self._mids):
            assert time.monotonic() < deadline, "the broker did not confirm every message"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()




@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A directory under /tmp its servers can reach (Mosquitto and PostgreSQL drop root)."""
    path = Path(tempfile.mkdtemp(prefix="cityops-fault-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    """Things to undo after the test, last first."""
    undo: list[Callable[[], None]] = []
    yield undo
    for action in reversed(undo):
        action()


def start_ingest(undo: list[Callable[[], None]], log: Path, database_url: str, mqtt_url: str,
                 topic_prefix: str, forget: bool = True) -> IngestProcess:
    process = IngestProcess(log, database_url=database_url, mqtt_url=mqtt_url,
                            topic_prefix=topic_prefix, client_id=f"kf-{uuid.uuid4().hex[:10]}")
    if forget:
        undo.append(lambda: forget_session(mqtt_url, process.client_id))
    undo.append(process.kill)
    process.start()
    return process


def start_device(undo: list[Callable[[], None]], mqtt_url: str, forget: bool = True) -> Device:
    client_id = f"dev-{uuid.uuid4().hex[:10]}"
    if forget:
        undo.append(lambda: forget_session(mqtt_url, client_id))
    device = Device(mqtt_url, client_id)
    undo.append(device.close)
    return device


def payloads(topic_prefix: str, gauges: list[str], days_ago: int = 2) -> list[tuple[str, bytes]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    return stream(Topics(topic_prefix), gauges, MESSAGES, PER_MESSAGE, start)


def test_kill_9_of_ingest_mid_stream_then_restart(
    tmp_path: Path, db_url: str, mqtt_broker_url: str, topic_prefix: str,
    cleanup: list[Callable[[], None]],
) -> None:
    gauges = load_small_district(db_url)
    ingest = start_ingest(cleanup, tmp_path / "ingest.log", db_url, mqtt_broker_url,
                          topic_prefix)
    device = start_device(cleanup, mqtt_broker_url)
    device.send(payloads(topic_prefix, gauges))
    wait_until(lambda: stored_readings(db_url)[0] >= TOTAL // 4, what="a quarter stored")
    ingest.kill()
    assert stored_readings(db_url)[0] < TOTAL  # it died mid-stream
    ingest.start()  # same client id: the broker delivers the rest and redelivers the unacked
    device.wait_confirmed()
    wait_until(lambda: stored_readings(db_url)[0] >= TOTAL, what="every reading")
    counters = ingest.stop()
    assert stored_readings(db_url) == (TOTAL, TOTAL)
    assert counters["dead_letters"] == 0


def test_broker_restart_mid_stream(
    tmp_path: Path, private_dir: Path, db_url: str, topic_prefix: str,
    cleanup: list[Callable[[], None]],
) -> None:
    if embedded.mosquitto_binary() is None:
        pytest.fail("this test needs the mosquitto binary")
    gauges = load_small_district(db_url)
    broker = embedded.start_broker(private_dir, port=embedded.free_port(), prefer="mosquitto")
    cleanup.append(lambda: broker.stop())
    ingest = start_ingest(cleanup, tmp_path / "ingest.log", db_url, broker.url, topic_prefix,
                          forget=False)
    device = start_device(cleanup, broker.url, forget=False)
    device.send(payloads(topic_prefix, gauges))
    wait_until(lambda: stored_readings(db_url)[0] >= TOTAL // 4, what="a quarter stored")
    broker.stop()  # Mosquitto saves its sessions and queues on the way out
    time.sleep(0.5)
    broker = embedded.start_broker(private_dir, port=broker.port, prefer="mosquitto")
    device.wait_confirmed()
    wait_until(lambda: stored_readings(db_url)[0] >= TOTAL, what="every reading")
    counters = ingest.stop()
    assert stored_readings(db_url) == (TOTAL, TOTAL)
    assert counters["dead_letters"] == 0
    assert any(e.get("msg") == "reconnected to the MQTT broker" for e in ingest.logs())


def test_database_restart_mid_stream_and_nothing_acked_before_commit(
    tmp_path: Path, private_dir: Path, mqtt_broker_url: str, topic_prefix: str,
    cleanup: list[Callable[[], None]],
) -> None:
    pg = embedded.start_postgres(private_dir)
    cleanup.append(lambda: pg.stop())
    url = pg.url
    db.upgrade(url)
    gauges = load_small_district(url)
    ingest = start_ingest(cleanup, tmp_path / "ingest.log", url, mqtt_broker_url, topic_prefix)
    device = start_device(cleanup, mqtt_broker_url)

    # 1. the database goes away and comes back while ingest runs: it retries, nothing is lost
    device.send(payloads(topic_prefix, gauges, days_ago=2))
    wait_until(lambda: stored_readings(url)[0] >= TOTAL // 4, what="a quarter stored")
    pg.stop()
    time.sleep(1.0)
    pg = embedded.start_postgres(private_dir)
    device.wait_confirmed()
    wait_until(lambda: stored_readings(url)[0] >= TOTAL, what="every reading")
    assert stored_readings(url) == (TOTAL, TOTAL)
    outages = len([e for e in ingest.logs() if e.get("msg", "").startswith("database unavail")])
    assert outages >= 1

    # 2. while the database is down ingest holds what it receives unacknowledged: killed then,
    # it loses nothing, because the broker delivers all of it again to the restarted process
    pg.stop()
    device.send(payloads(topic_prefix, gauges, days_ago=4))
    device.wait_confirmed()
    wait_until(lambda: len([e for e in ingest.logs()
                          if e.get("msg", "").startswith("database unavail")]) > outages,
             what="ingest to hold a batch")
    time.sleep(0.5)  # the rest of the stream reaches ingest's queue
    ingest.kill()
    pg = embedded.start_postgres(private_dir)
    ingest.start()
    wait_until(lambda: stored_readings(url)[0] >= 2 * TOTAL, what="every reading")
    counters = ingest.stop()
    assert stored_readings(url) == (2 * TOTAL, 2 * TOTAL)
    assert counters["dead_letters"] == 0
