"""Decoding and validation of device messages (pure: no database, no broker)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.platform.topics import Topics
from cityops.sensing.readings import METRICS, Reading
from ingest.payloads import MAX_RECORDS, Decoded, decode_message

TOPICS = Topics("cityops/v1")
DEVICES = {"fg-1": "flood_gauge", "wm-1": "water_meter", "mc-1": "manhole_cover"}
NOW = datetime(2026, 11, 22, 0, 15, tzinfo=UTC)  # 08:15 in Shanghai
CST = timezone(timedelta(hours=8))
FG = TOPICS.telemetry("flood_gauge", "fg-1")


def decode(payload: Any, topic: str = FG) -> Decoded:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_message(topic, raw, NOW, DEVICES, TOPICS)


def rejected(payload: Any, topic: str = FG) -> tuple[str, str]:
    """The code and reason of the single whole-message rejection of ``payload``."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    result = decode(raw, topic)
    assert not result.readings and result.status is None
    [rejection] = result.rejections
    assert (rejection.record, rejection.payload) == (None, raw)  # the raw message is kept
    return rejection.code, rejection.reason


def record(ts: Any = "2026-11-22T08:15:00+08:00", **values: Any) -> dict[str, Any]:
    return {"ts": ts, "values": values or {"depth_mm": 12.5}}


# ---- valid forms -------------------------------------------------------------------------------


def test_one_object_with_offset_gives_one_reading_per_value() -> None:
    result = decode(record(depth_mm=12.5, battery_pct=88))
    ts = datetime(2026, 11, 22, 8, 15, tzinfo=CST)
    assert result.readings == [
        Reading("fg-1", "depth_mm", ts, 12.5),
        Reading("fg-1", "battery_pct", ts, 88.0),
    ]
    assert result.rejections == [] and result.device_id == "fg-1"


@pytest.mark.parametrize(
    "ts",
    ["2026-11-22T00:15:00Z", "2026-11-22T00:15:00+00:00", "2026-11-22T08:15:00.000+08:00",
     1795306500, 1795306500.0],
)
def test_timestamp_forms_are_the_same_instant(ts: Any) -> None:
    [reading] = decode(record(ts, depth_mm=1)).readings
    assert reading.ts == datetime(2026, 11, 22, 0, 15, tzinfo=UTC)
    assert reading.ts.utcoffset() is not None


def test_array_of_records_from_each_kind() -> None:
    cases = {
        "water_meter": ("wm-1", {"volume_l": 3.2, "battery_pct": 90}),
        "flood_gauge": ("fg-1", {"depth_mm": 0, "battery_pct": 100}),
        "manhole_cover": ("mc-1", {"tilt_deg": 2.5, "lifted": 0, "battery_pct": 71}),
    }
    for kind, (device, values) in cases.items():
        records = [record(f"2026-11-22T08:{m:02d}:00+08:00", **values) for m in range(10)]
        result = decode(records, TOPICS.telemetry(kind, device))
        assert result.rejections == []
        assert len(result.readings) == 10 * len(values)
        assert {r.metric for r in result.readings} == set(values) <= set(METRICS[kind])


def test_late_readings_are_accepted_and_a_small_clock_lead_is_tolerated() -> None:
    week_old = (NOW - timedelta(days=7)).isoformat()
    ahead = (NOW + timedelta(minutes=5)).isoformat()
    assert len(decode([record(week_old), record(ahead)]).readings) == 2


def test_status_message() -> None:
    topic = TOPICS.status("flood_gauge", "fg-1")
    result = decode({"state": "online", "ts": "2026-11-22T08:14:00+08:00", "battery_pct": 77},
                    topic)
    assert result.rejections == [] and result.readings == []
    assert result.status is not None
    assert (result.status.online, result.status.battery_pct) == (True, 77.0)
    assert result.status.ts == datetime(2026, 11, 22, 0, 14, tzinfo=UTC)
    offline = decode({"state": "offline"}, topic).status  # a last will carries no time
    assert offline is not None and (offline.online, offline.ts, offline.battery_pct) == (
        False, NOW, None)


# ---- rejections of the whole message -------------------------------------------------------------


def test_malformed_json_names_the_position() -> None:
    code, reason = rejected(b'{"ts": "2026-11-22T08:15:00+08:00", "values": {"depth_mm": 1')
    assert code == "malformed_json"
    assert reason == "malformed JSON: Expecting ',' delimiter at line 1 column 61 (character 60)"


