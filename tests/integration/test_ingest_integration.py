"""Ingest end to end over the real broker into the real database (no mocks)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityops.platform import embedded
from cityops.platform.mqtt import parse_mqtt_url
from cityops.platform.topics import Topics
from cityops.sensing.readings import Reading
from ingest import IngestService
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

GRID = (
    "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon, centroid_lat)"
    " VALUES ('310101000000000', 'district', 'Test district', NULL, %s, 121.49, 31.225)"
)
GEOMETRY = json.dumps({
    "type": "Polygon",
    "coordinates": [[[121.47, 31.2], [121.51, 31.2], [121.51, 31.25], [121.47, 31.25],
                     [121.47, 31.2]]],
})
DEVICE = (
    "INSERT INTO devices (id, kind, grid_code, lon, lat, label)"
    " VALUES (%s, %s, '310101000000000', 121.49, 31.22, %s)"
)
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []




def reading(minute: int, **values: float) -> dict[str, Any]:
    return {"ts": (START + timedelta(minutes=minute)).isoformat(), "values": values}


def forget_session(url: str, client_id: str) -> None:
    """Remove a persistent session from the broker (a clean start with zero expiry)."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(address.host, address.port, clean_start=True, properties=properties)
    client.loop_start()
    wait_until(client.is_connected)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def devices(db_url: str) -> str:
    """The test database with one device of each kind."""
    sql(db_url, GRID, (GEOMETRY,))
    for device_id, kind in (("fg-1", "flood_gauge"), ("wm-1", "water_meter"),
                            ("mc-1", "manhole_cover")):
        sql(db_url, DEVICE, (device_id, kind, f"test {kind}"))
    return db_url


class Publisher:
    """A device-side client publishing at QoS 1 and waiting for the broker's PUBACK."""

    def __init__(self, url: str, topics: Topics) -> None:
        address = parse_mqtt_url(url)
        self.topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def send(self, kind: str, device_id: str, payload: Any, channel: str = "telemetry") -> bytes:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        topic = f"{self.topics.prefix}/{kind}/{device_id}/{channel}"
        self.client.publish(topic, raw, qos=1).wait_for_publish(5)
        return raw

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mqtt_broker_url: str, topic_prefix: str) -> Iterator[Publisher]:
    pub = Publisher(mqtt_broker_url, Topics(topic_prefix))
    yield pub
    pub.close()


@pytest.fixture
def make_service(
    devices: str, mqtt_broker_url: str, topic_prefix: str
) -> Iterator[Callable[..., IngestService]]:
    """Build and start IngestService instances (by default with a client id of this test's own);
    stop them and remove their broker sessions afterwards."""
    started: list[IngestService] = []
    client_ids: set[tuple[str, str]] = set()
    default_id = f"t-{uuid.uuid4().hex[:12]}"

    def make(**options: Any) -> IngestService:
        options = {"client_id": default_id, "batch_ms": 20, "mqtt_url": mqtt_broker_url} | options
        service = IngestService(devices, topics=Topics(topic_prefix), **options)
        service.start()
        started.append(service)
        client_ids.add((options["mqtt_url"], options["client_id"]))
        return service

    yield make
    for service in started:
        service.stop()
    for url, client_id in client_ids:
        if url == mqtt_broker_url:
            forget_session(url, client_id)


def stored(url: str) -> list[tuple[str, str, datetime, float]]:
    return [tuple(row) for row in sql(
        url, "SELECT device_id, metric, ts, value FROM readings ORDER BY device_id, metric, ts")]


def test_good_readings_stored_once_and_bad_payload_dead_lettered(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()
    for minute in range(20):
        publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=minute, battery_pct=90))
    bad = publisher.send("flood_gauge", "fg-1", b'{"ts": "2026-11-22T08:15:00+08:00", "values"')
    for minute in range(20, 40):
        publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=minute, battery_pct=80))
    wait_until(lambda: service.counters()["messages_received"] == 41
               and service.counters()["readings_stored"] + service.counters()["dead_letters"] == 81)

    rows = stored(devices)
    assert len(rows) == 80 == len(set(rows))
    depths = [row for row in rows if row[1] == "depth_mm"]
    assert [row[3] for row in depths] == [float(m) for m in range(40)]
    [(topic, payload, reason, device_id)] = sql(
        devices, "SELECT topic, payload, reason, device_id FROM dead_letters")
    assert topic == f"{publisher.topics.prefix}/flood_gauge/fg-1/telemetry"
    assert bytes(payload) == bad and device_id == "fg-1"
    assert reason == "malformed JSON: Expecting ':' delimiter at line 1 column 45 (character 44)"
    [(last_seen, battery)] = sql(devices, "SELECT last_seen, battery_pct FROM devices"
                                          " WHERE id = 'fg-1'")
    assert (last_seen, battery) == (START + timedelta(minutes=39), 80.0)
    counters = service.counters()
    assert counters["readings_stored"] == 80 and counters["dead_letters"] == 1
    assert counters["batches"] >= 1 and counters["duplicates_ignored"] == 0


