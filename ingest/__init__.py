"""Ingest: MQTT device messages in, validated readings, device states and dead letters stored.

The CLI runs :class:`IngestService`; :func:`decode_message` is the pure decoder (docs/payloads.md).
"""

from ingest.mqtt_client import MqttConnectError
from ingest.payloads import Decoded, Rejection, StatusUpdate, decode_message
from ingest.service import IngestService

__all__ = [
    "Decoded",
    "IngestService",
    "MqttConnectError",
    "Rejection",
    "StatusUpdate",
    "decode_message",
]
