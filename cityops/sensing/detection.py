"""Streaming detection: evaluate each device touched by a committed batch, then act.

The ingest writer hands every batch of newly stored readings to :meth:`DetectionPipeline.submit`;
a worker thread loads the recent window of each touched device from the database and calls the
injected ``evaluate`` function (the composition root wires in the pure detectors of ``models``).
Decisions become alerts; each newly opened alert is handed to the injected ``on_opened`` in the
same transaction (the composition root wires in :func:`cityops.cases.opening.open_for_alert`,
the alert→case policy: a case placed and dispatched by grid), and the notifier sends the dispatch
afterwards.

Because each evaluation reads the device's window from the database, a crash between the ingest
commit and detection is healed by the device's next reading.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg

from cityops.platform.database import Database
from cityops.sensing import alerts
from cityops.sensing.alerts import OnOpened
from cityops.sensing.cameras import NEAR_ALERT_KINDS, cameras_within
from cityops.sensing.readings import METRICS, Reading

log = logging.getLogger(__name__)

DEVICE_CACHE_SECONDS = 300.0  # a device's label, place and thresholds are re-read this often
CAMERA_CACHE_SECONDS = 600.0  # cameras rarely move: look them up once per device and 10 min
# How far back each kind's detectors look (covers the longest rule of the kind).
LOOKBACK: dict[str, timedelta] = {
    "flood_gauge": timedelta(minutes=30),
    "manhole_cover": timedelta(hours=1),
    "water_meter": timedelta(hours=30),
}


class DecisionLike(Protocol):
    """What a detector returns (``models.decisions.Decision`` has this shape)."""

    kind: str
    action: str
    observed_at: datetime
    severity: str
    message: str
    details: dict[str, Any]


@dataclass(frozen=True)
class DeviceInfo:
    """What detection needs to know about a device."""

    id: str
    kind: str
    label: str
    grid_code: str
    lon: float
    lat: float
    config: dict[str, Any]


@dataclass(frozen=True)
class Window:
    """One device's recent readings, oldest first, per metric."""

    times: dict[str, list[datetime]]
    values: dict[str, list[float]]

    def series(self, metric: str) -> tuple[list[datetime], list[float]]:
        return self.times.get(metric, []), self.values.get(metric, [])


Evaluate = Callable[[DeviceInfo, Window], Sequence[DecisionLike]]




@dataclass
class DetectionStats:
    """Counters for the demo summary and tests."""

    batches: int = 0
    evaluations: int = 0
    alerts_opened: int = 0
    alerts_repeated: int = 0
    alerts_cleared: int = 0
    tickets_opened: int = 0
    tickets_dispatched: int = 0
    errors: int = 0


