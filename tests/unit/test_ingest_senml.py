"""SenML (RFC 8428) packs and FIWARE Smart Data Models names (pure: no database, no broker)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.platform.topics import Topics
from cityops.sensing.readings import Reading
from ingest.payloads import Decoded, decode_message

TOPICS = Topics("cityops/v1")
DEVICES = {"FG000001": "flood_gauge", "wm-1": "water_meter", "mc-1": "manhole_cover"}
NOW = datetime(2026, 11, 22, 0, 15, tzinfo=UTC)
BT = NOW.timestamp() - 600  # ten minutes before receipt
FG = TOPICS.telemetry("flood_gauge", "FG000001")
WM = TOPICS.telemetry("water_meter", "wm-1")
MC = TOPICS.telemetry("manhole_cover", "mc-1")


def decode(payload: Any, topic: str = FG) -> Decoded:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_message(topic, raw, NOW, DEVICES, TOPICS)


def at(seconds_before_now: float) -> datetime:
    return NOW - timedelta(seconds=seconds_before_now)


def one_rejection(pack: list[Any], topic: str = FG) -> tuple[str, str]:
    result = decode(pack, topic)
    [rejection] = result.rejections
    return rejection.code, rejection.reason


# ---- valid packs ---------------------------------------------------------------------------------


def test_base_name_time_and_unit_apply_to_every_later_record() -> None:
    pack = [
        {"bn": "urn:dev:id:FG000001:", "bt": BT, "bu": "m", "n": "depth", "v": 0.182},
        {"n": "depth", "t": 60, "v": 0.19},
        {"n": "depth", "t": 120, "v": 0.2, "u": "cm"},
        {"n": "battery", "t": 120, "u": "%EL", "v": 88},
    ]
    result = decode(pack)
    assert result.rejections == []
    assert result.readings == [
        Reading("FG000001", "depth_mm", at(600), 182.0),
        Reading("FG000001", "depth_mm", at(540), 190.0),
        Reading("FG000001", "depth_mm", at(480), 2.0),
        Reading("FG000001", "battery_pct", at(480), 88.0),
    ]


def test_times_below_2_pow_28_are_relative_to_receipt() -> None:
    result = decode([{"n": "volume_l", "t": -900, "v": 4.5}, {"n": "volume_l", "v": 1}], WM)
    assert [(r.ts, r.value) for r in result.readings] == [(at(900), 4.5), (NOW, 1.0)]


@pytest.mark.parametrize(
    ("bn", "n"),
    [("urn:dev:id:FG000001:", "depth_mm"), ("FG000001/", "depth_mm"), ("FG000001:", "depth_mm"),
     (None, "depth_mm"), (None, "urn:dev:id:FG000001:depth_mm"), ("urn:dev:id:FG000001:depth_mm",
                                                                   None)],
)
def test_name_forms_that_name_this_device(bn: str | None, n: str | None) -> None:
    record: dict[str, Any] = {"bt": BT, "v": 12}
    if bn is not None:
        record["bn"] = bn
    if n is not None:
        record["n"] = n
    assert decode([record]).readings == [Reading("FG000001", "depth_mm", at(600), 12.0)]


@pytest.mark.parametrize(
    ("kind_topic", "record", "metric", "value"),
    [
        (WM, {"n": "volume", "u": "l", "v": 3.5}, "volume_l", 3.5),
        (WM, {"n": "volume", "u": "L", "v": 3.5}, "volume_l", 3.5),
        (WM, {"n": "volume", "u": "m3", "v": 0.0035}, "volume_l", 3.5),
        (FG, {"n": "depth_mm", "v": 35}, "depth_mm", 35.0),
        (FG, {"n": "depth_mm", "u": "m", "v": 0.035}, "depth_mm", 35.0),
        (FG, {"n": "currentLevel", "v": 0.035}, "depth_mm", 35.0),  # FIWARE: metres
        (FG, {"n": "batteryLevel", "v": 0.5}, "battery_pct", 50.0),  # FIWARE: a fraction
        (FG, {"n": "battery", "u": "/", "v": 0.5}, "battery_pct", 50.0),
        (MC, {"n": "tilt", "u": "rad", "v": math.pi / 4}, "tilt_deg", 45.0),
        (MC, {"n": "tilt", "u": "deg", "v": 12}, "tilt_deg", 12.0),
        (MC, {"n": "lifted", "vb": True}, "lifted", 1.0),
        (MC, {"n": "lifted", "v": 0}, "lifted", 0.0),
    ],
)
def test_units_are_converted_to_the_metric_unit(
    kind_topic: str, record: dict[str, Any], metric: str, value: float
) -> None:
    [reading] = decode([record], kind_topic).readings
    assert reading.metric == metric and reading.value == pytest.approx(value)


def test_base_value_is_added() -> None:
    result = decode([{"bn": "wm-1:", "bv": 10, "n": "volume_l", "v": 2.5},
                     {"n": "volume_l", "v": -1}], WM)
    assert [r.value for r in result.readings] == [12.5, 9.0]


# ---- rejections, one per record, with a code -----------------------------------------------------


def test_unknown_unit_names_the_accepted_ones() -> None:
    code, reason = one_rejection([{"n": "depth", "u": "kg", "v": 1}])
    assert code == "unknown_unit"
    assert reason == ('SenML record 0 of 1 (0-based): depth: unit "kg" is not accepted for'
                      ' depth_mm; send "mm", "cm" or "m"')


def test_a_bare_name_needs_a_unit() -> None:
    assert one_rejection([{"n": "volume", "v": 2}], WM) == (
        "unknown_unit", 'SenML record 0 of 1 (0-based): volume: no unit; send "l", "L" or "m3"')


def test_unit_on_a_unitless_metric() -> None:
    code, reason = one_rejection([{"n": "lifted", "u": "m", "v": 1}], MC)
    assert code == "unknown_unit" and reason.endswith('lifted takes no unit, got "m"')


def test_out_of_range_after_conversion_shows_both_values() -> None:
    code, reason = one_rejection([{"n": "depth", "u": "m", "v": 7}])
    assert code == "out_of_range"
    assert reason.endswith("depth = 7 m is depth_mm = 7000, outside 0 to 5000"
                           " (water depth above the street surface, millimetres)")


def test_another_devices_name_is_refused() -> None:
    code, reason = one_rejection([{"bn": "urn:dev:id:FG000002:", "n": "depth_mm", "v": 1}])
    assert code == "wrong_device"
    assert '"FG000002"' in reason and "own topic" in reason


def test_unknown_name_lists_the_accepted_ones() -> None:
    code, reason = one_rejection([{"n": "temperature", "u": "Cel", "v": 21}])
    assert code == "unknown_metric"
    assert reason.endswith('unknown SenML name "temperature" for a flood_gauge; use one of:'
                           " depth_mm, battery_pct, depth, battery, currentLevel, batteryLevel")


def test_future_time_from_base_time() -> None:
    code, reason = one_rejection([{"bt": NOW.timestamp() + 3600, "n": "depth_mm", "v": 1}])
    assert code == "future_timestamp" and "1 h in the future" in reason


def test_a_bad_base_time_rejects_the_records_that_use_it_until_it_is_set_again() -> None:
    pack = [{"bt": "yesterday", "n": "depth_mm", "v": 1}, {"n": "depth_mm", "v": 2},
            {"bt": BT, "n": "depth_mm", "v": 3}]
    result = decode(pack)
    assert [r.value for r in result.readings] == [3.0]
    assert [(r.record, r.code) for r in result.rejections] == [
        (0, "bad_timestamp"), (1, "bad_timestamp")]
    assert result.rejections[1].reason.endswith('"bt" (base time) must be a JSON number')
    assert json.loads(result.rejections[1].payload) == pack[1]  # the record itself is kept


@pytest.mark.parametrize(
    ("record", "code", "ending"),
    [
        ({"n": "depth_mm"}, "wrong_shape", 'depth_mm: no value; send "v" (a number)'),
        ({"n": "depth_mm", "v": "1"}, "bad_value", 'depth_mm: "v" (value) must be a JSON number'),
        ({"n": "depth_mm", "vs": "1"}, "bad_value", 'a string or data value ("vs"); send "v"'),
        ({"n": "depth_mm", "s": 10}, "bad_value", 'a sum ("s") is not stored; send the reading'
                                                  ' itself as "v"'),
        ({"n": "depth_mm", "v": 1, "vb": True}, "wrong_shape", "several values (v, vb); send one"),
        ({"n": "depth_mm", "vb": True}, "bad_value", 'a boolean ("vb"); send "v", a number'),
        ({"n": "depth_mm", "v": 1, "crc_": 7}, "wrong_shape", "'crc_' must be understood"),
        ({"bn": "", "v": 1}, "unknown_metric", 'no name: set "n" (the metric) or "bn"'),
        ({"n": 7, "v": 1}, "wrong_shape", '"n" (name) must be a string'),
        ({"n": "depth_mm", "v": 1, "t": "now"}, "bad_timestamp", '"t" (time) must be a JSON'
                                                                 " number"),
    ],
)
def test_bad_records(record: dict[str, Any], code: str, ending: str) -> None:
    got_code, reason = one_rejection([record])
    assert got_code == code
    assert ending in reason and reason.startswith("SenML record 0 of 1 (0-based): ")


def test_good_records_of_a_pack_are_kept_beside_bad_ones() -> None:
    pack = [{"bn": "FG000001:", "bt": BT, "n": "depth_mm", "v": 1}, 5,
            {"n": "depth_mm", "t": 60, "v": 9000}, {"n": "depth_mm", "t": 120, "v": 3}]
    result = decode(pack)
    assert [(r.ts, r.value) for r in result.readings] == [(at(600), 1.0), (at(480), 3.0)]
    assert [(r.record, r.code) for r in result.rejections] == [
        (1, "wrong_shape"), (2, "out_of_range")]


def test_a_single_senml_object_gets_a_hint() -> None:
    result = decode({"n": "depth_mm", "v": 3})
    [rejection] = result.rejections
    assert rejection.code == "wrong_shape" and "wrap it in [ ]" in rejection.reason


# ---- FIWARE names in the documented JSON form ----------------------------------------------------


def test_fiware_aliases_in_values_and_date_observed_for_ts() -> None:
    result = decode({"dateObserved": "2026-11-22T08:10:00+08:00",
                     "values": {"currentLevel": 0.25, "batteryLevel": 0.64}})
    assert result.readings == [Reading("FG000001", "depth_mm", at(300), 250.0),
                               Reading("FG000001", "battery_pct", at(300), 64.0)]


def test_flat_fiware_entity() -> None:
    entity = {"id": "urn:ngsi-ld:FloodMonitoring:FG000001", "type": "FloodMonitoring",
              "dateObserved": "2026-11-22T00:10:00Z", "currentLevel": 0.182,
              "referenceLevel": 3.0, "location": {"type": "Point", "coordinates": [121.4, 31.2]}}
    assert decode(entity).readings == [Reading("FG000001", "depth_mm", at(300), 182.0)]


def test_water_consumption_entity_without_a_volume_is_refused_with_what_to_send() -> None:
    entity = {"type": "WaterConsumptionObserved", "dateObserved": "2026-11-22T00:10:00Z",
              "waterConsumption": 1234}
    [rejection] = decode(entity, WM).rejections
    assert (rejection.code, rejection.reason) == (
        "wrong_shape",
        "the entity has no attribute CityOps stores; send volume_l, battery_pct, batteryLevel")


def test_fiware_alias_out_of_range() -> None:
    [rejection] = decode({"ts": NOW.isoformat(), "values": {"currentLevel": 6.25}}).rejections
    assert rejection.code == "out_of_range"
    assert rejection.reason.startswith("currentLevel = 6.25 m is depth_mm = 6250, outside")


# ---- properties ----------------------------------------------------------------------------------

senml_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6),
                         st.booleans(), st.text(max_size=4), st.none())
senml_records = st.one_of(
    st.dictionaries(
        st.sampled_from(["bn", "bt", "bu", "bv", "n", "u", "v", "vb", "vs", "s", "t", "x_"]),
        st.one_of(senml_values,
                  st.sampled_from(["depth", "depth_mm", "FG000001:", "urn:dev:id:FG000001:",
                                   "m", "cm", "kg", "%EL", "battery", "currentLevel"])),
        max_size=6),
    senml_values,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(senml_records, min_size=1, max_size=8))
def test_random_packs_one_reading_or_one_rejection_per_record(pack: list[Any]) -> None:
    pack = [{"n": "depth_mm", "v": 1}, *pack]  # always detected as SenML
    result = decode(pack)
    rejected = [r.record for r in result.rejections]
    assert len(rejected) == len(set(rejected)) and None not in rejected
    assert len(result.readings) + len(rejected) == len(pack)
    assert all(r.reason and r.payload for r in result.rejections)
    for reading in result.readings:
        assert math.isfinite(reading.value) and reading.ts.utcoffset() is not None
