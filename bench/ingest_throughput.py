"""Ingest throughput: CityOps ingest against a bare paho subscriber on the same message stream.

What it measures. On a private Mosquitto (``cityops.platform.embedded.start_broker`` under /tmp), a
publisher in a separate process sends ``--messages`` telemetry messages (default 20,000) of
``--readings`` readings each (default 10, the simulator's encoding) at QoS 1, round-robin over
``--devices`` flood gauges (default 200). Two consumers take that stream, one at a time:

* **bare**: a paho-mqtt subscriber that does nothing but receive and acknowledge, configured like
  ingest's MQTT client (MQTT 5, persistent session, QoS 1, manual acks, the same receive maximum).
  It is the ceiling for a Python consumer on this broker and machine;
* **ingest**: ``IngestService`` storing into a scratch PostgreSQL database (decode, validate, COPY,
  commit, then acknowledge). Its count is of readings *committed*.

Each consumer is timed in two modes, the same way for both:

* **live**: the consumer is subscribed, then the publisher starts; timed from the publisher's
  start until the consumer has handled the last message (bare: received and acked it; ingest:
  committed its readings). The publisher runs alongside, so this is also bounded by how fast it
  publishes (its own rate is printed too);
* **backlog**: everything is published while the consumer is down (its persistent session queues
  it on the broker); timed from the consumer's start until it has handled the last message.

It prints seconds, messages/s and readings/s for both consumers side by side, and the ratio ingest
msgs/s / bare msgs/s. Each phase uses a topic prefix and client id of its own, and the readings
table is emptied before each ingest phase, so the phases do not see each other's traffic.

Then, once, the **alert delay**: ingest with streaming detection wired as ``cityops ingest`` wires
it (``make_evaluator`` with default settings, ``DetectionPipeline`` fed by ingest's
``on_committed``), while the publisher sends ``--latency-rate`` messages/s (default 2,000) for
``--latency-seconds`` (15), each one flood-gauge reading about 30 cm deep, over the alert levels,
so every evaluation opens or refreshes the gauge's alert. Per message: from the wall-clock time it
was published to the moment the detection pass that evaluated its reading had committed its alert
write; printed as p50, p99 and max.

How to run (from the repository root; PostgreSQL must accept the admin URL, and mosquitto must be
installed; the default run, 3 rounds of the four phases and the alert-delay run, takes two to
three minutes)::

    .venv/bin/python -m bench.ingest_throughput
    .venv/bin/python -m bench.ingest_throughput --messages 50000 --devices 1000 --batch-size 2000

Progress goes to stderr, the figures to stdout. The scratch database, the broker and its directory
are removed at the end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from psycopg.types.json import Json

from bench import DEFAULT_ADMIN_URL, progress, scratch_database, scratch_directory, server_version
from cityops.app.wiring import load_grid_index, make_evaluator
from cityops.cases.opening import alert_opener
from cityops.org.grids import Cell, district_code
from cityops.platform import db, embedded
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.detection import DetectionPipeline
from cityops.sensing.readings import Reading
from cityops.simulation.district import COUNTY, OUTLINE
from cityops.simulation.telemetry import encode_telemetry
from ingest import IngestService

KIND = "flood_gauge"
METRIC = "depth_mm"
READING_STEP = timedelta(minutes=1)  # between consecutive readings of one device
PUBLISH_INFLIGHT = 1000  # the publisher's unacknowledged QoS 1 messages (Mosquitto's limit too)
POLL_S = 0.005  # how often the consumers' counts are looked at while timing
PROGRESS_EVERY_S = 5.0
SESSION_EXPIRY_S = 3600
CONNECT_TIMEOUT_S = 10.0
ALERT_DEPTH_MM = 300.0  # over the default street levels of 150 and 270 mm: every reading alerts
HISTORY_READINGS = 5  # per gauge, stored before the latency stream: the flood rule needs 3


@dataclass(frozen=True)
class Workload:
    """What the publisher sends; every phase sends exactly this, on its own topic prefix."""

    messages: int
    devices: int
    readings: int  # per message
    first_ts: float  # epoch seconds of the first reading of every device
    alerting: bool = False  # every depth over the flood levels (the latency run), else 0..499 mm

    @property
    def total_readings(self) -> int:
        return self.messages * self.readings

    def device_id(self, index: int) -> str:
        return f"BENCH{index:06d}"

    def depth(self, sequence: int, k: int) -> float:
        """The depth a device sends: alerting, water a few mm either side of 30 cm."""
        if self.alerting:
            return ALERT_DEPTH_MM + (sequence + k) % 5
        return float((sequence + k) % 500)

    def first_reading(self, m: int) -> tuple[str, datetime]:
        """(device id, timestamp) of the first reading of message ``m``."""
        first = datetime.fromtimestamp(self.first_ts, UTC)
        return self.device_id(m % self.devices), first + READING_STEP * (
            m // self.devices * self.readings)

    def payloads(self, topics: Topics) -> list[tuple[str, bytes]]:
        """(topic, payload) of every message: round-robin over devices, distinct timestamps."""
        first = datetime.fromtimestamp(self.first_ts, UTC)
        out = []
        for m in range(self.messages):
            device, sequence = m % self.devices, m // self.devices
            readings = []
            for k in range(self.readings):
                ts = first + READING_STEP * (sequence * self.readings + k)
                readings.append((ts, {METRIC: self.depth(sequence, k)}))
            topic = topics.telemetry(KIND, self.device_id(device))
            out.append((topic, encode_telemetry(readings)))
        return out


# --- the publisher, in a process of its own (no GIL shared with the consumer) -------------------


def publisher_main(
    port: int, prefix: str, workload: Workload, rate: float | None, pipe: Connection
) -> None:
    """Build the payloads, connect, say "ready", wait for "go", publish all (as fast as possible,
    or ``rate`` messages/s), send the seconds and the wall-clock time of each publish."""
    payloads = workload.payloads(Topics(prefix))
    connected = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(PUBLISH_INFLIGHT)
    client.max_queued_messages_set(0)  # no limit on paho's own queue
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S):
            raise RuntimeError("the publisher could not connect to the broker")
        pipe.send("ready")
        pipe.recv()  # "go"
        started = time.monotonic()
        infos: list[mqtt.MQTTMessageInfo] = []
        stamps: list[float] = []  # wall-clock publish times, at a steady rate only
        for m, (topic, payload) in enumerate(payloads):
            if rate is not None:
                ahead = started + m / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                stamps.append(time.time())
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(120)
            if not info.is_published():
                raise RuntimeError("the broker did not acknowledge every message within 120 s")
        pipe.send((time.monotonic() - started, stamps))
    finally:
        client.disconnect()
        client.loop_stop()


class Publisher:
    """The publisher process of one phase, ready to go once constructed."""

    def __init__(
        self, port: int, prefix: str, workload: Workload, rate: float | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=publisher_main, args=(port, prefix, workload, rate, child), daemon=True,
        )
        self._process.start()
        child.close()
        if not self._pipe.poll(60) or self._pipe.recv() != "ready":
            self.close()
            raise RuntimeError("the publisher process did not get ready")

    def go(self) -> None:
        self._pipe.send("go")

    def seconds(self, timeout: float) -> float:
        """Wait for the publisher to finish; the seconds it took from "go" to the last PUBACK."""
        return self.finished(timeout)[0]

    def finished(self, timeout: float) -> tuple[float, list[float]]:
        """Wait for the publisher to finish: the seconds from "go" to the last PUBACK, and, at a
        steady rate, the wall-clock time (epoch s) each message was published."""
        if not self._pipe.poll(timeout):
            raise TimeoutError(f"the publisher did not finish within {timeout:.0f} s")
        seconds, stamps = self._pipe.recv()
        self._process.join(10)
        return float(seconds), list(stamps)

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(10)
        self._pipe.close()


# --- the two consumers --------------------------------------------------------------------------


class Consumer(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def handled(self) -> int:
        """Messages fully handled so far."""
        ...


class BareSubscriber:
    """paho-mqtt at QoS 1 with manual acks that acks each message as it arrives, and counts it.

    Connected like ingest's client: MQTT 5, ``clean_start=False`` with a session expiry (so a
    backlog queues while it is down), the same receive maximum; subscribes only without a session.
    """

    def __init__(self, port: int, topics: Topics, client_id: str, receive_maximum: int) -> None:
        self._port = port
        self._filters = topics.device_subscriptions()
        self._client_id = client_id
        self._receive_maximum = receive_maximum
        self._client: mqtt.Client | None = None
        self._ready = threading.Event()
        self._count = 0

    def start(self) -> None:
        self._ready.clear()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self._ready.set()
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = self._receive_maximum
        client.connect("127.0.0.1", self._port, clean_start=False, properties=properties)
        client.loop_start()
        self._client = client
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            raise RuntimeError("the bare subscriber could not connect and subscribe")

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def handled(self) -> int:
        return self._count

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
        reason_code: ReasonCode, properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            return
        if flags.session_present:
            self._ready.set()
        else:
            client.subscribe([(f, 1) for f in self._filters])

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        client.ack(message.mid, message.qos)
        self._count += 1


class IngestConsumer:
    """CityOps ingest; a message counts as handled once its readings are committed."""

    def __init__(
        self, database_url: str, mqtt_url: str, topics: Topics, client_id: str,
        args: argparse.Namespace,
    ) -> None:
        self._service = IngestService(
            database_url, mqtt_url, topics=topics, client_id=client_id,
            batch_size=args.batch_size, batch_ms=args.batch_ms,
        )
        self._per_message = args.readings

    def start(self) -> None:
        self._service.start()

    def stop(self) -> None:
        self._service.stop(timeout=10)

    def handled(self) -> int:
        counters = self._service.counters()
        if counters["dead_letters"]:
            raise RuntimeError(f"ingest refused messages (dead letters): {counters}")
        return counters["readings_stored"] // self._per_message


# --- timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    seconds: float
    messages: int
    readings: int

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds


def wait_until_handled(
    label: str, consumer: Consumer, expected: int, started: float, timeout: float
) -> float:
    """Poll the consumer until it has handled ``expected`` messages; return the elapsed seconds."""
    next_report = started + PROGRESS_EVERY_S
    while True:
        count = consumer.handled()
        now = time.monotonic()
        if count >= expected:
            return now - started
        if now - started > timeout:
            raise TimeoutError(f"{label}: {count:,} of {expected:,} messages after {timeout:.0f} s")
        if now >= next_report:
            progress(f"  {label}: {count:,} of {expected:,} messages")
            next_report += PROGRESS_EVERY_S
        time.sleep(POLL_S)


def run_live(
    label: str, make: Callable[[], Consumer], port: int, topics: Topics, workload: Workload,
    timeout: float, quiesce: Callable[[], None],
) -> tuple[Timing, float]:
    """Consumer subscribed, then the publisher starts. Returns the timing and the publisher's s."""
    progress(f"{label}: starting the consumer and the publisher")
    publisher = Publisher(port, topics.prefix, workload)
    consumer = make()
    try:
        consumer.start()
        try:
            quiesce()
            started = time.monotonic()
            publisher.go()
            seconds = wait_until_handled(label, consumer, workload.messages, started, timeout)
            published = publisher.seconds(timeout)
        finally:
            consumer.stop()
    finally:
        publisher.close()
    return Timing(seconds, workload.messages, workload.total_readings), published


