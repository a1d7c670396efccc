"""Benchmarks that print figures (they are not tests; see bench/README.md).

Run each as a module from the repository root, for example
``.venv/bin/python -m bench.ingest_throughput --help``. This package holds what they share: progress
lines on stderr, a scratch database created and dropped under an admin URL, a private directory
under /tmp, and where the real reference data sets are (:func:`reference_data`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REPOSITORY = Path(__file__).resolve().parent.parent
# The real data sets the evaluations read (bench/README.md, "Reference data"): the folder named by
# CITYOPS_REFERENCE_DATA, else data/ of the `shared` folder beside the repository.
REFERENCE_DATA_VARIABLE = "CITYOPS_REFERENCE_DATA"

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """One progress line on stderr, stamped with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


def server_version(url: str) -> str:
    """The server's version, e.g. "15.20"."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


@contextmanager
def scratch_database(admin_url: str, prefix: str = "cityops_bench") -> Iterator[str]:
    """Create an empty database under ``admin_url``; yield its URL; drop it on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def scratch_directory(prefix: str = "cityops-bench-") -> Iterator[Path]:
    """A new directory under /tmp, removed on the way out.

    It is world-readable: started as root, Mosquitto drops to the ``mosquitto`` user, which must
    reach its data directory inside this one.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def reference_data(*parts: str) -> Path:
    """A file of the reference data sets: under ``$CITYOPS_REFERENCE_DATA``, by default under
    ``../shared/data`` beside the repository (it may not exist: the caller says so)."""
    root = os.environ.get(REFERENCE_DATA_VARIABLE) or REPOSITORY.parent / "shared" / "data"
    return Path(root).joinpath(*parts)
