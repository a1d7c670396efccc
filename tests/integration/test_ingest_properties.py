"""Property: random and malformed messages through the real writer into the real database.

tests/test_ingest_payloads.py and tests/test_ingest_senml.py show that decoding never raises and
accounts for every record. Here whole batches of random messages (random bytes, random JSON, the
documented form, SenML packs, repeated readings, unknown devices and foreign topics) go through
:class:`ingest.writer.BatchWriter` into PostgreSQL: it never fails, acknowledges every message,
and every record ends up either in ``readings`` (once per natural key) or in ``dead_letters``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityops.platform.topics import Topics
from cityops.sensing.readings import METRICS
from ingest.payloads import decode_message
from ingest.writer import BatchWriter, Delivery

pytestmark = pytest.mark.integration

PREFIX = "cityops-prop/v1"
TOPICS = Topics(PREFIX)
DEVICES = {"fg-1": "flood_gauge", "wm-1": "water_meter", "mc-1": "manhole_cover"}
NOW = datetime.now(UTC).replace(microsecond=0)

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
# a small database of timestamps and values, so that repeated readings are common
timestamps = st.integers(-3, 8).map(lambda m: (NOW + timedelta(minutes=m)).isoformat())
metrics = st.sampled_from(["depth_mm", "battery_pct", "volume_l", "tilt_deg", "lifted", "bogus"])
values = st.integers(-5, 400) | st.floats(allow_nan=True, allow_infinity=True) | json_values
records = st.fixed_dictionaries(
    {"ts": timestamps | json_values, "values": st.dictionaries(metrics, values, max_size=3)}
)
senml_records = st.fixed_dictionaries(
    {"n": metrics, "v": values},
    optional={"bn": st.sampled_from(["urn:dev:fg-1:", "fg-1:", "x"]) | json_values,
              "bt": st.integers(0, 2_000_000_000).map(float) | json_values,
              "t": st.integers(-600, 600) | json_values,
              "u": st.sampled_from(["mm", "cm", "m", "%", "deg", "L", "m3"]) | json_values},
)
payloads = st.one_of(
    st.binary(max_size=60),
    json_values.map(lambda v: json.dumps(v).encode()),
    records.map(lambda r: json.dumps(r).encode()),
    st.lists(records | json_values, min_size=1, max_size=5).map(lambda r: json.dumps(r).encode()),
    st.lists(senml_records, min_size=1, max_size=5).map(lambda r: json.dumps(r).encode()),
)
topics = st.sampled_from([
    TOPICS.telemetry("flood_gauge", "fg-1"), TOPICS.telemetry("water_meter", "wm-1"),
    TOPICS.telemetry("manhole_cover", "mc-1"), TOPICS.telemetry("flood_gauge", "fg-404"),
    TOPICS.telemetry("water_meter", "fg-1"), TOPICS.status("flood_gauge", "fg-1"),
    f"{PREFIX}/flood_gauge/fg-1", "elsewhere/fg-1/telemetry",
])


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A registered device's telemetry in the documented form, values in range."""
    device_id = draw(st.sampled_from(sorted(DEVICES)))
    kind = DEVICES[device_id]
    ranges = METRICS[kind]

    def record() -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(sorted(ranges)), min_size=1, max_size=3,
                               unique=True))
        return {"ts": draw(timestamps), "values": {
            m: draw(st.floats(ranges[m][0], ranges[m][1])) for m in chosen}}

    body = [record() for _ in range(draw(st.integers(1, 4)))]
    document = body[0] if len(body) == 1 else body
    return TOPICS.telemetry(kind, device_id), json.dumps(document).encode()


statuses = st.fixed_dictionaries(
    {"state": st.sampled_from(["online", "offline"]), "ts": timestamps},
    optional={"battery_pct": st.floats(0, 100)},
).map(lambda s: (TOPICS.status("flood_gauge", "fg-1"), json.dumps(s).encode()))
messages = st.lists(valid_messages() | statuses | st.tuples(topics, payloads), min_size=1,
                    max_size=25)


@pytest.fixture
def database(db_url: str) -> str:
    """The test database with one device of each kind."""
    geometry = json.dumps({"type": "Polygon", "coordinates": [[[121.47, 31.2], [121.51, 31.2],
                                                               [121.51, 31.25], [121.47, 31.2]]]})
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
            " centroid_lat) VALUES ('310101000000000', 'district', 'Test', NULL, %s, 121.49,"
            " 31.22)", (geometry,))
        for device_id, kind in DEVICES.items():
            conn.execute("INSERT INTO devices (id, kind, grid_code, lon, lat, label)"
                         " VALUES (%s, %s, '310101000000000', 121.49, 31.22, %s)",
                         (device_id, kind, device_id))
    return db_url


def run_writer(url: str, batch: Sequence[tuple[str, bytes]]) -> tuple[list[Delivery], BatchWriter]:
    """Feed ``batch`` through a real writer and stop it; the deliveries it acknowledged."""
    acked: list[Delivery] = []
    writer = BatchWriter(url, topics=TOPICS, ack=acked.extend, batch_size=7, batch_ms=5)
    writer.start()
    received = datetime.now(UTC)
    for mid, (topic, payload) in enumerate(batch, start=1):
        writer.submit(Delivery(topic, payload, received + timedelta(microseconds=mid), mid, 1, 1))
    writer.stop(timeout=30)
    return acked, writer


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages)
def test_random_messages_are_all_stored_or_dead_lettered(
    database: str, batch: list[tuple[str, bytes]]
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE readings, dead_letters")
    acked, writer = run_writer(database, batch)

    assert sorted(d.mid for d in acked) == list(range(1, len(batch) + 1))
    expected_keys: set[tuple[str, str, datetime]] = set()
    expected_dead: Counter[tuple[str, bytes, str]] = Counter()
    readings = 0
    for delivery in acked:
        decoded = decode_message(delivery.topic, delivery.payload, delivery.received_at, DEVICES,
                                 TOPICS)
        assert decoded.readings or decoded.status or decoded.rejections
        readings += len(decoded.readings)
        expected_keys |= {(r.device_id, r.metric, r.ts) for r in decoded.readings}
        expected_dead.update((decoded.topic, r.payload, r.reason) for r in decoded.rejections)
    with psycopg.connect(database) as conn:
        keys = conn.execute("SELECT device_id, metric, ts FROM readings").fetchall()
        dead = conn.execute("SELECT topic, payload, reason FROM dead_letters").fetchall()
    assert len(keys) == len(expected_keys) and set(keys) == expected_keys
    assert Counter((t, bytes(p), c) for t, p, c in dead) == expected_dead
    counters = writer.counters
    assert counters.readings_stored + counters.duplicates_ignored == readings
    assert counters.readings_stored == len(expected_keys)
    assert counters.dead_letters == sum(expected_dead.values())


def test_a_long_run_of_rubbish_is_all_dead_lettered(database: str) -> None:
    batch = [(TOPICS.telemetry("flood_gauge", "fg-1"), bytes([i % 256]) * (i % 50 + 1))
             for i in range(2000)]
    acked, writer = run_writer(database, batch)
    assert len(acked) == 2000 and writer.counters.dead_letters == 2000
    assert writer.counters.readings_stored == 0
