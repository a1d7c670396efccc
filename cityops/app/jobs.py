"""The scheduler's periodic jobs: which work runs how often (``cityops scheduler``, ``run``, demo).

Each job body is one unit of work of its room (it opens its own transactions); every job but the
outbox runs once cluster-wide per period (:mod:`cityops.platform.scheduler`).

======================  ==============================  ============================================
job                     every                           what
======================  ==============================  ============================================
``dispatch-outbox``     5 s (everywhere)                send the notification outbox (MQTT, webhook)
``escalation``          60 s                            late cases: worker, street, district centre
``review-reminders``    10 min                          late follow-ups of bad reviews
``silent-devices``      ``device_health.check_seconds`` device health alerts and their cases
``hourly-rollups``      ``retention.rollup_seconds``    hourly rollups of the readings
``retention``           ``retention.retention_seconds`` drop raw readings and rollups past their age
``water-history``       ``water.refresh_hours``, start  each water meter's hourly history
``flood-inspections``   1 day, start                    the flood season's inspection cases
``needs-rules``         1 day, start                    "policy finds people" review tasks
``needs-score``         1 day, start                    every household's needs assessment
======================  ==============================  ============================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from cityops.cases import escalation, reviews
from cityops.cases.opening import alert_opener
from cityops.flood import season
from cityops.needs import rules
from cityops.platform.database import Database
from cityops.platform.scheduler import Job, Scheduler
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing import device_health, retention, water_history
from cityops.sensing.alerts import OnOpened

log = logging.getLogger(__name__)
DAY_S = 86400


def escalate(db: Database, settings: Settings, topics: Topics) -> None:
    """Late cases are told to their worker, then to the street and the district centre."""
    with db.transaction() as conn:
        steps = escalation.escalate(conn, datetime.now(UTC), settings, topics)
    if steps:
        log.info("escalations", extra={"steps": [(s.ticket_id, s.stage, s.level) for s in steps]})


def review_reminders(db: Database, settings: Settings, topics: Topics) -> None:
    """Late follow-ups of bad reviews: a reminder to the street centre."""
    with db.transaction() as conn:
        sent = reviews.remind_overdue(conn, datetime.now(UTC), settings, topics)
    if sent:
        log.info("late follow-up reminders", extra={"ratings": [r.rating_id for r in sent]})


def silent_devices(db: Database, settings: Settings, on_opened: OnOpened) -> None:
    """Open or clear the device-health alert of each silent device; a new one opens its case
    as the alert→case policy plans (for the technical team)."""
    with db.transaction() as conn:
        check = device_health.check_silent_devices(conn, datetime.now(UTC),
                                                   settings.device_health,
                                                   on_opened=on_opened)
    if check.opened or check.cleared:
        log.info("silent devices", extra={"silent": len(check.silent), "opened": check.opened,
                                          "cases": check.cases, "cleared": check.cleared})


def hourly_rollups(db: Database, settings: Settings) -> None:
    """Roll the readings of the hours that changed up into hourly rows."""
    with db.session() as conn:
        run = retention.refresh_rollups(conn, datetime.now(UTC), settings.retention)
    log.debug("hourly rollups", extra={"hours": len(run.hours), "rows": run.rows})


def drop_old_data(db: Database, settings: Settings) -> None:
    """Roll up what is left, then drop raw readings and rollups past their age."""
    now = datetime.now(UTC)
    with db.session() as conn:
        retention.refresh_rollups(conn, now, settings.retention)
        run = retention.drop_old_data(conn, now, settings.retention)
    log.info("retention", extra={"engine": run.engine, "raw_cutoff": run.raw_cutoff,
                                 "raw_deleted": run.raw_deleted,
                                 "hourly_deleted": run.hourly_deleted})


def refresh_water_history(db: Database, settings: Settings) -> None:
    """Each water meter's hourly history, the input of its household's baseline."""
    now = datetime.now(UTC)
    with db.session() as conn:
        retention.refresh_rollups(conn, now, settings.retention)  # the history's source
        meters = water_history.refresh_history(conn, now, settings.detection.water.history_days)
    log.info("water history refreshed", extra={"meters": meters})


def flood_inspections(db: Database, settings: Settings, topics: Topics) -> None:
    """The inspection cases of the key sites, from the lead days before the flood season."""
    with db.session() as conn:
        created = season.create_inspections(conn, datetime.now(UTC), settings, topics=topics)
    if created:
        log.info("flood-season inspections", extra={"tickets": created})


def needs_rules(db: Database) -> None:
    """The "policy finds people" rules: review tasks for people who never applied."""
    with db.session() as conn:
        summary = rules.run_rules(conn, datetime.now(UTC))
    log.info("needs rules", extra={"created": {c.rule_id: c.created for c in summary.counts}})


def periodic_jobs(db: Database, settings: Settings, topics: Topics, *,
                  send_outbox: Callable[[], object],
                  score_needs: Callable[[], object] | None = None) -> list[Job]:
    """The jobs of the module docstring; ``score_needs`` None leaves scoring to the command."""
    every_water = int(settings.detection.water.refresh_hours * 3600)
    jobs = [
        Job("dispatch-outbox", 5, send_outbox, claimed=False),
        Job("escalation", 60, partial(escalate, db, settings, topics)),
        Job("review-reminders", 600, partial(review_reminders, db, settings, topics)),
        Job("silent-devices", settings.device_health.check_seconds,
            partial(silent_devices, db, settings, alert_opener(settings))),
        Job("hourly-rollups", settings.retention.rollup_seconds,
            partial(hourly_rollups, db, settings)),
        Job("retention", settings.retention.retention_seconds,
            partial(drop_old_data, db, settings)),
        Job("water-history", every_water, partial(refresh_water_history, db, settings),
            at_start=True),
        Job("flood-inspections", DAY_S, partial(flood_inspections, db, settings, topics),
            at_start=True),
        Job("needs-rules", DAY_S, partial(needs_rules, db), at_start=True),
    ]
    if score_needs is not None:
        jobs.append(Job("needs-score", DAY_S, score_needs, at_start=True))
    return jobs


def make_scheduler(db: Database, settings: Settings, topics: Topics, *,
                   send_outbox: Callable[[], object],
                   score_needs: Callable[[], object] | None = None) -> Scheduler:
    """A scheduler of :func:`periodic_jobs` (not started)."""
    return Scheduler(db, periodic_jobs(db, settings, topics, send_outbox=send_outbox,
                                       score_needs=score_needs))
