"""District generation and loading: how long the synthetic district takes to make and to store.

What it measures. For each size asked for (default: the demo's ``DistrictSize()`` and
``DistrictSize.full()``: 450,000 households, documented as about 1.1 million residents, 1.26
million with seed 1), with the same ``--seed``:

* **generate**: wall-clock seconds of ``cityops.simulation.district.generate_district(seed, size)``
(grid
  cells as nested Voronoi polygons, then households, devices, cameras, grid workers and shifts, all
  in memory);
* **load**: wall-clock seconds of ``cityops.simulation.district.load_district`` writing that
district with
  COPY, in one transaction up to and including its COMMIT, into a freshly migrated scratch
  database (created under ``--database-url`` and dropped afterwards; the migration is not timed).

It prints, per size, the number of cells, households, residents and devices, the two timings, and
the size of the scratch database once loaded.

How to run (from the repository root; PostgreSQL must accept the admin URL; the default run takes
about 40 seconds on 2 cores, nearly all of it the full size, and about 400 MB of memory)::

    .venv/bin/python -m bench.district_generation
    .venv/bin/python -m bench.district_generation --size demo --seed 7

Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from dataclasses import dataclass

import psycopg

from bench import DEFAULT_ADMIN_URL, progress, scratch_database, server_version
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, load_district

SIZES: dict[str, DistrictSize] = {"demo": DistrictSize(), "full": DistrictSize.full()}


@dataclass(frozen=True)
class Result:
    size: str
    cells: int
    households: int
    residents: int
    devices: int
    generate_s: float
    load_s: float | None
    database_mb: float | None


def measure(name: str, seed: int, admin_url: str, load: bool) -> Result:
    """Generate one district size, then load it into a scratch database; time both."""
    progress(f"{name}: generating (seed {seed})")
    gc.collect()
    started = time.perf_counter()
    district = generate_district(seed, SIZES[name], progress=lambda m: progress(f"{name}: {m}"))
    generate_s = time.perf_counter() - started
    progress(f"{name}: generated in {generate_s:.2f} s")
    load_s = database_mb = None
    if load:
        with scratch_database(admin_url, prefix="cityops_bench_district") as url:
            progress(f"{name}: migrating a scratch database")
            db.upgrade(url)
            progress(f"{name}: loading")
            with psycopg.connect(url) as conn:
                started = time.perf_counter()
                load_district(conn, district)
                load_s = time.perf_counter() - started
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM households), pg_database_size(current_database())"
                ).fetchone()
            if row is None or row[0] != len(district.households):
                raise RuntimeError(f"{name}: the households table does not hold every household")
            database_mb = row[1] / 2**20
            progress(f"{name}: loaded in {load_s:.2f} s; dropping the scratch database")
    result = Result(
        size=name, cells=len(district.cells), households=len(district.households),
        residents=district.residents(), devices=len(district.devices), generate_s=generate_s,
        load_s=load_s, database_mb=database_mb,
    )
    del district
    gc.collect()
    return result


def report(results: list[Result], seed: int, version: str | None) -> None:
    database = f"PostgreSQL {version}" if version else "no load"
    print(f"district generation and load: seed {seed}; {database}; {os.cpu_count()} CPUs")
    print()
    print(f"{'size':6} {'cells':>6} {'households':>11} {'residents':>11} {'devices':>8}"
          f" {'generate s':>11} {'load s':>8} {'database MB':>12}")
    for r in results:
        load_s = f"{r.load_s:8.2f}" if r.load_s is not None else f"{'-':>8}"
        size_mb = f"{r.database_mb:12,.0f}" if r.database_mb is not None else f"{'-':>12}"
        print(f"{r.size:6} {r.cells:6,} {r.households:11,} {r.residents:11,} {r.devices:8,}"
              f" {r.generate_s:11.2f} {load_s} {size_mb}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.district_generation",
        description="Seconds to generate the synthetic district and to load it into PostgreSQL.",
    )
    parser.add_argument("--size", choices=sorted(SIZES), action="append",
                        help="a district size to measure; repeat for several (default: demo"
                             " and full)")
    parser.add_argument("--seed", type=int, default=1,
                        help="the district's seed (default: %(default)s)")
    parser.add_argument("--no-load", action="store_true",
                        help="time the generation only (no database needed)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL,
                        help="admin URL under which a scratch database is created and dropped"
                             " for each load (default: %(default)s)")
    args = parser.parse_args(argv)
    args.size = args.size or ["demo", "full"]
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse_args(argv)
    version = None if args.no_load else server_version(args.database_url)
    try:
        results = [measure(name, args.seed, args.database_url, not args.no_load)
                   for name in args.size]
    except KeyboardInterrupt:
        progress("interrupted; the scratch database is gone")
        return 130
    report(results, args.seed, version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
