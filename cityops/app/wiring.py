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

from cityops.app.jobs import make_scheduler
from cityops.app.needs_scoring import score_needs_daily
from cityops.app.street_rules import street_rules
from cityops.app.water_rules import water_rules
from cityops.cases.acks import AckListener
from cityops.cases.notify import MqttNotifier, WebhookNotifier
from cityops.cases.opening import alert_opener
from cityops.org import grids
from cityops.org.grids import GridIndex
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.scheduler import Scheduler
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.detection import DecisionLike, DetectionPipeline, DeviceInfo, Evaluate, Window
from ingest.service import IngestService

log = logging.getLogger(__name__)


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


def load_grid_index(db: Database) -> GridIndex:
    """The grid cells of the loaded district."""
    with db.transaction() as conn:
        index = grids.load_grid_index(conn)
    if not index.cells:
        raise RuntimeError("no district is loaded: run `cityops district load` first")
    return index


@dataclass
class Services:
    """The running back-end services of one CityOps process."""

    settings: Settings
    database_url: str
    mqtt_url: str
    db: Database
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
            return self.notifier.send_pending(self.db)
        except Exception:
            log.exception("sending dispatches failed")
            return 0

    def send_outbox(self) -> int:
        """The scheduler's outbox job: MQTT, then the webhook (kept out of the detection path,
        where a slow receiver would hold up alerts)."""
        sent = self.send_dispatches()
        if self.webhook is not None:
            try:
                sent += self.webhook.send_pending(self.db)
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
        self.db.close()


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
    database = Database.open(database_url, max_size=10)
    topics = Topics(settings.topic_prefix)
    services = Services(settings, database_url, mqtt_url, database,
                        MqttNotifier(mqtt_url, client_id=f"{settings.ingest_client_id}-notify"))
    try:
        if ingest:
            pipeline = DetectionPipeline(
                database, make_evaluator(settings, database_url),
                on_opened=alert_opener(settings, load_grid_index(database)),
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
            services.scheduler = make_scheduler(
                database, settings, topics, send_outbox=services.send_outbox,
                score_needs=partial(score_needs_daily, database))
            services.scheduler.start()
            # workers' acknowledgements over MQTT, wherever the scheduler runs (cityops.cases.acks)
            services.acks = AckListener(database, mqtt_url, topics,
                                        client_id=f"{settings.ingest_client_id}-acks",
                                        after_commit=services.send_dispatches)
            services.acks.start()
    except BaseException:
        services.stop()
        raise
    return services
