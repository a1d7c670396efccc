"""The ingest side of MQTT: a persistent QoS 1 session whose messages are acked after commit.

paho-mqtt 2 with a fixed client id, ``manual_ack=True`` and a session that outlives the process
(MQTT 5: ``clean_start=False`` plus a session expiry; MQTT 3.1.1: ``clean_session=False``), so what
is published while ingest is down, and what it received but had not acknowledged, is delivered
again when it comes back. MQTT 5 is tried first; a broker that refuses it or does not answer it
(amqtt speaks 3.1.1 only) gets MQTT 3.1.1. Callbacks run on paho's network thread and only hand
messages over; paho reconnects by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cityops.platform.mqtt import parse_mqtt_url
from ingest.writer import Delivery

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps the session (and queues for it) this long
KEEPALIVE_S = 30
CONNACK_TIMEOUT_S = 3.0  # how long an MQTT 5 CONNECT may go unanswered before trying 3.1.1
SUBACK_TIMEOUT_S = 10.0
UNSUPPORTED_PROTOCOL = (0x84, 0x01)  # MQTT 5 and MQTT 3.1.1 codes for "unsupported version"


class MqttConnectError(ConnectionError):
    """The broker could not be reached or refused the connection; the message says why."""


class IngestMqttClient:
    """Subscribes to device topics at QoS 1 and hands each message to ``deliver``."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        filters: Sequence[str],
        deliver: Callable[[Delivery], None],
        receive_maximum: int,
        require_mqtt5: bool = False,
    ) -> None:
        self._address = parse_mqtt_url(url)
        self._where = f"{self._address.host}:{self._address.port}"  # for messages (no password)
        self.protocol: str | None = None  # "5" or "3.1.1" once connected
        self._client_id = client_id
        self._filters = list(filters)
        self._deliver = deliver
        self._receive_maximum = max(1, min(receive_maximum, 65535))
        self._require_mqtt5 = require_mqtt5
        self._client: mqtt.Client | None = None
        self._connection = 0  # counts successful CONNACKs; a delivery remembers its own
        self._accepting = True
        self._connected = False
        self._stopping = False
        self._answered = threading.Event()
        self._refusal: ReasonCode | None = None
        self._refusal_logged = False
        self._subscribed = threading.Event()
        self._refused_filters: list[str] = []

    def connect(self) -> None:
        """Connect (MQTT 5, else 3.1.1) and subscribe; paho's thread reconnects from then on.

        Returns once the subscriptions are in place (or resumed with the session). Raises
        :class:`MqttConnectError` when the broker cannot be reached or refuses us.
        """
        self._subscribed.clear()
        client = self._open(mqtt.MQTTv5)
        if client is None:
            if self._require_mqtt5:
                raise MqttConnectError(
                    f"the broker at {self._where} does not speak MQTT 5, which shared"
                    " subscriptions need"
                )
            log.info("broker does not speak MQTT 5; using MQTT 3.1.1",
                     extra={"broker": self._where})
            client = self._open(mqtt.MQTTv311)
            if client is None:
                raise MqttConnectError(f"the broker at {self._where} did not answer CONNECT")
        self._client = client
        self.protocol = "5" if client.protocol == mqtt.MQTTv5 else "3.1.1"
        problem = None
        if not self._subscribed.wait(SUBACK_TIMEOUT_S):
            problem = "did not confirm the subscriptions"
        elif self._refused_filters:
            problem = "refused to subscribe " + ", ".join(self._refused_filters)
        if problem:
            self.disconnect()
            raise MqttConnectError(f"the broker at {self._where} {problem}")

    def pause(self) -> None:
        """Stop handing messages over; those arriving later stay unacknowledged (redelivered)."""
        self._accepting = False

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge stored messages that came on the current connection.

        A message from an earlier connection is not acked: the broker redelivers it, and storing
        it again changes nothing.
        """
        client = self._client
        if client is None:
            return
        current = self._connection
        for delivery in deliveries:
            if delivery.qos and delivery.connection == current:
                client.ack(delivery.mid, delivery.qos)

    def disconnect(self) -> None:
        """Disconnect cleanly; the broker keeps the session for the next start."""
        client = self._client
        if client is None:
            return
        self._stopping = True
        client.disconnect()
        client.loop_stop()
        self._client = None

    def _new_client(self, protocol: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=protocol,
            clean_session=False if protocol != mqtt.MQTTv5 else None,
            manual_ack=True,
        )
        client.suppress_exceptions = True  # a failing callback must never end the network loop
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))  # such failures are logged
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if self._address.username is not None:
            client.username_pw_set(self._address.username, self._address.password)
        if self._address.tls:
            client.tls_set()  # the system's CA store (SSL_CERT_FILE names another)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _open(self, protocol: int) -> mqtt.Client | None:
        """Connect with one protocol version; None when the broker does not speak it."""
        client = self._new_client(protocol)
        properties = None
        if protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            # the broker may have this many unacknowledged messages out to us (Mosquitto's own
            # default is 20, which would cap a batch at 20 messages)
            properties.ReceiveMaximum = self._receive_maximum
        self._answered.clear()
        self._refusal = None
        try:
            client.connect(
                self._address.host, self._address.port, keepalive=KEEPALIVE_S,
                clean_start=False if protocol == mqtt.MQTTv5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except OSError as exc:
            reason = f"cannot reach the MQTT broker at {self._where}: {exc}"
            raise MqttConnectError(reason) from None
        client.loop_start()
        answered = self._answered.wait(CONNACK_TIMEOUT_S)
        if answered and self._connected:
            return client
        client.disconnect()
        client.loop_stop()
        refusal = self._refusal
        if refusal is not None and refusal.value not in UNSUPPORTED_PROTOCOL:
            raise MqttConnectError(f"the MQTT broker at {self._where} refused us: {refusal}")
        return None

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
        reason_code: ReasonCode, properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refusal = reason_code
            if self._connection and not self._refusal_logged:  # at start connect() raises instead
                self._refusal_logged = True
                log.warning("MQTT broker refuses to take us back; retrying",
                            extra={"broker": self._where, "reason": str(reason_code)})
        else:
            self._connection += 1
            self._connected = True
            self._refusal_logged = False
            if flags.session_present:
                self._subscribed.set()
            else:
                client.subscribe([(f, 1) for f in self._filters])
            log.log(
                logging.INFO if self._connection == 1 else logging.WARNING,
                "connected to the MQTT broker" if self._connection == 1
                else "reconnected to the MQTT broker",
                extra={"broker": self._where, "client_id": self._client_id,
                       "session_present": flags.session_present},
            )
        self._answered.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode, properties: Properties | None,
    ) -> None:
        was_connected, self._connected = self._connected, False
        self._answered.set()
        if was_connected and not self._stopping:
            log.warning("lost the MQTT broker; reconnecting",
                        extra={"broker": self._where, "reason": str(reason_code)})

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int,
        reason_codes: list[ReasonCode], properties: Properties | None,
    ) -> None:
        refused = [f for f, rc in zip(self._filters, reason_codes, strict=False) if rc.is_failure]
        if refused:
            log.error("MQTT broker refused subscriptions", extra={"filters": refused})
        self._refused_filters = refused
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._accepting:
            self._deliver(Delivery(
                message.topic, message.payload, datetime.now(UTC), message.mid, message.qos,
                self._connection,
            ))