def test_duplicate_delivery_stores_once_and_the_hook_sees_new_readings_only(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    seen: list[Reading] = []

    def hook(new: list[Reading]) -> None:
        seen.extend(new)
        raise RuntimeError("a failing detector must not stop ingest")

    service = make_service(on_committed=hook)
    batch = [reading(m, volume_l=1.5 * m) for m in range(10)]
    publisher.send("water_meter", "wm-1", batch)
    wait_until(lambda: service.counters()["readings_stored"] == 10)
    publisher.send("water_meter", "wm-1", batch)
    wait_until(lambda: service.counters()["duplicates_ignored"] == 10)
    publisher.send("water_meter", "wm-1", reading(10, volume_l=0))
    wait_until(lambda: service.counters()["readings_stored"] == 11)

    assert len(stored(devices)) == 11
    assert sorted(r.ts for r in seen) == [START + timedelta(minutes=m) for m in range(11)]


def test_array_with_one_bad_record_keeps_the_others(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()
    records = [reading(m, tilt_deg=3.0, lifted=0) for m in range(5)]
    records[2] = reading(2, tilt_deg=200.0, lifted=0)
    publisher.send("manhole_cover", "mc-1", records)
    wait_until(lambda: service.counters()["dead_letters"] == 1)

    assert [(r[2], r[1]) for r in stored(devices) if r[1] == "tilt_deg"] == [
        (START + timedelta(minutes=m), "tilt_deg") for m in (0, 1, 3, 4)]
    [(payload, reason)] = sql(devices, "SELECT payload, reason FROM dead_letters")
    assert json.loads(bytes(payload)) == records[2]
    assert reason == (
        "record 2 of 5 (0-based): tilt_deg = 200 is outside 0 to 180"
        " (cover tilt from horizontal, degrees)"
    )


def test_status_messages_update_the_device(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()

    def device() -> tuple[Any, ...]:
        return sql(devices, "SELECT online, status_at, battery_pct FROM devices"
                            " WHERE id = 'fg-1'")[0]

    publisher.send("flood_gauge", "fg-1", {"state": "online", "ts": START.isoformat(),
                                           "battery_pct": 77}, channel="status")
    wait_until(lambda: service.counters()["status_updates"] == 1)
    assert device() == (True, START, 77.0)

    older = (START - timedelta(minutes=1)).isoformat()  # late: changes nothing
    publisher.send("flood_gauge", "fg-1", {"state": "offline", "ts": older}, channel="status")
    publisher.send("flood_gauge", "fg-1", {"state": "asleep"}, channel="status")
    wait_until(lambda: service.counters()["dead_letters"] == 1
               and service.counters()["messages_received"] == 3)
    wait_until(lambda: service.counters()["batches"] >= 2)
    assert device() == (True, START, 77.0)

    publisher.send("flood_gauge", "fg-1", {"state": "offline"}, channel="status")
    wait_until(lambda: device()[0] is False)
    [(reason,)] = sql(devices, "SELECT reason FROM dead_letters")
    assert reason == '"state" must be "online" or "offline", got "asleep"'


def test_newly_registered_device_is_accepted_and_an_unknown_one_dead_lettered(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()
    sql(devices, DEVICE, ("fg-2", "flood_gauge", "registered after ingest started"))
    publisher.send("flood_gauge", "fg-2", reading(0, depth_mm=4))
    publisher.send("flood_gauge", "fg-404", reading(0, depth_mm=4))
    wait_until(lambda: service.counters()["messages_received"] == 2
               and service.counters()["readings_stored"] + service.counters()["dead_letters"] == 2)
    assert [r[0] for r in stored(devices)] == ["fg-2"]
    [(device_id, reason)] = sql(devices, "SELECT device_id, reason FROM dead_letters")
    assert device_id == "fg-404" and "is not registered" in reason


def test_readings_of_a_device_deleted_since_the_registry_loaded_become_dead_letters(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service(batch_ms=300)
    sql(devices, "DELETE FROM devices WHERE id = 'wm-1'")  # ingest still thinks it exists
    publisher.send("water_meter", "wm-1", reading(0, volume_l=1))
    publisher.send("flood_gauge", "fg-1", reading(0, depth_mm=1))
    wait_until(lambda: service.counters()["readings_stored"] + service.counters()["dead_letters"]
               == 2)
    assert [r[0] for r in stored(devices)] == ["fg-1"]
    [(device_id, reason)] = sql(devices, "SELECT device_id, reason FROM dead_letters")
    assert device_id == "wm-1" and "is not registered" in reason


def test_a_batch_the_database_refuses_is_stored_message_by_message(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    # a rule of the database's own that ingest does not know, as an operator might add one
    sql(devices, "ALTER TABLE readings ADD CONSTRAINT no_13 CHECK (value <> 13)")
    service = make_service(batch_ms=300)
    publisher.send("water_meter", "wm-1", reading(0, volume_l=13))
    publisher.send("flood_gauge", "fg-1", reading(0, depth_mm=1))
    wait_until(lambda: service.counters()["readings_stored"] + service.counters()["dead_letters"]
               == 2)
    assert [r[0] for r in stored(devices)] == ["fg-1"]
    [(device_id, code, reason)] = sql(devices, "SELECT device_id, code, reason FROM dead_letters")
    assert device_id == "wm-1" and code == "refused_by_database" and "no_13" in reason


def test_a_device_with_readings_cannot_be_deleted_or_renamed(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()
    publisher.send("flood_gauge", "fg-1", reading(0, depth_mm=1))
    wait_until(lambda: service.counters()["readings_stored"] == 1)
    for statement in ("DELETE FROM devices WHERE id = 'fg-1'",
                      "UPDATE devices SET id = 'fg-9' WHERE id = 'fg-1'"):
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="has readings"):
            sql(devices, statement)
    sql(devices, "DELETE FROM devices WHERE id = 'wm-1'")  # no readings: allowed


def test_lost_database_connection_is_retried_without_losing_messages(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()
    publisher.send("flood_gauge", "fg-1", reading(0, depth_mm=1))
    wait_until(lambda: service.counters()["readings_stored"] == 1)
    sql(devices, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE application_name = 'cityops-ingest' AND datname = current_database()")
    for minute in range(1, 6):
        publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=1))
    wait_until(lambda: service.counters()["readings_stored"] == 6)
    assert len(stored(devices)) == 6


def test_nothing_is_acknowledged_while_the_database_is_down(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str,
    pg_admin_url: str,
) -> None:
    first = make_service()
    publisher.send("flood_gauge", "fg-1", reading(0, depth_mm=1))
    wait_until(lambda: first.counters()["readings_stored"] == 1)
    name = devices.rsplit("/", 1)[1]
    sql(pg_admin_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
        (name,))
    sql(pg_admin_url, f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
    try:
        for minute in range(1, 6):
            publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=1))
        wait_until(lambda: first.counters()["messages_received"] == 6)
        first.stop(timeout=0.5)  # gives up: the five are neither stored nor acknowledged
    finally:
        sql(pg_admin_url, f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
    second = make_service()  # same client id: the broker delivers the five again
    wait_until(lambda: second.counters()["readings_stored"] == 5)
    assert len(stored(devices)) == 6


def test_stop_stores_and_acks_what_is_queued(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service(batch_ms=5000)  # the batch would wait 5 s: stop must not
    for minute in range(30):
        publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=2))
    wait_until(lambda: service.counters()["messages_received"] == 30)
    began = time.monotonic()
    service.stop()
    assert time.monotonic() - began < 2
    assert len(stored(devices)) == 30

    again = make_service()  # same client id: nothing was left unacknowledged
    time.sleep(0.5)
    assert again.counters()["messages_received"] == 0


def test_messages_published_while_ingest_is_down_arrive_after_restart(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    first = make_service()
    assert first.protocol == "5"
    first.stop()
    for minute in range(25):
        publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=3))
    second = make_service()
    wait_until(lambda: second.counters()["readings_stored"] == 25)
    assert len(stored(devices)) == 25


def test_shared_subscription_splits_between_two_instances(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    one = make_service(client_id=f"t-{uuid.uuid4().hex[:12]}", shared=True)
    two = make_service(client_id=f"t-{uuid.uuid4().hex[:12]}", shared=True)
    for minute in range(40):
        publisher.send("flood_gauge", "fg-1", reading(minute, depth_mm=5))
    wait_until(lambda: one.counters()["readings_stored"] + two.counters()["readings_stored"] == 40)
    assert one.counters()["readings_stored"] > 0 and two.counters()["readings_stored"] > 0
    assert len(stored(devices)) == 40


def test_ingest_over_mqtt311_on_amqtt(
    make_service: Callable[..., IngestService], devices: str, topic_prefix: str, tmp_path: Path
) -> None:
    broker = embedded.start_broker(tmp_path, prefer="amqtt")
    try:
        service = make_service(mqtt_url=broker.url)
        assert service.protocol == "3.1.1"
        publisher = Publisher(broker.url, Topics(topic_prefix))
        try:
            publisher.send("flood_gauge", "fg-1", [reading(m, depth_mm=m) for m in range(10)])
            publisher.send("flood_gauge", "fg-1", b"not json")
            wait_until(lambda: service.counters()["readings_stored"] == 10
                       and service.counters()["dead_letters"] == 1)
        finally:
            publisher.close()
        service.stop()
    finally:
        broker.stop()
    assert len(stored(devices)) == 10


def test_ingest_reconnects_after_a_broker_restart(
    make_service: Callable[..., IngestService], devices: str, topic_prefix: str, tmp_path: Path
) -> None:
    if embedded.mosquitto_binary() is None:
        pytest.fail("this test needs the mosquitto binary")
    broker = embedded.start_broker(tmp_path, prefer="mosquitto")
    try:
        service = make_service(mqtt_url=broker.url)
        broker.stop()
        broker = embedded.start_broker(tmp_path, port=broker.port, prefer="mosquitto")
        publisher = Publisher(broker.url, Topics(topic_prefix))
        records = [reading(m, depth_mm=m) for m in range(10)]
        try:
            # until ingest is back and subscribed, nobody takes the message: send it again
            # (storing is idempotent) until it arrives
            for _ in range(50):
                publisher.send("flood_gauge", "fg-1", records)
                if service.counters()["readings_stored"] == 10:
                    break
                time.sleep(0.2)
        finally:
            publisher.close()
        service.stop()
    finally:
        broker.stop()
    assert len(stored(devices)) == 10


def test_senml_and_fiware_payloads_are_stored_and_rejections_keep_their_code(
    make_service: Callable[..., IngestService], publisher: Publisher, devices: str
) -> None:
    service = make_service()
    bt = START.timestamp()
    publisher.send("flood_gauge", "fg-1", [
        {"bn": "urn:dev:id:fg-1:", "bt": bt, "bu": "m", "n": "depth", "v": 0.12},
        {"n": "depth", "t": 60, "v": 0.13},
        {"n": "depth", "t": 120, "u": "kg", "v": 1},
    ])
    publisher.send("flood_gauge", "fg-1", {"type": "FloodMonitoring",
                                           "dateObserved": (START + timedelta(minutes=3))
                                           .isoformat(), "currentLevel": 0.14})
    publisher.send("flood_gauge", "fg-404", reading(0, depth_mm=1))
    publisher.send("flood_gauge", "fg-1", b"{oops")
    wait_until(lambda: service.counters()["messages_received"] == 4
               and service.counters()["readings_stored"] + service.counters()["dead_letters"] == 6)

    assert [(r[2], r[3]) for r in stored(devices)] == [
        (START, 120.0), (START + timedelta(minutes=1), 130.0),
        (START + timedelta(minutes=3), 140.0)]
    letters = sql(devices, "SELECT code, device_id, reason FROM dead_letters ORDER BY code")
    assert [(code, device) for code, device, _ in letters] == [
        ("malformed_json", "fg-1"), ("unknown_device", "fg-404"), ("unknown_unit", "fg-1")]
    assert letters[2][2].startswith('SenML record 2 of 3 (0-based): depth: unit "kg"')
