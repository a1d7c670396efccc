"""MQTT connection helpers (paho-mqtt 2) shared by the notifier and the simulator."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker is and how to log in."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://user:pass@host:port`` (``mqtts://`` for TLS, default ports 1883/8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT URL: {parts.scheme}://{parts.hostname or ''}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def connect(
    url: str,
    client_id: str,
    *,
    persistent: bool = False,
    timeout: float = 10.0,
    will: tuple[str, bytes] | None = None,
    setup: Callable[[mqtt.Client], None] | None = None,
) -> mqtt.Client:
    """A connected client with its network loop running.

    Tries MQTT 5 first and falls back to 3.1.1 when the broker refuses it (amqtt).
    ``persistent`` keeps the session (queued QoS 1 messages) across reconnects and restarts.
    ``setup`` configures the client before it connects (``on_message``, manual acks: messages of
    a kept session may arrive right after the connection is accepted).
    """
    last_error: Exception | None = None
    for protocol in (mqtt.MQTTv5, mqtt.MQTTv311):
        client = _client(url, client_id, protocol, persistent, will)
        if setup is not None:
            setup(client)
        connected = threading.Event()
        outcome: dict[str, object] = {}

        def on_connect(_c, _u, _flags, reason_code, _props, ev=connected, out=outcome):  # type: ignore[no-untyped-def]
            out["rc"] = reason_code
            ev.set()

        client.on_connect = on_connect
        address = parse_mqtt_url(url)
        props = None
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 7 * 24 * 3600 if persistent else 0
        try:
            client.connect(
                address.host,
                address.port,
                keepalive=30,
                clean_start=(not persistent) if protocol == mqtt.MQTTv5
                else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the MQTT broker at {address.host}:{address.port}: {exc}"
            ) from exc
        client.loop_start()
        if connected.wait(timeout) and not getattr(outcome.get("rc"), "is_failure", True):
            client.on_connect = None
            return client
        client.loop_stop()
        client.disconnect()
        reason = outcome.get("rc", "no answer")
        last_error = ConnectionError(f"the broker refused the connection: {reason}")
    raise last_error or ConnectionError("cannot connect to the MQTT broker")


def _client(
    url: str, client_id: str, protocol: int, persistent: bool, will: tuple[str, bytes] | None
) -> mqtt.Client:
    address = parse_mqtt_url(url)
    kwargs: dict[str, object] = {"client_id": client_id, "protocol": protocol}
    if protocol == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)  # type: ignore[arg-type]
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.max_queued_messages_set(0)
    return client
