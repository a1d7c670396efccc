"""A device message as ingest decodes it: the readings that passed, a status update, and a
rejection (a dead letter, with a reason a person can act on) for the whole message or for each
record that failed. Ingest (``ingest.payloads``) makes them; the readings store
(:mod:`cityops.sensing.store`) writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cityops.sensing.readings import Reading

RejectionCode = Literal[
    "bad_topic",
    "unknown_device",
    "wrong_kind",
    "malformed_json",
    "wrong_shape",
    "bad_timestamp",
    "future_timestamp",
    "unknown_metric",
    "bad_value",
    "out_of_range",
    "unknown_unit",
    "wrong_device",
    "refused_by_database",
]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message, or one record of an array, was not accepted."""

    code: RejectionCode
    reason: str
    payload: bytes  # kept in the dead letter: the raw message, or the rejected record as JSON
    record: int | None = None  # index of the rejected record in an array, else None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A device's online/offline state (and battery) as of ``ts``."""

    device_id: str
    online: bool
    ts: datetime
    battery_pct: float | None


@dataclass(slots=True)
class Decoded:
    """What one MQTT message turned into."""

    topic: str
    device_id: str | None
    readings: list[Reading] = field(default_factory=list)
    status: StatusUpdate | None = None
    rejections: list[Rejection] = field(default_factory=list)
