"""The district simulator: the devices in the database send realistic telemetry over MQTT.

One MQTT client speaks for every device (QoS 1). At start each device gets a retained "online"
status, on a clean stop an "offline" one. Each step publishes, per device, one message with all its
readings in that stretch of simulated time (at most 15 minutes). Incidents are injected on a
schedule or on demand and written to ``sim_incidents`` as ground truth when injected.

Limitation: an MQTT client has one last will, so when the simulator dies without a clean stop the
devices' retained status stays "online"; only the readings stop.

Typical use (the demo)::

    clock = SimClock.catch_up(timedelta(hours=24), speed=360)
    devices = load_sim_devices(database_url)
    plan = default_incident_plan(devices, clock.start, seed=1, tz=tz)
    sim = Simulator(database_url, mqtt_url, Topics(prefix), seed=1, clock=clock,
                    incidents=plan, tz=tz, devices=devices)
    sim.start()
    ...
    sim.stop()
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from types import TracebackType
from typing import Literal
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from psycopg.types.json import Jsonb

from cityops.platform import db
from cityops.platform.mqtt import connect as mqtt_connect
from cityops.platform.topics import Topics
from cityops.simulation.clock import SimClock
from cityops.simulation.incidents import (
    DEVICE_KIND,
    IncidentKind,
    IncidentPlan,
    default_incident_plan,
    plan_incident,
)
from cityops.simulation.telemetry import (
    REPORT_INTERVAL,
    SimDevice,
    device_values,
    encode_status,
    encode_telemetry,
    grid_times,
    reading_times,
)
from cityops.simulation.water_use import METER_INTERVAL

__all__ = [
    "IncidentPlan",
    "SimClock",
    "SimDevice",
    "Simulator",
    "default_incident_plan",
    "load_sim_devices",
    "plan_incident",
]

log = logging.getLogger(__name__)

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
MAX_STEP = timedelta(minutes=15)


def load_sim_devices(database_url: str) -> list[SimDevice]:
    """Every device in the database, with its household's size and whether it is elderly alone."""
    with db.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.id, d.kind, d.household_id,"
            " coalesce(h.elderly_alone, false) AS elderly_alone, coalesce(h.members, 1) AS members"
            " FROM devices d LEFT JOIN households h ON h.id = d.household_id ORDER BY d.id"
        ).fetchall()
    return [SimDevice(**row) for row in rows]


def _record_incident(database_url: str, plan: IncidentPlan) -> int:
    with db.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO sim_incidents (kind, device_id, starts_at, ends_at, details)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (plan.kind, plan.device_id, plan.starts_at, plan.ends_at, Jsonb(dict(plan.details))),
        ).fetchone()
    assert row is not None
    return int(row["id"])


class _Publisher:
    """One paho client publishing at QoS 1; at most ``max_unacked`` messages await their ack."""

    def __init__(self, url: str, max_unacked: int) -> None:
        self._client = mqtt_connect(url, f"cityops-sim-{uuid.uuid4().hex[:8]}")
        self._client.on_publish = self._on_publish
        self._max_unacked = max_unacked
        self._acks = threading.Condition()
        self._sent = 0
        self._acked = 0
        self._aborted = False

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._acks:
            self._acked += 1
            self._acks.notify_all()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue one QoS 1 message, first waiting while too many await their ack.

        During a broker outage paho keeps the message and sends it after reconnecting.
        """
        with self._acks:
            self._acks.wait_for(lambda: self._aborted or self._unacked() < self._max_unacked)
            if self._aborted:
                raise ConnectionAbortedError("stopped while waiting for the broker")
            self._sent += 1
        self._client.publish(topic, payload, qos=1, retain=retain)

    def _unacked(self) -> int:
        return self._sent - self._acked

    def abort(self) -> None:
        """Make a publish that is waiting for acks give up."""
        with self._acks:
            self._aborted = True
            self._acks.notify_all()

    def close(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every message to be acknowledged, then disconnect.

        Returns whether all were acknowledged.
        """
        with self._acks:
            done = self._acks.wait_for(lambda: self._acked >= self._sent, timeout)
        self._client.disconnect()
        self._client.loop_stop()
        return done


