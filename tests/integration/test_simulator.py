"""The district simulator: pure generation (rhythm, incidents, determinism, clock) and a run
against the real broker and database."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityops.platform.topics import Topics
from cityops.sensing.readings import METRICS
from cityops.simulation.clock import SimClock
from cityops.simulation.incidents import (
    plan_incident,
)
from cityops.simulation.simulator import Simulator
from cityops.simulation.telemetry import (
    SimDevice,
)
from tests.helpers import wait_until

TZ = ZoneInfo("Asia/Shanghai")
QUARTER = timedelta(minutes=15)
ELDER = SimDevice("wm-elder", "water_meter", "hh-elder", elderly_alone=True, members=1)
FAMILY = SimDevice("wm-family", "water_meter", "hh-family", elderly_alone=False, members=3)
GAUGE = SimDevice("fg-1", "flood_gauge")
COVER = SimDevice("mc-1", "manhole_cover")




# --- pure generation -------------------------------------------------------------------------
































# --- against the real broker and database ----------------------------------------------------

GRID = "310101000000000"
POLYGON = (
    '{"type":"Polygon","coordinates":[[[121.47,31.2],[121.51,31.2],[121.51,31.25],'
    "[121.47,31.25],[121.47,31.2]]]}"
)


def _insert_district(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
            " centroid_lat) VALUES (%s, 'district', 'Test district', NULL, %s, 121.49, 31.225)",
            (GRID, POLYGON),
        )
        conn.execute(
            "INSERT INTO households (id, community_code, head_name, address, members,"
            " elderly_alone, lon, lat) VALUES"
            " ('hh-elder', %s, 'Wang', '1 Test Rd', 1, true, 121.48, 31.21),"
            " ('hh-family', %s, 'Li', '2 Test Rd', 3, false, 121.49, 31.22)",
            (GRID, GRID),
        )
        for device in (ELDER, FAMILY, GAUGE, COVER):
            conn.execute(
                "INSERT INTO devices (id, kind, household_id, grid_code, lon, lat, label)"
                " VALUES (%s, %s, %s, %s, 121.49, 31.22, %s)",
                (device.id, device.kind, device.household_id, GRID, f"test {device.kind}"),
            )


class _Recorder:
    """A paho subscriber collecting (topic, payload, retain, received_at) under a prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        self.messages: list[tuple[str, Any, bool, datetime]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received = datetime.now(UTC)
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload), msg.retain, received))

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        wait_until(lambda: predicate(self.snapshot()), timeout, "the messages")

    def snapshot(self) -> list[tuple[str, Any, bool, datetime]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _clear_statuses(url: str, topics: Topics) -> None:
    """Remove the retained statuses the test left on the broker."""
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    client.loop_start()
    infos = [
        client.publish(topics.status(d.kind, d.id), b"", qos=1, retain=True)
        for d in (ELDER, FAMILY, GAUGE, COVER)
    ]
    for info in infos:
        info.wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _telemetry(
    messages: list[tuple[str, Any, bool, datetime]], topics: Topics
) -> dict[str, list[tuple[datetime, dict[str, float], datetime]]]:
    """Readings per device from the telemetry messages, checking each payload's format."""
    readings: dict[str, list[tuple[datetime, dict[str, float], datetime]]] = defaultdict(list)
    for topic, payload, _, received in messages:
        parsed = topics.parse_device_topic(topic)
        if parsed.channel != "telemetry":
            continue
        items = payload if isinstance(payload, list) else [payload]
        assert items and all(set(item) == {"ts", "values"} for item in items)
        for item in items:
            ts = datetime.fromisoformat(item["ts"])
            assert ts.tzinfo is not None
            for metric, value in item["values"].items():
                low, high, _ = METRICS[parsed.kind][metric]
                assert isinstance(value, int | float) and low <= value <= high
            readings[parsed.device_id].append((ts, item["values"], received))
    return readings


def _statuses(messages: list[tuple[str, Any, bool, datetime]], state: str) -> set[str]:
    return {
        t.split("/")[-2] for t, p, _, _ in messages if t.endswith("/status") and p["state"] == state
    }


@pytest.mark.integration
def test_simulator_publishes_a_district_and_records_incidents(
    db_url: str, mqtt_broker_url: str, topic_prefix: str
) -> None:
    _insert_district(db_url)
    topics = Topics(topic_prefix)
    start = datetime(2025, 3, 10, 19, 0, tzinfo=TZ)
    clock = SimClock(start, speed=100_000)
    plans = [
        plan_incident(
            "running_tap",
            FAMILY.id,
            start + timedelta(minutes=15),
            seed=5,
            tz=TZ,
            duration=timedelta(hours=1),
        ),
        plan_incident("street_flood", GAUGE.id, start + timedelta(minutes=30), seed=5, tz=TZ),
        plan_incident(
            "lifted_cover",
            COVER.id,
            start + timedelta(hours=1),
            seed=5,
            tz=TZ,
            duration=timedelta(minutes=30),
        ),
        plan_incident("silent_morning", ELDER.id, start, seed=5, tz=TZ),  # from 21:40
    ]
    recorder = _Recorder(mqtt_broker_url, topic_prefix)
    try:
        with Simulator(
            db_url,
            mqtt_broker_url,
            topics,
            seed=5,
            clock=clock,
            incidents=plans,
            tz=TZ,
            tick_seconds=0.02,
            max_unacked=5,  # publishing has to wait for acks now and then
        ) as sim:
            assert {d.id for d in sim.devices} == {ELDER.id, FAMILY.id, GAUGE.id, COVER.id}
            sim.run_until(start + timedelta(hours=2))
            injected = sim.inject("lifted_cover", COVER.id)
            sim.run_until(start + timedelta(hours=4))
            assert sim.sim_time == start + timedelta(hours=4)
        counters = sim.counters()
        recorder.wait_for(lambda m: len(_statuses(m, "offline")) == 4)
        messages = recorder.snapshot()
    finally:
        recorder.close()
    late = _Recorder(mqtt_broker_url, topic_prefix)  # subscribes after the stop: retained only
    try:
        late.wait_for(lambda m: len(m) == 4)
        retained = late.snapshot()
    finally:
        late.close()
        _clear_statuses(mqtt_broker_url, topics)

    everyone = {ELDER.id, FAMILY.id, GAUGE.id, COVER.id}
    assert _statuses(messages, "online") == _statuses(messages, "offline") == everyone
    assert _statuses(retained, "offline") == everyone and all(r for _, _, r, _ in retained)
    readings = _telemetry(messages, topics)
    end = start + timedelta(hours=4)
    for device_id, series in readings.items():
        stamps = [ts for ts, _, _ in series]
        assert len(stamps) == len(set(stamps)), f"duplicate readings from {device_id}"
        assert all(start < ts <= end for ts in stamps)
    assert len(readings[GAUGE.id]) == 240
    assert len(readings[ELDER.id]) == len(readings[FAMILY.id]) == 16
    assert len(readings[COVER.id]) == 16 + 2  # the injected lift reports at its start and end
    received = sum(len(series) for series in readings.values())
    assert counters["readings"] == received
    gauge_messages = sum(1 for t, *_ in messages if t == topics.telemetry("flood_gauge", GAUGE.id))
    assert gauge_messages < 240  # a device's readings of one step travel in one message
    assert counters["messages"] == sum(1 for t, *_ in messages if t.endswith("/telemetry"))
    assert counters["incidents"] == 5

    silent = plans[3]
    assert silent.starts_at.astimezone(TZ).time().isoformat() == "21:40:00"
    elder = readings[ELDER.id]
    in_window = [v["volume_l"] for ts, v, _ in elder if ts - QUARTER >= silent.starts_at]
    assert in_window and all(v == 0 for v in in_window)
    tap = [v["volume_l"] for ts, v, _ in readings[FAMILY.id] if plans[0].active_at(ts - QUARTER)]
    assert len(tap) == 4 and all(v >= 6 for v in tap)
    assert max(v["depth_mm"] for _, v, _ in readings[GAUGE.id]) >= 190
    lifted = {ts for ts, v, _ in readings[COVER.id] if v["lifted"] == 1}
    assert injected.starts_at in lifted and plans[2].starts_at in lifted

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT kind, device_id, starts_at, ends_at, details FROM sim_incidents ORDER BY id"
        ).fetchall()
    recorded = {(k, d, s, e) for k, d, s, e, _ in rows}
    expected = {(p.kind, p.device_id, p.starts_at, p.ends_at) for p in [*plans, injected]}
    assert recorded == expected
    assert all(
        details == dict(p.details)
        for p in plans
        for k, d, s, _, details in rows
        if (k, d, s) == (p.kind, p.device_id, p.starts_at)
    )


