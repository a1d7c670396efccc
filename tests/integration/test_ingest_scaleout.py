"""Scale-out: two `cityops ingest --shared` processes split one stream, no loss, no duplicate.

Real subprocesses against the test database and the test broker (Mosquitto: MQTT 5 shared
subscription ``$share/cityops-ingest/...``), each with its own ``CITYOPS_INGEST_CLIENT_ID``; what
each one stored is read from its own ``ingest stopped`` log line (JSON, INFO).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityops.platform.mqtt import parse_mqtt_url
from cityops.platform.topics import Topics
from cityops.simulation.district import DistrictSize, generate_district, load_district
from cityops.simulation.telemetry import encode_telemetry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITYOPS = str(Path(sys.executable).with_name("cityops"))
SMALL = DistrictSize(streets=2, grids=3, communities=6, households_per_community=4,
                     flood_gauges=3, manhole_covers=3, cameras=2)
START_TIMEOUT_S = 30.0


def load_small_district(url: str) -> list[str]:
    """Load the small test district into ``url``; the ids of its flood gauges."""
    district = generate_district(3, SMALL)
    with psycopg.connect(url) as conn:
        load_district(conn, district)
    return sorted(d["id"] for d in district.devices if d["kind"] == "flood_gauge")


class IngestProcess:
    """`cityops ingest` in a subprocess of its own; its JSON log lines go to ``log_path``."""

    def __init__(self, log_path: Path, *, database_url: str, mqtt_url: str, topic_prefix: str,
                 client_id: str, shared: bool = False) -> None:
        self.log_path = log_path
        self.client_id = client_id
        self._args = [CITYOPS, "ingest", *(["--shared"] if shared else [])]
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")} | {
            "CITYOPS_DATABASE_URL": database_url, "CITYOPS_MQTT_URL": mqtt_url,
            "CITYOPS_TOPIC_PREFIX": topic_prefix, "CITYOPS_INGEST_CLIENT_ID": client_id,
            "CITYOPS_INGEST_BATCH_MS": "50", "CITYOPS_LOG_LEVEL": "INFO",
            "CITYOPS_LOG_JSON": "true",
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process; return once it logged "ingest started" (subscribed)."""
        already = len(self.logs())
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(self._args, env=self._env, stdout=log, stderr=log,
                                             start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(e.get("msg") == "ingest started" for e in self.logs()[already:]):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"ingest did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> dict[str, Any]:
        """SIGTERM and wait; the counters of its "ingest stopped" log line."""
        process = self._process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        self._process = None
        [stopped] = [e for e in self.logs() if e.get("msg") == "ingest stopped"][-1:]
        return stopped

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def logs(self) -> list[dict[str, Any]]:
        """Its log lines so far (JSON objects; other lines are skipped)."""
        if not self.log_path.exists():
            return []
        entries = []
        for line in self.log_path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return entries


def forget_session(url: str, client_id: str) -> None:
    """End a persistent session on the broker (a clean start with zero expiry)."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(address.host, address.port, clean_start=True, properties=properties)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()


def stream(topics: Topics, gauges: list[str], messages: int, per_message: int,
           start: datetime) -> list[tuple[str, bytes]]:
    """Telemetry messages round-robin over ``gauges``, every reading with its own timestamp."""
    out = []
    for m in range(messages):
        gauge, sequence = gauges[m % len(gauges)], m // len(gauges)
        readings = [(start + timedelta(minutes=sequence * per_message + k),
                     {"depth_mm": float((sequence + k) % 8)}) for k in range(per_message)]
        out.append((topics.telemetry("flood_gauge", gauge), encode_telemetry(readings)))
    return out


def stored_readings(url: str) -> tuple[int, int]:
    """(rows, distinct natural keys) in ``readings``."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT (device_id, metric, ts))"
                           " FROM readings").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def gauges(db_url: str) -> list[str]:
    return load_small_district(db_url)


@pytest.fixture
def processes(tmp_path: Path, db_url: str, mqtt_broker_url: str,
              topic_prefix: str) -> Iterator[list[IngestProcess]]:
    """Two shared-subscription ingest processes (not started); killed and forgotten after."""
    tag = uuid.uuid4().hex[:8]
    made = [IngestProcess(tmp_path / f"ingest-{n}.log", database_url=db_url,
                          mqtt_url=mqtt_broker_url, topic_prefix=topic_prefix,
                          client_id=f"so-{tag}-{n}", shared=True) for n in (1, 2)]
    yield made
    for process in made:
        process.kill()
        forget_session(mqtt_broker_url, process.client_id)


def test_two_shared_processes_split_a_stream_without_loss_or_duplicate(
    processes: list[IngestProcess], gauges: list[str], db_url: str, mqtt_broker_url: str,
    topic_prefix: str,
) -> None:
    messages, per_message = 600, 5
    payloads = stream(Topics(topic_prefix), gauges, messages, per_message,
                      datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    for process in processes:
        process.start()
    address = parse_mqtt_url(mqtt_broker_url)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    publisher.max_inflight_messages_set(100)
    publisher.connect(address.host, address.port)
    publisher.loop_start()
    try:
        infos = [publisher.publish(topic, payload, qos=1) for topic, payload in payloads]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        publisher.disconnect()
        publisher.loop_stop()

    total = messages * per_message
    deadline = time.monotonic() + 30
    while stored_readings(db_url)[0] < total and time.monotonic() < deadline:
        time.sleep(0.1)
    counters = [process.stop() for process in processes]

    assert stored_readings(db_url) == (total, total)
    assert sum(c["messages_received"] for c in counters) == messages
    assert sum(c["readings_stored"] for c in counters) == total
    assert all(c["readings_stored"] > 0 and c["duplicates_ignored"] == 0 and c["dead_letters"] == 0
               for c in counters), counters
