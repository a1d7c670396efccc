"""The one live server of the browser tests: the app on a real WSGI server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from cityops.platform.database import Database
from cityops.platform.settings import Settings
from dashboards.app import create_app
from tests.browser.support import Live, RecordingProxy

SECRET = "browser-test-key-0123456789abcdef"


@pytest.fixture
def serve(db_url: str) -> Iterator[Callable[..., Live]]:
    """``serve(scenario)`` serves the app on the test's database (fill it first) and returns the
    :class:`Live` app; everything stops when the test ends."""
    stops: list[Callable[[], None]] = []

    def start(scenario: Any = None) -> Live:
        database = Database.open(db_url, max_size=6, name="browser-test")
        stops.append(database.close)
        server = make_server("127.0.0.1", 0, create_app(database, Settings(secret_key=SECRET))
                             .server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stops.append(server.shutdown)
        proxy = RecordingProxy()
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        stops.extend([proxy.server_close, proxy.shutdown])
        return Live(f"http://127.0.0.1:{server.server_port}", db_url, proxy, scenario)

    yield start
    for stop in reversed(stops):
        stop()