def run_backlog(
    label: str, make: Callable[[], Consumer], port: int, topics: Topics, workload: Workload,
    timeout: float, quiesce: Callable[[], None],
) -> Timing:
    """Session made, consumer down, everything published, then the consumer drains it."""
    progress(f"{label}: making the session, then publishing while the consumer is down")
    session = make()
    session.start()
    session.stop()
    publisher = Publisher(port, topics.prefix, workload)
    try:
        publisher.go()
        publisher.seconds(timeout)
    finally:
        publisher.close()
    progress(f"{label}: {workload.messages:,} messages queued on the broker; draining")
    quiesce()
    consumer = make()
    started = time.monotonic()
    consumer.start()
    try:
        seconds = wait_until_handled(label, consumer, workload.messages, started, timeout)
    finally:
        consumer.stop()
    return Timing(seconds, workload.messages, workload.total_readings)


# --- the database -------------------------------------------------------------------------------


def prepare_database(url: str, workload: Workload) -> None:
    """Migrate the scratch database and register one district cell and the benchmark's devices."""
    db.upgrade(url)
    cell = Cell(district_code(COUNTY), "district", "Benchmark district", None, OUTLINE).to_row()
    centre = OUTLINE.representative_point()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
            " centroid_lat) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)",
            (cell["code"], cell["level"], cell["name"], None, Json(cell["geometry"]),
             cell["centroid_lon"], cell["centroid_lat"]),
        )
        with cur.copy("COPY devices (id, kind, grid_code, lon, lat, label) FROM STDIN") as copy:
            for i in range(workload.devices):
                copy.write_row((workload.device_id(i), KIND, cell["code"], centre.x, centre.y,
                                f"Benchmark flood gauge {i}"))