def test_payload_that_is_not_utf8() -> None:
    assert rejected(b'{"ts": "\xff"}') == (
        "malformed_json", "payload is not UTF-8 text (invalid start byte at byte 8)")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("depth 12", "got a string"),
        (12.5, "got a number"),
        (None, "got null"),
        ([], "the array is empty"),
        ([record()] * (MAX_RECORDS + 1), f"at most {MAX_RECORDS} per message"),
        ({"ts": "2026-11-22T08:15:00+08:00"}, '"values" must be an object'),
        ({"ts": "2026-11-22T08:15:00+08:00", "values": [1, 2]}, "got an array"),
        ({"ts": "2026-11-22T08:15:00+08:00", "values": {}}, '"values" is empty'),
    ],
)
def test_wrong_shape(payload: Any, expected: str) -> None:
    code, reason = rejected(payload)
    assert code == "wrong_shape" and expected in reason


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (None, "got null"),
        ("yesterday", '"yesterday" is not an ISO 8601 time'),
        ("2026-11-22T08:15:00", "has no UTC offset; add one, e.g. +08:00 or Z"),
        (True, "got a boolean"),
        (1795306500000, "if it is milliseconds, divide by 1000"),
        (0, "before 2000-01-01; the device clock is probably not set"),
        (float("nan"), "is not a number of Unix seconds"),
        (-1e11, "is not a Unix time"),
    ],
)
def test_unusable_timestamp(ts: Any, expected: str) -> None:
    code, reason = rejected(record(ts))
    assert code == "bad_timestamp" and expected in reason


def test_missing_timestamp() -> None:
    assert rejected({"values": {"depth_mm": 1}}) == (
        "bad_timestamp", 'no "ts": add the time of the reading')


def test_timestamp_in_the_future_says_by_how_much() -> None:
    assert rejected(record("2026-11-22T10:18:00+08:00")) == (
        "future_timestamp",
        "timestamp 2026-11-22T10:18:00+08:00 is 2 h 3 min in the future; check the device clock",
    )
    code, reason = rejected(record(NOW.timestamp() + 301))
    assert code == "future_timestamp" and "5 min 1 s in the future" in reason


def test_unknown_device() -> None:
    assert rejected(record(), TOPICS.telemetry("flood_gauge", "fg-9")) == (
        'unknown_device', 'device "fg-9" is not registered; add it to the devices table first')


def test_topic_kind_differs_from_the_registered_kind() -> None:
    code, reason = rejected(record(), TOPICS.telemetry("water_meter", "fg-1"))
    assert code == "wrong_kind"
    assert reason == (
        'device "fg-1" is registered as a flood_gauge but published on a water_meter topic;'
        " publish on cityops/v1/flood_gauge/fg-1/telemetry"
    )


def test_topic_that_is_not_a_device_topic() -> None:
    code, reason = rejected(record(), "cityops/v1/boat/b-1/telemetry")
    assert code == "bad_topic" and "unknown device kind 'boat'" in reason


def test_unknown_metric_lists_the_allowed_ones() -> None:
    assert rejected(record(depth=3)) == (
        "unknown_metric",
        'unknown metric "depth" for a flood_gauge; allowed: depth_mm, battery_pct',
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.5", 'depth_mm: "12.5" is a string; send a JSON number'),
        (True, "depth_mm: true is a boolean; send 1 or 0"),
        (None, "depth_mm is null; leave it out when there is no value"),
        ([1], "depth_mm: [1] is an array; send a JSON number"),
    ],
)
def test_value_that_is_not_a_number(value: Any, expected: str) -> None:
    assert rejected(record(depth_mm=value)) == ("bad_value", expected)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_value_that_is_not_finite(literal: bytes) -> None:
    payload = b'{"ts": "2026-11-22T08:15:00+08:00", "values": {"depth_mm": ' + literal + b"}}"
    code, reason = rejected(payload)
    assert code == "bad_value" and reason.endswith("is not a finite number")


def test_value_out_of_range_states_range_and_unit() -> None:
    assert rejected(record(depth_mm=6200)) == (
        "out_of_range",
        "depth_mm = 6200 is outside 0 to 5000 (water depth above the street surface, millimetres)",
    )
    assert rejected(record(volume_l=2500), TOPICS.telemetry("water_meter", "wm-1")) == (
        "out_of_range",
        "volume_l = 2500 is outside 0 to 2000 (litres used since the previous reading)",
    )


