"""SenML (RFC 8428, JSON): resolve a pack into plain records, and the units CityOps accepts.

A pack is a JSON array of records. Base fields (``bn`` name, ``bt`` time, ``bu`` unit, ``bv``
value) apply to their own record and every later one until a record sets them again; a record's
name is ``bn + n``, its time ``bt + t`` and its value ``bv + v``. A resolved time below 2**28 is
relative to the time the message was received (RFC 8428 section 4.5.3), so ``t: -60`` is one minute
before receipt. Pure functions, no I/O, no clock reads: the receive time is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A JSON array whose first record is an object with one of these and no "values" is a SenML pack
# (the documented CityOps form has "values"); ingest.payloads decides with this.
SENML_KEYS = frozenset({"bn", "bt", "bu", "bv", "bs", "bver", "n"})
RELATIVE_LIMIT = 2**28  # resolved times below this are seconds relative to the receive time
VALUE_FIELDS = ("v", "vb", "vs", "vd", "s")
FIELDS = frozenset({"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s",
                    "t", "ut"})  # RFC 8428 section 4.1

# Our metric -> SenML unit -> factor into the metric's own unit. Units are RFC 8428 / RFC 8798
# symbols (case-sensitive; "L" is the secondary-registry litre).
UNITS: dict[str, dict[str, float]] = {
    "depth_mm": {"mm": 1.0, "cm": 10.0, "m": 1000.0},
    "volume_l": {"l": 1.0, "L": 1.0, "m3": 1000.0},
    "battery_pct": {"%EL": 1.0, "%": 1.0, "/": 100.0},
    "tilt_deg": {"deg": 1.0, "rad": 180.0 / math.pi},
    "lifted": {},
    "well_water_mm": {"mm": 1.0, "cm": 10.0, "m": 1000.0},
}


class SenmlError(ValueError):
    """One record cannot be resolved; ``code`` is a rejection code, the message a reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Record:
    """A resolved SenML record: full name, absolute Unix time, unit and value."""

    name: str
    time: float
    unit: str | None
    value: float | bool


def resolve(pack: list[Any], received_at: float) -> list[Record | SenmlError]:
    """One :class:`Record` or :class:`SenmlError` per record of ``pack``, in order.

    A base field that is unusable (``"bt": "yesterday"``) rejects its record and every later
    record that relies on it, until a record sets that base field again.
    """
    base: dict[str, Any] = {"bn": "", "bt": 0.0, "bu": None, "bv": 0.0}
    broken: dict[str, SenmlError] = {}  # base fields whose latest setting was unusable
    out: list[Record | SenmlError] = []
    for item in pack:
        if type(item) is not dict:
            out.append(SenmlError("wrong_shape", "a SenML record must be a JSON object"))
            continue
        for key in BASE_FIELDS.keys() & item.keys():
            what, code, check = BASE_FIELDS[key]
            value = check(item[key], key, what, code)
            if isinstance(value, SenmlError):
                broken[key] = value
            else:
                base[key] = value
                broken.pop(key, None)
        try:
            if broken:
                raise next(iter(broken.values()))
            out.append(_record(item, base, received_at))
        except SenmlError as exc:
            out.append(exc)
    return out


def _record(item: dict[str, Any], base: dict[str, Any], received_at: float) -> Record:
    extra = item.keys() - FIELDS
    unknown = sorted(k for k in extra if k.endswith("_")) if extra else None
    if unknown:
        raise SenmlError(
            "wrong_shape",
            f"field {unknown[0]!r} must be understood (RFC 8428 section 4.4) and CityOps does not"
            " know it; leave it out",
        )
    name = base["bn"] + (_checked(_text(item["n"], "n", "name")) if "n" in item else "")
    if not name:
        raise SenmlError("unknown_metric", 'no name: set "n" (the metric) or "bn"')
    present = [f for f in VALUE_FIELDS if f in item]
    if not present and "bv" not in item:
        raise SenmlError("wrong_shape", f'{name}: no value; send "v" (a number)')
    if len(present) > 1:
        raise SenmlError("wrong_shape", f'{name}: several values ({", ".join(present)}); send one')
    field = present[0] if present else "v"
    if field in ("vs", "vd"):
        raise SenmlError("bad_value", f'{name}: a string or data value ("{field}"); send "v"')
    if field == "s":
        raise SenmlError(
            "bad_value", f'{name}: a sum ("s") is not stored; send the reading itself as "v"'
        )
    value: float | bool
    if field == "vb":
        value = item["vb"]
        if type(value) is not bool:
            raise SenmlError("bad_value", f'{name}: "vb" must be true or false')
    else:
        number = _number(item.get("v", 0.0), "v", "value", "bad_value")
        if isinstance(number, SenmlError):
            raise SenmlError(number.code, f"{name}: {number.reason}")
        value = base["bv"] + number
    time = base["bt"] + _checked(_number(item.get("t", 0.0), "t", "time", "bad_timestamp"))
    if time < RELATIVE_LIMIT:
        time += received_at
    unit = _checked(_text(item["u"], "u", "unit")) if "u" in item else base["bu"]
    return Record(name, time, unit or None, value)


def _checked(value: Any) -> Any:
    if isinstance(value, SenmlError):
        raise value
    return value


def _text(raw: Any, key: str, what: str, code: str = "wrong_shape") -> Any:
    if type(raw) is not str:
        return SenmlError(code, f'"{key}" ({what}) must be a string')
    return raw


def _number(raw: Any, key: str, what: str, code: str) -> Any:
    kind = type(raw)
    if kind is not int and kind is not float:
        return SenmlError(code, f'"{key}" ({what}) must be a JSON number')
    try:
        number = float(raw)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        return SenmlError(code, f'"{key}" ({what}) is not a finite number')
    return number


# Base field -> (what it is, rejection code, check); see resolve().
BASE_FIELDS: dict[str, tuple[str, str, Callable[[Any, str, str, str], Any]]] = {
    "bn": ("base name", "wrong_shape", _text),
    "bt": ("base time", "bad_timestamp", _number),
    "bu": ("base unit", "wrong_shape", _text),
    "bv": ("base value", "bad_value", _number),
}


def convert(name: str, metric: str, value: float, unit: str | None) -> float:
    """``value`` of the record named ``name``, sent in ``unit``, in the metric's own unit.

    Raises :class:`SenmlError` ``unknown_unit`` for a missing unit where one is needed, or a unit
    that does not fit the metric.
    """
    accepted = UNITS[metric]
    if unit is None:
        if not accepted:
            return value
        raise SenmlError("unknown_unit", f"{name}: no unit; send {_choices(accepted)}")
    factor = accepted.get(unit)
    if factor is None:
        if not accepted:
            raise SenmlError("unknown_unit", f'{name} takes no unit, got "{unit}"')
        raise SenmlError(
            "unknown_unit",
            f'{name}: unit "{unit}" is not accepted for {metric}; send {_choices(accepted)}',
        )
    return value * factor


def _choices(accepted: dict[str, float]) -> str:
    names = [f'"{u}"' for u in accepted]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
