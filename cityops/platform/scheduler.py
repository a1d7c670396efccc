"""Periodic work on APScheduler 3, run once cluster-wide per period.

APScheduler does not coordinate several schedulers, and an advisory lock only stops overlap, not
repeats; so each run of a claimed job first claims its period with an insert-or-nothing row in
``job_claims``. Whichever scheduler inserts the row runs the job; the others skip that period.
Which jobs there are is the composition root's business (:mod:`cityops.app.jobs`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from apscheduler.job import Job as ScheduledJob
from apscheduler.schedulers.background import BackgroundScheduler

from cityops.platform.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A periodic job: run ``work`` every ``every_s`` seconds (also once at start when
    ``at_start``); ``claimed`` jobs run once cluster-wide per period, the others everywhere."""

    id: str
    every_s: int
    work: Callable[[], object]
    at_start: bool = False
    claimed: bool = True


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
    """Periodic jobs on one BackgroundScheduler (UTC): coalesced, one instance at a time."""

    def __init__(self, db: Database, jobs: Sequence[Job]) -> None:
        self._db = db
        self._who = f"{socket.gethostname()}:{id(self):x}"
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "misfire_grace_time": 30, "max_instances": 1},
        )
        for job in jobs:
            work = self._once(job) if job.claimed else job.work
            start = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
            self._scheduler.add_job(work, "interval", seconds=job.every_s, id=job.id, **start)

    def job(self, job_id: str) -> ScheduledJob | None:
        """The scheduled job of that id (its ``func`` runs it as the scheduler would)."""
        return self._scheduler.get_job(job_id)

    def _once(self, job: Job) -> Callable[[], None]:
        def run() -> None:
            with self._db.transaction() as conn:
                won = claim(conn, job.id, period_start(datetime.now(UTC), job.every_s),
                            self._who)
            if won:
                job.work()
        return run

    def start(self) -> None:
        """Start the jobs in a background thread."""
        self._scheduler.start()

    def stop(self) -> None:
        """Stop after running jobs finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