class Simulator:
    """Publishes the telemetry of the district's devices and injects incidents.

    Run it in a thread with :meth:`start` / :meth:`stop`, or step it from the caller with
    :meth:`run_until`. Simulated time comes from ``clock`` alone, so no reading is ever stamped
    later than the real time. Readings are a pure function of ``seed``, device, time and
    incidents: the same seed and clock give the same readings. ``devices`` defaults to every
    device in the database (:func:`load_sim_devices`).
    """

    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        topics: Topics,
        *,
        seed: int,
        clock: SimClock,
        incidents: Iterable[IncidentPlan] = (),
        tz: tzinfo = DEFAULT_TZ,
        devices: Sequence[SimDevice] | None = None,
        tick_seconds: float = 1.0,
        max_unacked: int = 1000,
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.tz = tz
        self.devices = tuple(load_sim_devices(database_url) if devices is None else devices)
        self._database_url = database_url
        self._mqtt_url = mqtt_url
        self._topics = topics
        self._tick_seconds = tick_seconds
        self._max_unacked = max_unacked
        self._by_id = {d.id: d for d in self.devices}
        self._by_kind = {k: [d for d in self.devices if d.kind == k] for k in REPORT_INTERVAL}
        self._scheduled = sorted(incidents, key=lambda p: p.starts_at)
        for plan in self._scheduled:
            self._check(plan)
        self._active: dict[str, list[IncidentPlan]] = {}
        self._cursor = clock.start.replace(microsecond=0)
        self._counts = dict.fromkeys(
            ("messages", "readings", "values", "status_messages", "incidents"), 0
        )
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: _Publisher | None = None
        self._error: BaseException | None = None

    @property
    def sim_time(self) -> datetime:
        """Simulated time up to which every reading has been published."""
        return self._cursor

    def counters(self) -> dict[str, int]:
        """Telemetry messages, readings (timestamps), metric values, status messages, incidents."""
        return dict(self._counts)

    def start(self) -> None:
        """Connect, publish "online" for every device and simulate in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        self._open()
        self._thread = threading.Thread(
            target=self._run_thread, name="cityops-simulator", daemon=True
        )
        self._thread.start()
        log.info("simulator started", extra={"devices": len(self.devices)})

    def run_until(self, sim_time: datetime) -> None:
        """Simulate in the calling thread until ``sim_time``, paced by the clock."""
        if self._thread is not None:
            raise RuntimeError("the simulator is running in its thread; stop it first")
        self._stopping.clear()
        self._open()
        self._run(until=sim_time)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop simulating, publish "offline" for every device, wait for acks and disconnect.

        Raises RuntimeError when the background thread had stopped on an error.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._publisher is not None:
                self._publisher.abort()
                self._thread.join(timeout)
            self._thread = None
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            try:
                self._publish_status(publisher, "offline")
            except ConnectionAbortedError:
                log.warning("broker unreachable: offline statuses not sent")
            if not publisher.close(timeout):
                log.warning("some messages were not acknowledged before the disconnect")
            log.info("simulator stopped", extra=self.counters())
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError("the simulator had stopped on an error") from error

    def inject(
        self,
        kind: IncidentKind,
        device_id: str,
        at: datetime | None = None,
        *,
        duration: timedelta | None = None,
    ) -> IncidentPlan:
        """Inject an incident and record it at once; return its plan.

        It starts right after the readings published so far, or at ``at`` (not in the published
        past). Default parameters come from :func:`plan_incident`; a ``silent_morning`` starts at
        the next 21:40 local time.
        """
        with self._lock:
            earliest = self._cursor + timedelta(seconds=1)
            if at is None:
                at = earliest
            elif at < earliest:
                raise ValueError(f"readings up to {self._cursor} are published: inject later")
            plan = plan_incident(kind, device_id, at, seed=self.seed, tz=self.tz, duration=duration)
            self._check(plan)
            self._activate(plan)
            return plan

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _check(self, plan: IncidentPlan) -> None:
        device = self._by_id.get(plan.device_id)
        if device is None:
            raise ValueError(f"no device {plan.device_id!r} to inject {plan.kind} into")
        if device.kind != DEVICE_KIND[plan.kind]:
            needed = DEVICE_KIND[plan.kind]
            raise ValueError(f"{plan.kind} needs a {needed}; {device.id} is a {device.kind}")

    def _activate(self, plan: IncidentPlan) -> None:
        incident_id = _record_incident(self._database_url, plan)
        self._active.setdefault(plan.device_id, []).append(plan)
        self._counts["incidents"] += 1
        log.info(
            "incident injected",
            extra={"incident_id": incident_id, "kind": plan.kind, "device_id": plan.device_id},
        )

    def _open(self) -> None:
        if self._publisher is None:
            publisher = _Publisher(self._mqtt_url, self._max_unacked)
            self._publisher = publisher
            self._publish_status(publisher, "online")

    def _publish_status(self, publisher: _Publisher, state: Literal["online", "offline"]) -> None:
        payload = encode_status(state, self._cursor)
        for device in self.devices:
            publisher.publish(self._topics.status(device.kind, device.id), payload, retain=True)
            self._counts["status_messages"] += 1

    def _run_thread(self) -> None:
        try:
            self._run(until=None)
        except Exception as exc:
            self._error = exc
            log.exception("the simulator stopped on an error")

    def _run(self, until: datetime | None) -> None:
        while not self._stopping.is_set():
            target = self.clock.now().replace(microsecond=0)
            if until is not None:
                target = min(target, until)
            while self._cursor < target and not self._stopping.is_set():
                self._step(min(self._cursor + MAX_STEP, target))
            if until is not None and self._cursor >= until:
                return
            self._stopping.wait(self._tick_seconds)

    def _step(self, until: datetime) -> None:
        """Publish every reading in (sim_time, until], one message per device."""
        publisher = self._publisher
        assert publisher is not None
        with self._lock:
            after = self._cursor
            while self._scheduled and self._scheduled[0].starts_at <= until:
                self._activate(self._scheduled.pop(0))
            due = [k for k, every in REPORT_INTERVAL.items() if grid_times(every, after, until)]
            visit = [d for k in due for d in self._by_kind[k]]
            visit += [self._by_id[i] for i in self._active if self._by_id[i].kind not in due]
            for device in visit:
                plans = self._active.get(device.id, [])
                times = reading_times(device.kind, after, until, plans)
                if not times:
                    continue
                readings = [
                    (ts, device_values(device, ts, seed=self.seed, tz=self.tz, incidents=plans))
                    for ts in times
                ]
                topic = self._topics.telemetry(device.kind, device.id)
                publisher.publish(topic, encode_telemetry(readings))
                self._counts["messages"] += 1
                self._counts["readings"] += len(readings)
                self._counts["values"] += sum(len(values) for _, values in readings)
            self._cursor = until
            for device_id in list(self._active):
                kept = [p for p in self._active[device_id] if p.ends_at > until - METER_INTERVAL]
                if kept:
                    self._active[device_id] = kept
                else:
                    del self._active[device_id]