@pytest.mark.integration
def test_catch_up_never_publishes_readings_from_the_future(
    db_url: str, mqtt_broker_url: str, topic_prefix: str
) -> None:
    _insert_district(db_url)
    topics = Topics(topic_prefix)
    clock = SimClock.catch_up(timedelta(minutes=20), speed=1200)  # live after about one second
    recorder = _Recorder(mqtt_broker_url, topic_prefix)
    try:
        sim = Simulator(db_url, mqtt_broker_url, topics, seed=2, clock=clock, tick_seconds=0.05)
        sim.start()
        flood = sim.inject("street_flood", GAUGE.id)
        deadline = time.monotonic() + 10
        while not clock.caught_up():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        sim.stop()
        recorder.wait_for(lambda m: len(_statuses(m, "offline")) == 4)
        messages = recorder.snapshot()
    finally:
        recorder.close()
        _clear_statuses(mqtt_broker_url, topics)

    readings = _telemetry(messages, topics)
    assert all(ts <= received for series in readings.values() for ts, _, received in series)
    latest = max(ts for ts, _, _ in readings[GAUGE.id])
    assert datetime.now(UTC) - latest < timedelta(minutes=2)
    assert len(readings[GAUGE.id]) >= 19
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT kind, device_id, starts_at FROM sim_incidents").fetchone()
    assert row == ("street_flood", GAUGE.id, flood.starts_at)
