"""The MQTT topic scheme, shared by ingest, the notifier and the simulator.

``<prefix>/<kind>/<device_id>/telemetry``  readings (device -> CityOps), QoS 1
``<prefix>/<kind>/<device_id>/status``     online/offline, retained, also the device's last will
``<prefix>/dispatch/<worker_id>``          tasks for a grid worker (CityOps -> worker), QoS 1
``<prefix>/dispatch/<worker_id>/ack``      a worker's acknowledgement (worker -> CityOps)
``<prefix>/dispatch/<worker_id>/ack/result``  CityOps' answer to an acknowledgement, not retained
``<prefix>/centre/<cell_code>``            escalations to a street or the district centre, QoS 1

The prefix is ``cityops/v1`` unless ``CITYOPS_TOPIC_PREFIX`` says otherwise (tests use a prefix of
their own so that runs sharing one broker never see each other's messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_PREFIX = "cityops/v1"
DEVICE_KINDS: tuple[str, ...] = ("water_meter", "flood_gauge", "manhole_cover")
SHARED_GROUP = "cityops-ingest"

Channel = Literal["telemetry", "status"]


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic."""

    kind: str
    device_id: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def telemetry(self, kind: str, device_id: str) -> str:
        """Topic a device publishes its readings on."""
        return f"{self.prefix}/{kind}/{device_id}/telemetry"

    def status(self, kind: str, device_id: str) -> str:
        """Topic of a device's online/offline status (retained; also its last will)."""
        return f"{self.prefix}/{kind}/{device_id}/status"

    def dispatch(self, worker_id: str) -> str:
        """Topic a grid worker's phone subscribes to for its tasks."""
        return f"{self.prefix}/dispatch/{worker_id}"

    def dispatch_ack(self, worker_id: str) -> str:
        """Topic a grid worker's phone publishes acknowledgements on."""
        return f"{self.prefix}/dispatch/{worker_id}/ack"

    def dispatch_acks(self) -> str:
        """Filter for every worker's acknowledgements."""
        return f"{self.prefix}/dispatch/+/ack"

    def dispatch_ack_result(self, worker_id: str) -> str:
        """Topic CityOps answers a worker's acknowledgement on (accepted or refused, why)."""
        return f"{self.prefix}/dispatch/{worker_id}/ack/result"

    def centre(self, cell_code: str) -> str:
        """Topic of a street or the district centre's escalations (the wall screen listens)."""
        return f"{self.prefix}/centre/{cell_code}"

    def device_subscriptions(self, shared: bool = False) -> list[str]:
        """Filters for all device traffic; ``shared`` uses the MQTT 5 shared-subscription group."""
        filters = [f"{self.prefix}/+/+/telemetry", f"{self.prefix}/+/+/status"]
        if shared:
            return [f"$share/{SHARED_GROUP}/{f}" for f in filters]
        return filters

    def parse_device_topic(self, topic: str) -> DeviceTopic:
        """Split a device topic; raise ValueError with a reason when it is not one."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise ValueError(f"topic {topic!r} does not start with {head!r}")
        parts = topic[len(head):].split("/")
        if len(parts) != 3:
            raise ValueError(f"topic {topic!r} is not {self.prefix}/<kind>/<device_id>/<channel>")
        kind, device_id, channel = parts
        if kind not in DEVICE_KINDS:
            known = ", ".join(DEVICE_KINDS)
            raise ValueError(f"unknown device kind {kind!r} in topic (known: {known})")
        if channel not in ("telemetry", "status"):
            raise ValueError(f"unknown channel {channel!r} in topic (expected telemetry or status)")
        return DeviceTopic(kind, device_id, channel)  # type: ignore[arg-type]