class DetectionPipeline:
    """Runs detection for committed readings on a thread of its own."""

    def __init__(
        self,
        db: Database,
        evaluate: Evaluate,
        on_opened: OnOpened | None = None,
        after_commit: Callable[[], object] | None = None,
    ) -> None:
        self._db = db
        self._evaluate = evaluate
        self._on_opened = on_opened
        self._after_commit = after_commit
        self._queue: queue.Queue[list[Reading] | None] = queue.Queue()
        self._devices: dict[str, DeviceInfo] = {}
        self._devices_loaded = time.monotonic()
        self._cameras: dict[str, tuple[float, Any]] = {}
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.stats = DetectionStats()

    def submit(self, readings: list[Reading]) -> None:
        """Queue newly committed readings (called by the ingest writer after its commit)."""
        if readings:
            self._idle.clear()
            self._queue.put(readings)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="detection", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until everything submitted so far has been evaluated."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = list(item)
            stop = False
            while True:  # coalesce whatever else is waiting
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.extend(more)
            try:
                self.process(batch)
            except Exception:
                self.stats.errors += 1
                log.exception("detection failed for a batch", extra={"readings": len(batch)})
            if self._queue.empty():
                self._idle.set()
            if stop:
                return

    def process(self, readings: list[Reading]) -> None:
        """Evaluate every device in ``readings`` and act on the decisions (synchronously)."""
        latest: dict[str, datetime] = {}
        for r in readings:
            if r.metric == "battery_pct":
                continue
            if r.device_id not in latest or r.ts > latest[r.device_id]:
                latest[r.device_id] = r.ts
        if not latest:
            return
        self.stats.batches += 1
        with self._db.session() as conn:
            devices = self._device_info(conn, list(latest))
            windows = self._windows(conn, devices, latest)
            decisions = []
            for device_id, window in windows.items():
                self.stats.evaluations += 1
                decisions.extend((devices[device_id], d) for d in self._evaluate(
                    devices[device_id], window))
            decisions = self._without_idle_clears(conn, decisions)
            if decisions:
                with conn.transaction():
                    for device, decision in decisions:
                        self._act(conn, device, decision)
        if decisions and self._after_commit is not None:
            self._after_commit()

    def _without_idle_clears(
        self, conn: psycopg.Connection[Any], decisions: list[tuple[DeviceInfo, DecisionLike]]
    ) -> list[tuple[DeviceInfo, DecisionLike]]:
        """Drop "clear" decisions for conditions with no unresolved alert (most of them: every
        dry gauge clears on every reading), found with one query instead of one update each."""
        clearing = {device.id for device, d in decisions if d.action == "clear"}
        if not clearing:
            return decisions
        unresolved = {
            (row["source_id"], row["kind"])
            for row in conn.execute(
                "SELECT source_id, kind FROM alerts WHERE status <> 'resolved'"
                " AND source_id = ANY(%s)",
                (list(clearing),),
            )
        }
        return [(device, d) for device, d in decisions
                if d.action != "clear" or (device.id, d.kind) in unresolved]

    def _nearby_cameras(self, conn: psycopg.Connection[Any], device: DeviceInfo) -> Any:
        """Cameras near a device, remembered for ``CAMERA_CACHE_SECONDS``."""
        now = time.monotonic()
        cached = self._cameras.get(device.id)
        if cached is None or now - cached[0] > CAMERA_CACHE_SECONDS:
            cached = (now, cameras_within(conn, device.lon, device.lat))
            self._cameras[device.id] = cached
        return cached[1]

    def _device_info(self, conn: psycopg.Connection[Any], ids: list[str]) -> dict[str, DeviceInfo]:
        if time.monotonic() - self._devices_loaded > DEVICE_CACHE_SECONDS:  # pick up new config
            self._devices.clear()
            self._devices_loaded = time.monotonic()
        missing = [i for i in ids if i not in self._devices]
        if missing:
            for row in conn.execute(
                "SELECT id, kind, label, grid_code, lon, lat, config FROM devices"
                " WHERE id = ANY(%s)",
                (missing,),
            ):
                self._devices[row["id"]] = DeviceInfo(**row)
        return {i: self._devices[i] for i in ids if i in self._devices}

    def _windows(
        self,
        conn: psycopg.Connection[Any],
        devices: dict[str, DeviceInfo],
        latest: dict[str, datetime],
    ) -> dict[str, Window]:
        by_kind: dict[str, list[str]] = defaultdict(list)
        for device in devices.values():
            by_kind[device.kind].append(device.id)
        windows: dict[str, Window] = {}
        for kind, ids in by_kind.items():
            lookback = LOOKBACK.get(kind, timedelta(hours=1))
            since = min(latest[i] for i in ids) - lookback
            metrics = [m for m in METRICS[kind] if m != "battery_pct"]
            rows = conn.execute(  # device, metric and time: the primary key's order
                "SELECT device_id, metric, ts, value FROM readings"
                " WHERE device_id = ANY(%s) AND metric = ANY(%s) AND ts > %s"
                " ORDER BY device_id, ts",
                (ids, metrics, since),
            )
            times: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
            values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            for row in rows:
                device_id, ts = row["device_id"], row["ts"]
                if latest[device_id] - lookback < ts <= latest[device_id]:
                    times[device_id][row["metric"]].append(ts)
                    values[device_id][row["metric"]].append(row["value"])
            for device_id in ids:
                windows[device_id] = Window(dict(times[device_id]), dict(values[device_id]))
        return windows

    def _act(self, conn: psycopg.Connection[Any], device: DeviceInfo, d: DecisionLike) -> None:
        if d.action == "clear":
            if alerts.clear_condition(conn, device.id, d.kind, d.observed_at, d.message):
                self.stats.alerts_cleared += 1
            return
        details = {**d.details, "device": device.label}
        if d.kind in NEAR_ALERT_KINDS:  # every raise: a repeat replaces the details
            details["cameras"] = self._nearby_cameras(conn, device)
        signal = alerts.AlertSignal(
            source_id=device.id, kind=d.kind, severity=d.severity, message=d.message,
            observed_at=d.observed_at, grid_code=device.grid_code, lon=device.lon,
            lat=device.lat, details=details,
        )
        outcome = alerts.raise_alert(conn, signal)
        if not outcome.opened:
            self.stats.alerts_repeated += 1
            return
        self.stats.alerts_opened += 1
        opened = (self._on_opened(conn, outcome.alert_id, d.observed_at)
                  if self._on_opened is not None else None)
        if opened is None:
            return
        self.stats.tickets_opened += 1
        if opened.worker_id:
            self.stats.tickets_dispatched += 1
        log.info("ticket opened", extra={"ticket": opened.ticket_id, "alert": outcome.alert_id,
                                         "kind": d.kind, "worker": opened.worker_id})
