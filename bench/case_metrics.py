"""Case metrics: how long ``cityops.cases.metrics.case_metrics`` takes on 100,000 cases.

What it measures. A freshly migrated scratch database (created under ``--database-url`` and
dropped afterwards) gets the demo district (300 communities, 63 grids, 13 streets) and
``--cases`` synthetic cases (default 100,000) reported evenly over the 365 days before a fixed
instant, each with the events of its path through the workflow (COPY; not timed). The paths, drawn
with ``--seed``: 3 % duplicates (voided), 5 % voided, 5 % fixed on the spot, the rest registered,
dispatched (4 % returned and dispatched again), signed for, in progress (8 % postponed with
approval), handled (10 % sent to rework once), verified, closed, 60 % of those rated (12 % bad
reviews, a fifth of them overturned on appeal, a third re-rated); cases of the last 3 days stop
part-way. About 10 events per case, about a million in all. Then, after ANALYZE, for each period
(the whole year, the last 30 days, the last 7 days: the wall's query) and each grouping, it runs
``case_metrics`` ``--repeat`` times (default 5) and prints the median and the slowest wall-clock
time of a call (the query and building the rows), and the number of rows. Last, it drops the
two indexes of migration 0007 and times the 7-day and 30-day periods again without them.

How to run (from the repository root; about a minute on 2 cores)::

    .venv/bin/python -m bench.case_metrics
    .venv/bin/python -m bench.case_metrics --cases 20000 --repeat 3

Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench import DEFAULT_ADMIN_URL, progress, scratch_database, server_version
from cityops.cases.categories import load_categories
from cityops.cases.metrics import GROUP_BYS, case_metrics
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, load_district

END = datetime(2026, 11, 1, tzinfo=UTC)  # the cases are reported in the year before this
PERIODS = {"365 days": 365, "30 days": 30, "7 days": 7}


def _path(rng: random.Random) -> list[tuple[str, float]]:
    """A case's transitions: (state, minutes after it was reported)."""
    t = 0.0
    steps: list[tuple[str, float]] = [("reported", 0.0)]

    def go(state: str, mean_minutes: float) -> None:
        nonlocal t
        t += rng.expovariate(1 / mean_minutes)
        steps.append((state, t))

    draw = rng.random()
    if draw < 0.05:
        go("voided", 20)
        return steps
    if draw < 0.10:
        go("closed", 30)
        return steps
    go("accepted", 10)
    go("registered", 15)
    go("dispatched", 30)
    if rng.random() < 0.04:
        go("returned", 40)
        go("dispatched", 20)
    go("signed_for", 25)
    go("in_progress", 20)
    if rng.random() < 0.08:
        go("postponed", 120)
        go("in_progress", 600)
    go("handled", 300)
    if rng.random() < 0.10:
        go("rework", 60)
        go("in_progress", 30)
        go("handled", 120)
    go("verified", 90)
    go("closed", 60)
    return steps


