"""Composition root: wires ingest, the detectors of ``models`` and the cityops services together.

This is the only place (with the rest of ``cityops.cli``) where ``cityops`` meets ``ingest``,
``models`` and ``dashboards``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from cityops import db
from cityops.detection import DecisionLike, DetectionPipeline, DeviceInfo, Evaluate, Window
from cityops.grids import GridIndex
from cityops.notify import MqttNotifier
from cityops.scheduler import Scheduler
from cityops.settings import Settings
from cityops.topics import Topics
from ingest.service import IngestService
from models import detectors

log = logging.getLogger(__name__)
Pool = ConnectionPool[psycopg.Connection[dict[str, Any]]]


def make_evaluator(settings: Settings) -> Evaluate:
    """Map a device's window to the detectors of its kind, with its own or default thresholds."""
    limits = settings.detection
    tz = settings.tz

    def evaluate(device: DeviceInfo, window: Window) -> Sequence[DecisionLike]:
        found: list[detectors.Decision | None] = []
        if device.kind == "flood_gauge":
            times, depth = window.series("depth_mm")
            threshold = float(device.config.get("threshold_mm", limits.flood_depth_mm))
            found.append(detectors.flood_depth(times, depth, threshold, device.label))
        elif device.kind == "manhole_cover":
            times, tilt = window.series("tilt_deg")
            lifted_at = dict(zip(*window.series("lifted"), strict=True))
            lifted = [lifted_at.get(t, 0.0) for t in times]
            threshold = float(device.config.get("tilt_deg", limits.manhole_tilt_deg))
            found.append(detectors.manhole_cover(times, tilt, lifted, threshold, device.label))
        elif device.kind == "water_meter":
            times, volume = window.series("volume_l")
            found.append(detectors.water_silence(
                times, volume, timedelta(hours=limits.water_silence_hours), tz))
            found.append(detectors.water_running(
                times, volume, timedelta(hours=limits.water_running_hours), tz,
                min_flow_l=limits.water_running_min_l))
        return [d for d in found if d is not None]

    return evaluate


def load_grid_index(pool: Pool) -> GridIndex:
    """The grid cells of the loaded district."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT code, level, name, parent_code, geometry FROM grids").fetchall()
    if not rows:
        raise RuntimeError("no district is loaded: run `cityops district load` first")
    return GridIndex.from_rows(rows)


@dataclass
class Services:
    """The running back-end services of one CityOps process."""

    settings: Settings
    database_url: str
    mqtt_url: str
    pool: Pool
    notifier: MqttNotifier
    pipeline: DetectionPipeline | None = None
    ingest: IngestService | None = None
    scheduler: Scheduler | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    def send_dispatches(self) -> int:
        """Push queued dispatches to the workers' phones now."""
        try:
            return self.notifier.send_pending(self.pool)
        except Exception:
            log.exception("sending dispatches failed")
            return 0

    def stop(self) -> None:
        """Stop everything in reverse order of start, draining what is in flight."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.ingest is not None:
            self.ingest.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.send_dispatches()
        self.notifier.close()
        self.pool.close()


def start_services(
    settings: Settings,
    database_url: str,
    mqtt_url: str,
    *,
    ingest: bool = True,
    scheduler: bool = True,
    shared_subscription: bool = False,
) -> Services:
    """Migrate the schema, then start ingest (+ detection and dispatch) and/or the scheduler."""
    db.upgrade(database_url)
    pool = db.make_pool(database_url, max_size=10)
    topics = Topics(settings.topic_prefix)
    services = Services(settings, database_url, mqtt_url, pool,
                        MqttNotifier(mqtt_url, client_id=f"{settings.ingest_client_id}-notify"))
    try:
        if ingest:
            pipeline = DetectionPipeline(pool, settings, load_grid_index(pool),
                                         make_evaluator(settings),
                                         after_commit=services.send_dispatches)
            pipeline.start()
            services.pipeline = pipeline
            services.ingest = IngestService(
                database_url, mqtt_url, topics=topics, client_id=settings.ingest_client_id,
                batch_size=settings.ingest_batch_size, batch_ms=settings.ingest_batch_ms,
                shared=shared_subscription, on_committed=pipeline.submit,
            )
            services.ingest.start()
        if scheduler:
            services.scheduler = Scheduler(pool, topics, services.send_dispatches)
            services.scheduler.start()
    except BaseException:
        services.stop()
        raise
    return services
