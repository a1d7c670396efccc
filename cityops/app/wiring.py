"""Composition root: wires ingest, the detectors of ``models`` and the cityops services together.

This is the only place (with the rest of ``cityops.cli``) where ``cityops`` meets ``ingest``,
``models`` and ``dashboards``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from cityops.app.street_rules import street_rules
from cityops.app.water_rules import water_rules
from cityops.cases.acks import AckListener
from cityops.cases.notify import MqttNotifier, WebhookNotifier
from cityops.cli.needs_score import NothingToScore, score_households
from cityops.org import grids
from cityops.org.grids import GridIndex
from cityops.platform import db
from cityops.platform.scheduler import Scheduler
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.detection import DecisionLike, DetectionPipeline, DeviceInfo, Evaluate, Window
from ingest.service import IngestService

log = logging.getLogger(__name__)
Pool = ConnectionPool[psycopg.Connection[dict[str, Any]]]


def make_evaluator(settings: Settings, database_url: str | None = None) -> Evaluate:
    """Route each device to the rules of its kind (water meters, or street sensors); the water
    rules read each household's history and away marks from ``database_url``."""
    water = water_rules(settings, database_url)
    street = street_rules(settings)

    def evaluate(device: DeviceInfo, window: Window) -> Sequence[DecisionLike]:
        if device.kind == "water_meter":
            return water(device, window)
        return street(device, window)

    return evaluate


def load_grid_index(pool: Pool) -> GridIndex:
    """The grid cells of the loaded district."""
    with pool.connection() as conn:
        index = grids.load_grid_index(conn)
    if not index.cells:
        raise RuntimeError("no district is loaded: run `cityops district load` first")
    return index


def score_needs_daily(pool: Pool) -> None:
    """The scheduler's daily needs scoring (``cityops needs score`` with its defaults)."""
    with pool.connection() as conn:
        try:
            run = score_households(conn)
        except NothingToScore as exc:
            log.info("needs scoring skipped", extra={"reason": str(exc)})
            return
    log.info("needs scored", extra={"households": run.households, "stored": run.stored,
                                    "identified": run.identified,
                                    "model_decisions": run.decisions,
                                    "second_look": run.index_only + run.model_only})


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
    webhook: WebhookNotifier | None = None
    acks: AckListener | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    def send_dispatches(self) -> int:
        """Push queued dispatches to the workers' phones now."""
        try:
            return self.notifier.send_pending(self.pool)
        except Exception:
            log.exception("sending dispatches failed")
            return 0

    def send_outbox(self) -> int:
        """The scheduler's outbox job: MQTT, then the webhook (kept out of the detection path,
        where a slow receiver would hold up alerts)."""
        sent = self.send_dispatches()
        if self.webhook is not None:
            try:
                sent += self.webhook.send_pending(self.pool)
            except Exception:
                log.exception("sending webhooks failed")
        return sent

    def stop(self) -> None:
        """Stop everything in reverse order of start, draining what is in flight."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.ingest is not None:
            self.ingest.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.acks is not None:
            self.acks.stop()
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
                                         make_evaluator(settings, database_url),
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
            notify = settings.notify
            if notify.webhook_url is not None:
                secret = notify.webhook_secret
                services.webhook = WebhookNotifier(
                    notify.webhook_url, secret.get_secret_value() if secret else None,
                    notify.webhook_timeout_s)
            services.scheduler = Scheduler(pool, topics, services.send_outbox,
                                           settings=settings, score_needs=partial(
                                               score_needs_daily, pool))
            services.scheduler.start()
            # workers' acknowledgements over MQTT, wherever the scheduler runs (cityops.cases.acks)
            services.acks = AckListener(pool, mqtt_url, topics,
                                        client_id=f"{settings.ingest_client_id}-acks",
                                        after_commit=services.send_dispatches)
            services.acks.start()
    except BaseException:
        services.stop()
        raise
    return services