def populate(url: str, n: int, seed: int) -> dict[str, int]:
    """The demo district and ``n`` cases with their events, ratings and postponements."""
    rng = random.Random(seed)
    progress("generating the demo district")
    district = generate_district(seed, DistrictSize())
    catalogue = load_categories()
    categories = sorted(catalogue.categories.values(), key=lambda c: c.code)
    counts = {"cases": 0, "events": 0, "ratings": 0, "postponements": 0}
    with db.connect(url) as conn:
        load_district(conn, district)
        communities = [r["code"] for r in conn.execute(
            "SELECT code FROM grids WHERE level = 'community' ORDER BY code")]
        workers = [r["id"] for r in conn.execute("SELECT id FROM workers ORDER BY id")]
        progress(f"writing {n:,} cases and their events")
        span = timedelta(days=365).total_seconds()
        tickets: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        ratings: list[tuple[Any, ...]] = []
        postponements: list[tuple[Any, ...]] = []
        for i in range(1, n + 1):
            reported = END - timedelta(seconds=span * (n - i + rng.random()) / n)
            category = rng.choice(categories)
            cell = rng.choice(communities) if rng.random() > 0.02 else None
            duplicate_of = rng.randrange(1, i) if i > 1 and rng.random() < 0.03 else None
            steps = ([("reported", 0.0), ("voided", rng.expovariate(1 / 20))]
                     if duplicate_of else _path(rng))
            if END - reported < timedelta(days=3) and len(steps) > 3:
                steps = steps[: rng.randrange(2, len(steps) + 1)]   # still under way
            at = [reported + timedelta(minutes=m) for _, m in steps]
            states = [s for s, _ in steps]
            dispatched = "dispatched" in states
            due = (reported + timedelta(hours=category.handle_hours + 1)
                   if dispatched else None)
            postponed = "postponed" in states
            if postponed:
                due = at[states.index("postponed")] + timedelta(days=2)
                postponements.append((i, "w", at[states.index("postponed")] - timedelta(
                    minutes=30), due, "waiting for a part", "ops",
                    at[states.index("postponed")], True))
            handled = [a for s, a in zip(states, at, strict=True) if s == "handled"]
            closed_at = at[-1] if states[-1] in ("closed", "voided") else None
            status = states[-1]
            if status == "closed" and len(states) > 2 and rng.random() < 0.6:
                rated_at = at[-1] + timedelta(hours=rng.uniform(1, 48))
                score = rng.choice((3, 4, 4, 5, 5, 5)) if rng.random() > 0.12 else rng.choice(
                    (1, 2))
                bad = score <= 2
                appeal = "overturned" if bad and rng.random() < 0.2 else None
                ratings.append((i, score, rated_at, rated_at + timedelta(days=7) if bad else None,
                                appeal))
                if bad and appeal is None and rng.random() < 0.33:
                    later = rated_at + timedelta(days=3)
                    ratings.append((i, rng.choice((3, 4, 5)), later, None, None))
                status = "evaluated"
                states.append("evaluated")
                at.append(rated_at)
            tickets.append((
                i, f"case {i}", "synthetic", category.code, "normal", status, cell,
                rng.choice(workers) if dispatched else None, reported, at[-1],
                due, closed_at, handled[0] if handled else None, duplicate_of, category.unit,
            ))
            prev = None
            for state, moment in zip(states, at, strict=True):
                events.append((i, moment, "system", prev, state))
                prev = state
        with conn.cursor() as cur:
            with cur.copy(
                "COPY tickets (id, title, description, category, priority, status, grid_code,"
                " worker_id, created_at, updated_at, due_at, closed_at, handled_at, duplicate_of,"
                " unit) FROM STDIN"
            ) as copy:
                for row in tickets:
                    copy.write_row(row)
            with cur.copy(
                "COPY ticket_events (ticket_id, at, actor, from_status, to_status) FROM STDIN"
            ) as copy:
                for row in events:
                    copy.write_row(row)
            with cur.copy(
                "COPY case_ratings (ticket_id, score, at, follow_up_due_at, appeal_status,"
                " channel, recorded_by) FROM STDIN"
            ) as copy:
                for row in ratings:
                    copy.write_row((*row, "hotline", "bench"))
            with cur.copy(
                "COPY case_postponements (ticket_id, requested_by, requested_at, new_due_at,"
                " reason, decided_by, decided_at, approved) FROM STDIN"
            ) as copy:
                for row in postponements:
                    copy.write_row(row)
            cur.execute("SELECT setval('tickets_id_seq', %s)", (n,))
        counts.update(cases=n, events=len(events), ratings=len(ratings),
                      postponements=len(postponements))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return counts


def time_calls(url: str, repeat: int, periods: dict[str, int],
               group_bys: tuple[str, ...]) -> list[tuple[str, str, float, float, int]]:
    """(period, group_by, median s, slowest s, rows) of ``repeat`` calls each."""
    results = []
    with db.connect(url) as conn:
        for period, days in periods.items():
            for group_by in group_bys:
                seconds = []
                rows = 0
                for _ in range(repeat):
                    started = time.perf_counter()
                    rows = len(case_metrics(conn, start=END - timedelta(days=days), end=END,
                                            group_by=group_by))  # type: ignore[arg-type]
                    seconds.append(time.perf_counter() - started)
                results.append((period, group_by, statistics.median(seconds), max(seconds),
                                rows))
                progress(f"{period} by {group_by}: {statistics.median(seconds) * 1000:.0f} ms")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.case_metrics",
                                     description="Seconds per case_metrics call on many cases.")
    parser.add_argument("--cases", type=int, default=100_000,
                        help="synthetic cases (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="calls per period and grouping (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL,
                        help="admin URL under which a scratch database is created and dropped"
                             " (default: %(default)s)")
    args = parser.parse_args(argv)
    version = server_version(args.database_url)
    with scratch_database(args.database_url, prefix="cityops_bench_metrics") as url:
        progress("migrating a scratch database")
        db.upgrade(url)
        counts = populate(url, args.cases, args.seed)
        results = time_calls(url, args.repeat, PERIODS, GROUP_BYS)
        progress("dropping the indexes of migration 0007")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX tickets_created_at")
            conn.execute("DROP INDEX case_postponements_approved")
            conn.execute("ANALYZE")
        without = time_calls(url, args.repeat, {"30 days": 30, "7 days": 7}, ("all", "street"))
        progress("dropping the scratch database")
    print(f"case_metrics: {counts['cases']:,} cases, {counts['events']:,} events,"
          f" {counts['ratings']:,} ratings, {counts['postponements']:,} approved postponements;"
          f" PostgreSQL {version}; {os.cpu_count()} CPUs; median and slowest of {args.repeat}"
          " calls")
    print()
    print(f"{'period':9} {'group_by':9} {'rows':>5} {'median ms':>10} {'slowest ms':>11}")
    for period, group_by, median, slowest, rows in results:
        print(f"{period:9} {group_by:9} {rows:5} {median * 1000:10.0f} {slowest * 1000:11.0f}")
    print()
    print("without the indexes of migration 0007 (tickets.created_at, approved postponements):")
    for period, group_by, median, slowest, rows in without:
        print(f"{period:9} {group_by:9} {rows:5} {median * 1000:10.0f} {slowest * 1000:11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
