"""Serve the Dash app with waitress in a background thread (stoppable, for `run` and `demo`)."""

from __future__ import annotations

import threading

from waitress.server import create_server

from cityops.platform.database import Database
from cityops.platform.settings import Settings
from dashboards.app import create_app


class WebServer:
    """The web app on host:port; ``start()`` returns at once, ``stop()`` closes the socket."""

    def __init__(self, settings: Settings, database_url: str, host: str, port: int) -> None:
        self._db = Database.open(database_url, max_size=8, name="web")
        app = create_app(self._db, settings)
        self._server = create_server(app.server, host=host, port=port, threads=8,
                                     ident="CityOps")
        self.url = f"http://{host}:{self._server.effective_port}/"  # type: ignore[union-attr]
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the database pool."""
        self._server.close()
        self._thread.join(5)
        self._db.close()
