"""Periodic work on APScheduler 3, run once cluster-wide per period.

APScheduler does not coordinate several schedulers, and an advisory lock only stops overlap, not
repeats; so each run of a periodic job first claims its period with an insert-or-nothing row in
``job_claims``. Whichever scheduler inserts the row runs the job; the others skip that period.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from psycopg_pool import ConnectionPool

from cityops.cases import escalation
from cityops.cases.reviews import remind_overdue
from cityops.flood import season as flood_season
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing import device_health, retention, water_history

log = logging.getLogger(__name__)

Pool = ConnectionPool[psycopg.Connection[dict[str, Any]]]


def claim(conn: psycopg.Connection[Any], job: str, period: datetime, who: str) -> bool:
    """True if this caller won ``period`` of ``job`` (and must run it); False if taken."""
    row = conn.execute(
        "INSERT INTO job_claims (job, period, claimed_by) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (job, period, who),
    ).fetchone()
    return row is not None


def period_start(now: datetime, seconds: int) -> datetime:
    """The start of the ``seconds``-long period that contains ``now`` (UTC, epoch-aligned)."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


class Scheduler:
    """The periodic jobs of CityOps on one BackgroundScheduler (UTC)."""

    def __init__(self, pool: Pool, topics: Topics, send_dispatches: Callable[[], object], *,
                 settings: Settings, score_needs: Callable[[], object] | None = None) -> None:
        """``score_needs`` (from the composition root, which may use models/): the daily needs
        scoring of every household, also once at start; None leaves scoring to the command."""
        self._pool = pool
        self._topics = topics
        self._settings = settings
        self._who = f"{socket.gethostname()}:{id(self):x}"
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "misfire_grace_time": 30, "max_instances": 1},
        )
        # sending the outbox is safe to run anywhere at any time (rows are locked SKIP LOCKED)
        self._scheduler.add_job(send_dispatches, "interval", seconds=5, id="dispatch-outbox")
        # late cases: worker, street centre, district centre (cityops.cases.escalation)
        self._scheduler.add_job(self._once("escalation", 60, self._escalate), "interval",
                                seconds=60, id="escalation")
        # late follow-ups of bad reviews: a reminder to the street centre (cityops.cases.reviews)
        self._scheduler.add_job(self._once("review-reminders", 600, self._review_reminders),
                                "interval", seconds=600, id="review-reminders")
        # device health and storage upkeep (cityops.sensing.device_health,
        # cityops.sensing.retention)
        every = settings.device_health.check_seconds
        self._scheduler.add_job(self._once("silent-devices", every, self._silent_devices),
                                "interval", seconds=every, id="silent-devices")
        every = settings.retention.rollup_seconds
        self._scheduler.add_job(self._once("hourly-rollups", every, self._rollups), "interval",
                                seconds=every, id="hourly-rollups")
        every = settings.retention.retention_seconds
        self._scheduler.add_job(self._once("retention", every, self._retention), "interval",
                                seconds=every, id="retention")
        # water-use baselines' hourly history (cityops.sensing.water_history), also once at start
        every = int(settings.detection.water.refresh_hours * 3600)
        self._scheduler.add_job(self._once("water-history", every, self._water_history),
                                "interval", seconds=every, id="water-history",
                                next_run_time=datetime.now(UTC))
        # flood season: key sites' inspection cases, checked daily (and at start)
        self._scheduler.add_job(self._once("flood-inspections", 86400, self._flood_inspections),
                                "interval", seconds=86400, id="flood-inspections",
                                next_run_time=datetime.now(UTC))
        # needs: "policy finds people" rules open review tasks, daily and at start
        # (cityops.needs.rules)
        self._scheduler.add_job(self._once("needs-rules", 86400, self._needs_rules), "interval",
                                seconds=86400, id="needs-rules", next_run_time=datetime.now(UTC))
        if score_needs is not None:  # needs: every household's index and model score, daily
            self._scheduler.add_job(self._once("needs-score", 86400, score_needs), "interval",
                                    seconds=86400, id="needs-score",
                                    next_run_time=datetime.now(UTC))

    def _once(self, job: str, seconds: int, work: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with self._pool.connection() as conn:
                won = claim(conn, job, period_start(datetime.now(UTC), seconds), self._who)
            if won:
                work()
        return run

    def _escalate(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            steps = escalation.escalate(conn, datetime.now(UTC), self._settings, self._topics)
        if steps:
            log.info("escalations", extra={"steps": [(s.ticket_id, s.stage, s.level)
                                                     for s in steps]})

    def _review_reminders(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            sent = remind_overdue(conn, datetime.now(UTC), self._settings, self._topics)
        if sent:
            log.info("late follow-up reminders", extra={"ratings": [r.rating_id for r in sent]})

    def _silent_devices(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            check = device_health.check_silent_devices(
                conn, datetime.now(UTC), self._settings.device_health)
        if check.opened or check.cleared:
            log.info("silent devices", extra={"silent": len(check.silent),
                                              "opened": check.opened, "cleared": check.cleared})

    def _rollups(self) -> None:
        with self._pool.connection() as conn:
            run = retention.refresh_rollups(conn, datetime.now(UTC), self._settings.retention)
        log.debug("hourly rollups", extra={"hours": len(run.hours), "rows": run.rows})

    def _retention(self) -> None:
        now = datetime.now(UTC)
        with self._pool.connection() as conn:
            retention.refresh_rollups(conn, now, self._settings.retention)
            run = retention.drop_old_data(conn, now, self._settings.retention)
        log.info("retention", extra={"engine": run.engine, "raw_cutoff": run.raw_cutoff,
                                     "raw_deleted": run.raw_deleted,
                                     "hourly_deleted": run.hourly_deleted})

    def _water_history(self) -> None:
        now = datetime.now(UTC)
        with self._pool.connection() as conn:
            retention.refresh_rollups(conn, now, self._settings.retention)  # the history's source
            meters = water_history.refresh_history(conn, now,
                                                   self._settings.detection.water.history_days)
        log.info("water history refreshed", extra={"meters": meters})

    def _flood_inspections(self) -> None:
        with self._pool.connection() as conn:
            created = flood_season.create_inspections(conn, datetime.now(UTC), self._settings,
                                                      topics=self._topics)
        if created:
            log.info("flood-season inspections", extra={"tickets": created})

    def _needs_rules(self) -> None:
        from cityops.needs.rules import run_rules

        with self._pool.connection() as conn:
            summary = run_rules(conn, datetime.now(UTC))
        log.info("needs rules", extra={"created": {c.rule_id: c.created for c in summary.counts}})

    def start(self) -> None:
        """Start the jobs in a background thread."""
        self._scheduler.start()

    def stop(self) -> None:
        """Stop after running jobs finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