def test_every_problem_of_a_record_is_named() -> None:
    code, reason = rejected(record(depth_mm=6200, battery_pct="full"))
    assert code == "out_of_range"
    assert "depth_mm = 6200" in reason and 'battery_pct: "full" is a string' in reason


@pytest.mark.parametrize(
    ("payload", "code", "expected"),
    [
        ([{"state": "online"}], "wrong_shape", "expected a JSON object"),
        ({"state": "on"}, "wrong_shape", '"state" must be "online" or "offline", got "on"'),
        ({"online": True}, "wrong_shape", "got nothing"),
        ({"state": "online", "ts": "2026-11-22T10:18:00+08:00"}, "future_timestamp", "2 h 3 min"),
        ({"state": "online", "battery_pct": 101}, "out_of_range", "outside 0 to 100"),
    ],
)
def test_bad_status_message(payload: Any, code: str, expected: str) -> None:
    got_code, reason = rejected(payload, TOPICS.status("flood_gauge", "fg-1"))
    assert got_code == code and expected in reason


# ---- arrays: one bad record does not spoil the others --------------------------------------------


def test_bad_records_of_an_array_are_rejected_one_by_one() -> None:
    records = [
        record("2026-11-22T08:10:00+08:00"),
        record("2026-11-22T08:11:00+08:00", depth_mm=9000),
        record("2026-11-22T08:12:00+08:00"),
        "junk",
        record("2026-11-22T08:14:00+08:00"),
    ]
    result = decode(records)
    assert [r.ts.minute for r in result.readings] == [10, 12, 14]
    first, second = result.rejections
    assert (first.record, first.code, second.record, second.code) == (
        1, "out_of_range", 3, "wrong_shape")
    assert first.reason.startswith("record 1 of 5 (0-based): depth_mm = 9000 is outside 0 to 5000")
    assert json.loads(first.payload) == records[1]  # the dead letter keeps the record itself
    assert second.payload == b'"junk"'


# ---- properties ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1),
                 timezones=st.sampled_from([UTC, CST])).map(datetime.isoformat),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    json_values,
)
metric_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(-10, 10_000), json_values)
records_strategy = st.one_of(
    st.fixed_dictionaries({
        "ts": timestamps,
        "values": st.dictionaries(
            st.sampled_from(["depth_mm", "battery_pct", "tilt_deg", "nonsense"]),
            metric_values, max_size=3),
    }),
    json_values,
)


def assert_accounted(records: list[Any], result: Decoded) -> None:
    """Every record is either wholly readings or exactly one rejection with a reason."""
    rejected_indexes = [r.record for r in result.rejections]
    assert len(rejected_indexes) == len(set(rejected_indexes))
    assert all(r.reason and r.payload for r in result.rejections)
    accepted = [rec for i, rec in enumerate(records) if i not in rejected_indexes]
    assert len(result.readings) == sum(len(rec["values"]) for rec in accepted)
    for reading in result.readings:
        low, high, _ = METRICS["flood_gauge"][reading.metric]
        assert math.isfinite(reading.value) and low <= reading.value <= high
        assert reading.ts.utcoffset() is not None and reading.ts - NOW <= timedelta(minutes=5)


@settings(max_examples=300, deadline=None)
@given(st.lists(records_strategy, min_size=1, max_size=8))
def test_arrays_of_random_records_are_fully_accounted_for(records: list[Any]) -> None:
    assert_accounted(records, decode(records))


@settings(max_examples=300, deadline=None)
@given(records_strategy.filter(lambda item: not isinstance(item, list)))
def test_single_random_record_is_readings_or_one_rejection(item: Any) -> None:
    result = decode(item)
    if result.rejections:
        assert len(result.rejections) == 1 and not result.readings
    else:
        assert_accounted([item], result)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
       st.sampled_from([FG, TOPICS.status("flood_gauge", "fg-1"), "cityops/v1/x", "elsewhere"]))
def test_arbitrary_bytes_never_raise(payload: bytes, topic: str) -> None:
    result = decode_message(topic, payload, NOW, DEVICES, TOPICS)
    assert result.readings or result.status or result.rejections
    assert all(r.reason for r in result.rejections)