def reset_readings(url: str) -> None:
    """Empty the readings table and the devices' last-seen state: each ingest run starts alike."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE readings")
        conn.execute("UPDATE devices SET last_seen = NULL, battery_pct = NULL")


def checkpoint(url: str) -> None:
    """Flush PostgreSQL's dirty buffers now rather than in the middle of a timed run."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def stored_readings(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


def readings_engine(url: str) -> str:
    with psycopg.connect(url) as conn:
        return db.readings_engine(conn)


# --- alert delay at a steady rate ---------------------------------------------------------------


class TimedPipeline(DetectionPipeline):
    """The detection pipeline, noting when each reading was handed over by ingest (committed)
    and when its evaluation was committed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored_at: dict[tuple[str, datetime], float] = {}  # (device, ts) -> epoch s
        self.done_at: dict[tuple[str, datetime], float] = {}

    def submit(self, readings: list[Reading]) -> None:
        committed = time.time()  # ingest calls this right after its commit
        for r in readings:
            self.stored_at.setdefault((r.device_id, r.ts), committed)
        super().submit(readings)

    def process(self, readings: list[Reading]) -> None:
        super().process(readings)  # returns once the alerts of these readings are committed
        finished = time.time()
        for r in readings:
            self.done_at.setdefault((r.device_id, r.ts), finished)


@dataclass(frozen=True)
class Latency:
    delays_s: list[float]  # per message, publish to alert committed
    stored_s: list[float]  # per message, publish to ingest's commit of its reading
    publisher_s: float
    evaluations: int
    alerts_opened: int
    alerts_repeated: int


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed_history(url: str, workload: Workload) -> None:
    """A few alerting readings per gauge just before the stream, so its first message alerts."""
    first = datetime.fromtimestamp(workload.first_ts, UTC)
    copy_sql = "COPY readings (device_id, metric, ts, value) FROM STDIN"
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for i in range(workload.devices):
            for k in range(HISTORY_READINGS, 0, -1):
                copy.write_row((workload.device_id(i), METRIC, first - READING_STEP * k,
                                ALERT_DEPTH_MM + k % 5))


def run_latency(url: str, broker: embedded.EmbeddedBroker, args: argparse.Namespace) -> Latency:
    """Ingest and streaming detection as ``cityops ingest`` wires them (default settings), fed
    ``--latency-rate`` messages/s of one alerting flood-gauge reading each; the delay of every
    message from its publish to the commit of the alert write its reading led to."""
    messages = round(args.latency_rate * args.latency_seconds)
    per_device = -(-messages // args.devices)
    first = datetime.now(UTC) - timedelta(hours=1) - READING_STEP * per_device
    workload = Workload(messages, args.devices, 1, first.timestamp(), alerting=True)
    name = f"latency-{uuid.uuid4().hex[:6]}"
    topics = Topics(f"bench/{name}")
    reset_readings(url)
    seed_history(url, workload)
    checkpoint(url)
    settings = Settings()
    progress(f"latency: {messages:,} messages at {args.latency_rate:,.0f} msgs/s through ingest"
             " and detection")
    with ExitStack() as stack:
        database = Database.open(url, max_size=4)
        stack.callback(database.close)
        pipeline = TimedPipeline(database, make_evaluator(settings),
                                 on_opened=alert_opener(settings, load_grid_index(database)))
        pipeline.start()
        stack.callback(pipeline.stop)
        service = IngestService(
            url, broker.url, topics=topics, client_id=name, batch_size=args.batch_size,
            batch_ms=args.batch_ms, on_committed=pipeline.submit,
        )
        service.start()
        stack.callback(service.stop, 10)
        publisher = Publisher(broker.port, topics.prefix, workload, rate=args.latency_rate)
        stack.callback(publisher.close)
        publisher.go()
        published, stamps = publisher.finished(args.timeout)
        deadline = time.monotonic() + args.timeout
        while len(pipeline.done_at) < messages:
            if time.monotonic() > deadline or pipeline.stats.errors:
                raise RuntimeError(f"latency: {len(pipeline.done_at):,} of {messages:,} readings"
                                   f" evaluated; detection {pipeline.stats}")
            time.sleep(POLL_S)
        stats = pipeline.stats
    if stats.alerts_opened != workload.devices or (
            stats.alerts_opened + stats.alerts_repeated != stats.evaluations):
        raise RuntimeError(f"latency: not every evaluation wrote its gauge's alert: {stats}")
    keys = [workload.first_reading(m) for m in range(messages)]
    delays = [pipeline.done_at[key] - stamps[m] for m, key in enumerate(keys)]
    stored = [pipeline.stored_at[key] - stamps[m] for m, key in enumerate(keys)]
    return Latency(delays, stored, published, stats.evaluations, stats.alerts_opened,
                   stats.alerts_repeated)


# --- the benchmark ------------------------------------------------------------------------------


@dataclass
class Results:
    bare: dict[str, list[Timing]]
    ingest: dict[str, list[Timing]]
    publisher_s: list[float]


def median_timing(timings: list[Timing]) -> Timing:
    """The run of median duration (the only one when there is one round)."""
    ordered = sorted(timings, key=lambda t: t.seconds)
    return ordered[(len(ordered) - 1) // 2]


def run(args: argparse.Namespace) -> None:
    first = datetime.now(UTC) - timedelta(days=1) - READING_STEP * (
        -(-args.messages // args.devices) * args.readings
    )
    workload = Workload(args.messages, args.devices, args.readings, first.timestamp())
    receive_maximum = 2 * args.batch_size  # what IngestService asks the broker for
    results = Results({"live": [], "backlog": []}, {"live": [], "backlog": []}, [])
    with ExitStack() as stack:
        progress("creating the scratch database and starting a private mosquitto")
        url = stack.enter_context(scratch_database(args.database_url))
        prepare_database(url, workload)
        engine = readings_engine(url)
        directory = stack.enter_context(scratch_directory("cityops-bench-ingest-"))
        broker = embedded.start_broker(directory, prefer="mosquitto")
        stack.callback(broker.stop)
        version = server_version(url)
        quiesce = partial(checkpoint, url)

        for round_no in range(1, args.rounds + 1):
            tag = f"round {round_no}/{args.rounds}"
            for mode in ("live", "backlog"):
                for kind in ("bare", "ingest"):
                    name = f"{kind}-{mode}-{round_no}-{uuid.uuid4().hex[:6]}"
                    topics = Topics(f"bench/{name}")
                    label = f"{tag} {mode} {kind}"
                    make: Callable[[], Consumer]
                    if kind == "bare":
                        make = partial(BareSubscriber, broker.port, topics, name, receive_maximum)
                    else:
                        reset_readings(url)
                        make = partial(IngestConsumer, url, broker.url, topics, name, args)
                    if mode == "live":
                        timing, published = run_live(
                            label, make, broker.port, topics, workload, args.timeout, quiesce
                        )
                        results.publisher_s.append(published)
                    else:
                        timing = run_backlog(
                            label, make, broker.port, topics, workload, args.timeout, quiesce
                        )
                    if kind == "ingest" and stored_readings(url) != workload.total_readings:
                        raise RuntimeError(f"{label}: the readings table does not hold every"
                                           f" reading ({stored_readings(url):,})")
                    (results.bare if kind == "bare" else results.ingest)[mode].append(timing)
                    progress(f"{label}: {timing.seconds:.2f} s, {timing.msgs_per_s:,.0f} msgs/s")
        latency = run_latency(url, broker, args)
        progress("cleaning up")
    report(args, workload, results, latency, engine, version)


def report(
    args: argparse.Namespace, workload: Workload, results: Results, latency: Latency, engine: str,
    version: str,
) -> None:
    rounds = f", median of {args.rounds} rounds" if args.rounds > 1 else ""
    print(f"ingest throughput: {workload.messages:,} messages x {workload.readings} readings"
          f" (QoS 1) from {workload.devices:,} devices{rounds}")
    print(f"broker: private mosquitto; database: PostgreSQL {version} ({engine});"
          f" ingest batch {args.batch_size} / {args.batch_ms} ms; {os.cpu_count()} CPUs")
    print()
    header = f"{'':8} {'bare paho subscriber (received+acked)':>40}   " \
             f"{'CityOps ingest (committed)':>40}   {'ingest/bare':>11}"
    print(header)
    print(f"{'mode':8} {'s':>8} {'msgs/s':>12} {'readings/s':>18}   "
          f"{'s':>8} {'msgs/s':>12} {'readings/s':>18}   {'msgs/s':>11}")
    for mode in ("live", "backlog"):
        bare = median_timing(results.bare[mode])
        ingest = median_timing(results.ingest[mode])
        print(f"{mode:8} {bare.seconds:8.2f} {bare.msgs_per_s:12,.0f} {bare.readings_per_s:18,.0f}"
              f"   {ingest.seconds:8.2f} {ingest.msgs_per_s:12,.0f}"
              f" {ingest.readings_per_s:18,.0f}   {ingest.msgs_per_s / bare.msgs_per_s:11.2f}")
    published = statistics.median(results.publisher_s)
    print()
    print(f"publisher in the live runs: {published:.2f} s for {workload.messages:,} messages"
          f" ({workload.messages / published:,.0f} msgs/s, median); a live figure near it is"
          " bounded by the publisher")
    messages = len(latency.delays_s)
    print()
    print(f"alert delay at a steady {args.latency_rate:,.0f} msgs/s: {messages:,} messages of one"
          f" flood-gauge reading over the alert level, {args.devices:,} gauges,"
          f" publisher {messages / latency.publisher_s:,.0f} msgs/s")
    for what, delays in (("the alert write committed (ingest, then detection)",
                          latency.delays_s),
                         ("the reading committed by ingest (of which)", latency.stored_s)):
        print(f"from publish to {what}: p50 {percentile(delays, 0.50) * 1000:,.0f} ms,"
              f" p99 {percentile(delays, 0.99) * 1000:,.0f} ms,"
              f" max {max(delays) * 1000:,.0f} ms")
    print(f"detection: {latency.evaluations:,} gauge evaluations, {latency.alerts_opened:,} alerts"
          f" opened, {latency.alerts_repeated:,} refreshed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_throughput",
        description="Messages/s of CityOps ingest against a bare paho subscriber on a private"
                    " Mosquitto, live and from a backlog.",
    )
    parser.add_argument("--messages", type=int, default=20_000,
                        help="messages published per run (default: %(default)s)")
    parser.add_argument("--readings", type=int, default=10,
                        help="readings per message, 1..1000 (default: %(default)s)")
    parser.add_argument("--devices", type=int, default=200,
                        help="flood gauges the messages are spread over (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=5000,
                        help="ingest batch size, like CITYOPS_INGEST_BATCH_SIZE"
                             " (default: %(default)s)")
    parser.add_argument("--batch-ms", type=int, default=100,
                        help="ingest batch wait, like CITYOPS_INGEST_BATCH_MS"
                             " (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat every run this many times and report the median"
                             " (default: %(default)s)")
    parser.add_argument("--latency-rate", type=float, default=2000.0,
                        help="steady messages/s of the alert-delay run (default: %(default)s)")
    parser.add_argument("--latency-seconds", type=float, default=15.0,
                        help="how long the alert-delay run publishes (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="give up on a run after this many seconds (default: %(default)s)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL,
                        help="admin URL under which a scratch database is created and dropped"
                             " (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.devices < 1 or args.rounds < 1 or args.batch_size < 1:
        parser.error("--messages, --devices, --rounds and --batch-size must be at least 1")
    if args.latency_rate <= 0 or args.latency_rate * args.latency_seconds < 1:
        parser.error("--latency-rate and --latency-seconds must make at least one message")
    if not 1 <= args.readings <= 1000:
        parser.error("--readings must be between 1 and 1000 (the payload limit)")
    if embedded.mosquitto_binary() is None:
        parser.error("mosquitto is not installed (apt-get install mosquitto)")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        progress("interrupted; the scratch database and the broker are gone")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
