"""Decoding and validation of device messages: pure functions, no I/O, no clock reads.

A telemetry message holds one record ``{"ts": ..., "values": {metric: number}}`` or an array of up
to :data:`MAX_RECORDS` of them, or a SenML pack (RFC 8428 JSON, :mod:`ingest.senml`): an array whose
first record has a SenML base field or ``n`` and no ``values``. FIWARE Smart Data Models names are
accepted as aliases (``dateObserved`` for ``ts``, ``currentLevel`` in metres, ``batteryLevel`` as a
fraction), also as a flat FIWARE entity (``{"type": "FloodMonitoring", "dateObserved": ...,
"currentLevel": ...}``). A status message holds ``{"state": "online"|"offline", "ts": ...,
"battery_pct": ...}``. Whatever arrives, :func:`decode_message` returns a :class:`Decoded`: the
readings that passed, at most one status update, and a :class:`Rejection` (a reason a person can act
on) for the whole message or for each record of an array that failed. It never raises.
See docs/payloads.md for the format and every rejection reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cityops.platform.text import duration_text
from cityops.platform.topics import Topics
from cityops.sensing.messages import Decoded, Rejection, RejectionCode, StatusUpdate
from cityops.sensing.readings import METRICS, Reading
from ingest import senml

MAX_RECORDS = 1000
MAX_CLOCK_AHEAD = timedelta(minutes=5)
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
SHAPE = '{"ts": ..., "values": {"<metric>": <number>, ...}}'
SENML_OBJECT = "this looks like a SenML record, but a SenML pack is a JSON array: wrap it in [ ]"


# FIWARE Smart Data Models attribute names (FloodMonitoring; batteryLevel of Device, a fraction
# 0..1) -> our metric and the SenML unit their value is in. WaterConsumptionObserved has no
# attribute meaning "litres used since the previous reading" (waterConsumption is the cumulative
# index in m3, maxFlow/minFlow are weekly flow rates), so water meters send volume_l.
FIWARE_ALIASES: dict[str, dict[str, tuple[str, str]]] = {
    "flood_gauge": {"currentLevel": ("depth_mm", "m"), "batteryLevel": ("battery_pct", "/")},
    "water_meter": {"batteryLevel": ("battery_pct", "/")},
    "manhole_cover": {"batteryLevel": ("battery_pct", "/")},
}
FIWARE_TYPES = frozenset({"FloodMonitoring", "WaterConsumptionObserved", "Device"})
# The unit of each metric's own name in SenML, and the bare names that need a "u".
NATIVE_UNITS = {"depth_mm": "mm", "volume_l": "l", "battery_pct": "%EL", "tilt_deg": "deg",
                "well_water_mm": "mm"}
BARE_NAMES = {"depth_mm": "depth", "volume_l": "volume", "battery_pct": "battery",
              "tilt_deg": "tilt"}
DEVICE_URN = "urn:dev:id:"


def _senml_names(kind: str) -> dict[str, tuple[str, str | None]]:
    names: dict[str, tuple[str, str | None]] = {
        metric: (metric, NATIVE_UNITS.get(metric)) for metric in METRICS[kind]
    }
    names |= {BARE_NAMES[m]: (m, None) for m in METRICS[kind] if m in BARE_NAMES}
    names |= FIWARE_ALIASES.get(kind, {})
    return names


# SenML name (after the device part) -> our metric and the unit assumed when the pack names none.
SENML_NAMES = {kind: _senml_names(kind) for kind in METRICS}


class _Invalid(Exception):
    """Internal: one validation failure, carried up to where the rejection is recorded."""

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def decode_message(
    topic: str,
    payload: bytes,
    received_at: datetime,
    devices: Mapping[str, str],
    topics: Topics,
) -> Decoded:
    """Decode and validate one message; ``devices`` maps registered device ids to their kind."""
    try:
        parsed = topics.parse_device_topic(topic)
    except ValueError as exc:
        return _whole(topic, None, payload, "bad_topic", str(exc))
    device_id, kind = parsed.device_id, parsed.kind
    registered = devices.get(device_id)
    if registered is None:
        return _whole(
            topic, device_id, payload, "unknown_device",
            f"device {_shown(device_id)} is not registered; add it to the devices table first",
        )
    if registered != kind:
        return _whole(
            topic, device_id, payload, "wrong_kind",
            f"device {_shown(device_id)} is registered as a {registered} but published on a {kind}"
            f" topic; publish on {topics.prefix}/{registered}/{device_id}/{parsed.channel}",
        )
    try:
        document = _parse_json(payload)
        if parsed.channel == "status":
            status = _status(device_id, kind, document, received_at)
            return Decoded(topic, device_id, status=status)
    except _Invalid as exc:
        return _whole(topic, device_id, payload, exc.code, exc.reason)
    return _telemetry(topic, device_id, kind, payload, document, received_at)


def _whole(
    topic: str, device_id: str | None, payload: bytes, code: RejectionCode, reason: str
) -> Decoded:
    return Decoded(topic, device_id, rejections=[Rejection(code, reason, payload)])


def _parse_json(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(
            "malformed_json", f"payload is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Invalid(
            "malformed_json",
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            f" (character {exc.pos})",
        ) from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise _Invalid("malformed_json", "malformed JSON: a number has too many digits") from None
    except RecursionError:
        raise _Invalid("malformed_json", "malformed JSON: nested too deeply") from None


def _telemetry(
    topic: str, device_id: str, kind: str, payload: bytes, document: Any, received_at: datetime
) -> Decoded:
    decoded = Decoded(topic, device_id)
    allowed = METRICS[kind]
    if isinstance(document, dict):
        try:
            decoded.readings.extend(_record(device_id, kind, allowed, document, received_at))
        except _Invalid as exc:
            decoded.rejections.append(Rejection(exc.code, exc.reason, payload))
        return decoded
    if not isinstance(document, list):
        reason = f"expected a JSON object {SHAPE} or an array of them, got {_json_type(document)}"
        decoded.rejections.append(Rejection("wrong_shape", reason, payload))
    elif not document:
        reason = "the array is empty; send at least one record " + SHAPE
        decoded.rejections.append(Rejection("wrong_shape", reason, payload))
    elif len(document) > MAX_RECORDS:
        reason = (
            f"the array has {len(document)} records; at most {MAX_RECORDS} per message are"
            " accepted, split it into several messages"
        )
        decoded.rejections.append(Rejection("wrong_shape", reason, payload))
    elif (type(first := document[0]) is dict and "values" not in first
          and not senml.SENML_KEYS.isdisjoint(first)):  # SenML: see ingest.senml
        _senml(decoded, kind, payload, document, received_at)
    else:
        count = len(document)
        for index, item in enumerate(document):
            try:
                decoded.readings.extend(_record(device_id, kind, allowed, item, received_at))
            except _Invalid as exc:
                reason = f"record {index} of {count} (0-based): {exc.reason}"
                raw = _record_bytes(item, payload)
                decoded.rejections.append(Rejection(exc.code, reason, raw, index))
    return decoded


def _record(
    device_id: str,
    kind: str,
    allowed: Mapping[str, tuple[float, float, str]],
    record: Any,
    received_at: datetime,
) -> list[Reading]:
    if not isinstance(record, dict):
        raise _Invalid("wrong_shape", f"expected an object {SHAPE}, got {_json_type(record)}")
    if "ts" not in record:
        if "dateObserved" in record:  # FIWARE's name for it
            timed = {**record, "ts": record["dateObserved"]}
            return _record(device_id, kind, allowed, timed, received_at)
        if not senml.SENML_KEYS.isdisjoint(record):
            raise _Invalid("wrong_shape", SENML_OBJECT)
        raise _Invalid("bad_timestamp", 'no "ts": add the time of the reading')
    values = record.get("values")
    if not isinstance(values, dict):
        if values is None and (record.get("type") in FIWARE_TYPES or "dateObserved" in record):
            values = _entity_values(kind, allowed, record)
        elif values is None and not senml.SENML_KEYS.isdisjoint(record):
            raise _Invalid("wrong_shape", SENML_OBJECT)
        else:
            got = "nothing" if values is None else _json_type(values)
            raise _Invalid("wrong_shape", f'"values" must be an object {SHAPE}, got {got}')
    if not values:
        raise _Invalid("wrong_shape", '"values" is empty; send at least one metric')
    ts = _timestamp(record["ts"], received_at)
    readings: list[Reading] = []
    problems: list[_Invalid] = []
    for metric, value in values.items():
        spec = allowed.get(metric)
        if spec is None:
            alias = FIWARE_ALIASES.get(kind, {}).get(metric)
            if alias is not None:
                try:
                    number = _number(metric, value, (-math.inf, math.inf, ""))
                    readings.append(Reading(device_id, alias[0], ts, _converted(
                        metric, alias[0], number, alias[1], allowed[alias[0]])))
                except _Invalid as exc:
                    problems.append(exc)
                continue
            names = ", ".join(allowed)
            problems.append(_Invalid(
                "unknown_metric", f"unknown metric {_shown(metric)} for a {kind}; allowed: {names}"
            ))
            continue
        try:
            readings.append(Reading(device_id, metric, ts, _number(metric, value, spec)))
        except _Invalid as exc:
            problems.append(exc)
    if problems:
        raise _Invalid(problems[0].code, "; ".join(p.reason for p in problems))
    return readings


def _entity_values(
    kind: str, allowed: Mapping[str, tuple[float, float, str]], entity: dict[str, Any]
) -> dict[str, Any]:
    """The attributes of a flat FIWARE entity that CityOps stores (our metrics and aliases)."""
    aliases = FIWARE_ALIASES.get(kind, {})
    values = {k: v for k, v in entity.items() if k in allowed or k in aliases}
    if not values:
        names = ", ".join([*allowed, *aliases])
        raise _Invalid("wrong_shape", f"the entity has no attribute CityOps stores; send {names}")
    return values


def _converted(
    name: str, metric: str, value: float, unit: str | None, spec: tuple[float, float, str]
) -> float:
    """``value`` of the field ``name`` sent in ``unit``, converted to ``metric``, range-checked."""
    try:
        number = senml.convert(name, metric, value, unit)
    except senml.SenmlError as exc:
        raise _Invalid(cast(RejectionCode, exc.code), exc.reason) from None
    low, high, meaning = spec
    if not low <= number <= high:
        sent = f"{name} = {value:g}" + (f" {unit}" if unit else "")
        raise _Invalid(
            "out_of_range",
            f"{sent} is {metric} = {number:g}, outside {low:g} to {high:g} ({meaning})",
        )
    return number


def _senml(
    decoded: Decoded, kind: str, payload: bytes, pack: list[Any], received_at: datetime
) -> None:
    """Add the readings and per-record rejections of a SenML pack (one reading per record)."""
    count = len(pack)
    device_id = decoded.device_id
    assert device_id is not None
    names = SENML_NAMES[kind]
    allowed = METRICS[kind]
    known: dict[str, tuple[str, str, str | None]] = {}  # full name -> name, metric, unit
    for index, item in enumerate(senml.resolve(pack, received_at.timestamp())):
        try:
            if isinstance(item, senml.SenmlError):
                raise _Invalid(cast(RejectionCode, item.code), item.reason)
            resolved = known.get(item.name)
            if resolved is None:
                name = _senml_metric(item.name, device_id)
                entry = names.get(name)
                if entry is None:
                    raise _Invalid(
                        "unknown_metric",
                        f"unknown SenML name {_shown(name)} for a {kind}; use one of: "
                        + ", ".join(names),
                    )
                resolved = known[item.name] = (name, *entry)
            name, metric, default_unit = resolved
            unit = item.unit if item.unit is not None else default_unit
            value = item.value
            if type(value) is bool:
                if senml.UNITS.get(metric):
                    raise _Invalid("bad_value", f'{name}: a boolean ("vb"); send "v", a number')
                value = 1.0 if value else 0.0
            number = _converted(name, metric, value, unit, allowed[metric])
            decoded.readings.append(
                Reading(device_id, metric, _timestamp(item.time, received_at), number)
            )
        except _Invalid as exc:
            reason = f"SenML record {index} of {count} (0-based): {exc.reason}"
            decoded.rejections.append(
                Rejection(exc.code, reason, _record_bytes(pack[index], payload), index)
            )


def _senml_metric(name: str, device_id: str) -> str:
    """The metric part of a resolved SenML name; the device part, if any, must be this device."""
    rest = name[len(DEVICE_URN):] if name.startswith(DEVICE_URN) else name
    cut = max(rest.rfind(":"), rest.rfind("/"))
    if cut < 0:
        return rest
    owner = rest[:cut]
    if owner != device_id:
        raise _Invalid(
            "wrong_device",
            f"the SenML name {_shown(name)} is for device {_shown(owner)}, but this is the topic"
            f" of {_shown(device_id)}; publish each device's readings on its own topic",
        )
    return rest[cut + 1:]


def _status(device_id: str, kind: str, document: Any, received_at: datetime) -> StatusUpdate:
    shape = '{"state": "online" | "offline", "ts": ..., "battery_pct": <number, optional>}'
    if not isinstance(document, dict):
        raise _Invalid("wrong_shape", f"expected a JSON object {shape}, got {_json_type(document)}")
    state = document.get("state")
    if state not in ("online", "offline"):
        got = "nothing" if state is None else _shown(state)
        raise _Invalid("wrong_shape", f'"state" must be "online" or "offline", got {got}')
    ts = _timestamp(document["ts"], received_at) if "ts" in document else received_at
    battery = document.get("battery_pct")
    if battery is not None:
        battery = _number("battery_pct", battery, METRICS[kind]["battery_pct"])
    return StatusUpdate(device_id, state == "online", ts, battery)


def _number(metric: str, value: Any, spec: tuple[float, float, str]) -> float:
    kind = type(value)
    if kind is not int and kind is not float:
        if value is None:
            raise _Invalid("bad_value", f"{metric} is null; leave it out when there is no value")
        hint = "send 1 or 0" if kind is bool else "send a JSON number"
        raise _Invalid("bad_value", f"{metric}: {_shown(value)} is {_json_type(value)}; {hint}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise _Invalid("bad_value", f"{metric}: {_shown(value)} is not a finite number")
    low, high, unit = spec
    if not low <= number <= high:
        raise _Invalid(
            "out_of_range", f"{metric} = {number:g} is outside {low:g} to {high:g} ({unit})"
        )
    return number


def _timestamp(raw: Any, received_at: datetime) -> datetime:
    """An aware datetime from ISO 8601 with an offset or Z, or from Unix epoch seconds."""
    kind = type(raw)
    if kind is str:
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise _Invalid(
                "bad_timestamp",
                f"ts {_shown(raw)} is not an ISO 8601 time; send e.g. 2026-11-22T08:15:00+08:00",
            ) from None
        if ts.utcoffset() is None:
            raise _Invalid(
                "bad_timestamp", f"ts {_shown(raw)} has no UTC offset; add one, e.g. +08:00 or Z"
            )
    elif kind is int or kind is float:
        if kind is float and not math.isfinite(raw):
            raise _Invalid("bad_timestamp", f"ts {raw} is not a number of Unix seconds")
        if raw >= 1e11:
            raise _Invalid(
                "bad_timestamp",
                f"ts {_shown(raw)} is too large for Unix seconds; if it is milliseconds,"
                " divide by 1000",
            )
        try:
            ts = datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise _Invalid("bad_timestamp", f"ts {_shown(raw)} is not a Unix time") from None
    else:
        raise _Invalid(
            "bad_timestamp",
            f"ts must be an ISO 8601 string with an offset or Unix seconds, got {_json_type(raw)}",
        )
    if ts - received_at > MAX_CLOCK_AHEAD:
        raise _Invalid(
            "future_timestamp",
            f"timestamp {_shown_ts(raw, ts)} is {duration_text(ts - received_at)} in the future;"
            " check the device clock",
        )
    if ts < EARLIEST_TS:
        raise _Invalid(
            "bad_timestamp",
            f"timestamp {_shown_ts(raw, ts)} is before 2000-01-01; the device clock is probably"
            " not set",
        )
    return ts


def _shown_ts(raw: str | float, ts: datetime) -> str:
    """A device's time as sent, with Unix seconds also as ISO 8601."""
    return raw if isinstance(raw, str) else f"{raw} ({ts.isoformat()})"


def _record_bytes(record: Any, payload: bytes) -> bytes:
    """What a dead letter keeps of one rejected record: the record as JSON."""
    try:
        return json.dumps(record).encode()
    except RecursionError:  # nested as deep as the parser allows: keep the whole message
        return payload


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _shown(value: Any, limit: int = 40) -> str:
    """A value sent by a device, as short JSON text (ASCII: safe to store whatever it holds)."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):  # nested as deep as the parser allows; a huge integer
        return _json_type(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
