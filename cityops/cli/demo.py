"""``cityops demo``: the whole system with one command and no Docker.

Starts a private PostgreSQL and a private MQTT broker under the data directory (unless the
settings name real ones), loads the synthetic district once, creates one login per role, then runs
ingest, detection, dispatch, the scheduler, the district simulator (replaying the recent past at
``speed``, then live) and the web app. Ctrl-C stops everything cleanly; the data stays for the
next run. With ``--duration`` it runs headless and prints what happened.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from cityops.app.wiring import Services, start_services
from cityops.cli.common import say, wait_for_signal
from cityops.platform import db, embedded
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.platform.users import create_user
from cityops.simulation.clock import SimClock
from cityops.simulation.district import generate_district, is_loaded, load_district
from cityops.simulation.incidents import default_incident_plan
from cityops.simulation.simulator import Simulator, load_sim_devices
from cityops.views.activity import activity_summary, format_summary

ROLE_LOGINS = [("ops", "Operations centre", "operations"), ("admin", "Administrator", "admin"),
               ("civil", "Civil affairs", "civil_affairs"), ("hotline", "12345 hotline", "hotline"),
               ("supervisor", "Supervisor", "supervisor")]


@dataclass(frozen=True)
class DemoOptions:
    """What `cityops demo` was asked to do."""

    duration: float | None
    speed: float
    history_hours: float
    seed: int
    port: int


def credentials(data_dir: Path) -> dict[str, Any]:
    """The demo's generated secrets (session key, one password per login), kept across runs."""
    path = data_dir / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    creds = {"secret_key": secrets.token_urlsafe(32),
             "passwords": {name: secrets.token_urlsafe(9) for name, _, _ in ROLE_LOGINS}}
    path.write_text(json.dumps(creds, indent=2))
    os.chmod(path, 0o600)
    return creds


def ensure_users(url: str, creds: dict[str, Any], worker_ids: list[str]) -> list[tuple[str, str,
                                                                                        str]]:
    """Create the role logins and logins for the given grid workers; return (user, role, pw)."""
    logins = []
    with db.connect(url) as conn:
        for name, display, role in ROLE_LOGINS:
            # setdefault: a data dir from before a role was added gets its password now
            password = creds["passwords"].setdefault(name, secrets.token_urlsafe(9))
            create_user(conn, name, display, role, password)
            logins.append((name, role, password))
        for worker_id in worker_ids:
            username = worker_id.lower()
            password = creds["passwords"].setdefault(username, secrets.token_urlsafe(9))
            row = conn.execute("SELECT name FROM workers WHERE id = %s", (worker_id,)).fetchone()
            create_user(conn, username, row["name"] if row else username, "grid_worker",
                        password, worker_id)
            logins.append((username, f"grid worker {worker_id}", password))
    return logins


def incident_workers(url: str, device_ids: list[str]) -> list[str]:
    """The workers of the cells where the planned incidents happen (they get logins)."""
    with db.connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT w.id FROM devices d JOIN workers w ON w.cell_code = d.grid_code"
            " WHERE d.id = ANY(%s) ORDER BY w.id",
            (device_ids,),
        ).fetchall()
    return [r["id"] for r in rows]


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """Run the demo; return the process exit status."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pg = broker = None
    services: Services | None = None
    simulator: Simulator | None = None
    web = None
    try:
        if settings.database_url is None:
            say(f"starting private PostgreSQL in {data_dir / 'pgdata'}")
            pg = embedded.start_postgres(data_dir)
            database_url = pg.url
        else:
            database_url = settings.database_url.get_secret_value()
        if settings.mqtt_url is None:
            broker = embedded.start_broker(data_dir, port=embedded.remembered_port(data_dir))
            embedded.broker_port_file(data_dir).write_text(str(broker.port))
            say(f"started private MQTT broker ({broker.kind}) on {broker.url}")
            if broker.kind == "amqtt":
                say("note: amqtt keeps no sessions and does not redeliver; install mosquitto"
                    " for the delivery guarantees CityOps promises")
            mqtt_url = broker.url
        else:
            mqtt_url = settings.mqtt_url.get_secret_value()
        db.upgrade(database_url)
        with db.connect(database_url) as conn:
            loaded = is_loaded(conn)
        if not loaded:
            district = generate_district(options.seed, progress=lambda m: say(f"generating {m}"))
            with db.connect(database_url) as conn:
                load_district(conn, district)
            say(f"loaded the synthetic district: {len(district.cells)} grid cells,"
                f" {len(district.households)} households, {len(district.devices)} devices")
        creds = credentials(data_dir)
        settings = settings.model_copy(update={"secret_key": SecretStr(creds["secret_key"])})

        devices = load_sim_devices(database_url)
        clock = SimClock.catch_up(timedelta(hours=options.history_hours), options.speed)
        plan = default_incident_plan(devices, clock.start, options.seed, tz=settings.tz)
        logins = ensure_users(database_url, creds,
                              incident_workers(database_url, [p.device_id for p in plan]))
        (data_dir / "credentials.json").write_text(json.dumps(creds, indent=2))

        services = start_services(settings, database_url, mqtt_url)
        simulator = Simulator(database_url, mqtt_url, Topics(settings.topic_prefix),
                              seed=options.seed, clock=clock, incidents=plan, tz=settings.tz)
        simulator.start()
        say(f"simulating from {clock.start:%Y-%m-%d %H:%M} UTC at {options.speed:g}x,"
            f" then live; incidents planned: "
            + ", ".join(f"{p.kind} on {p.device_id}" for p in plan))
        if options.duration is None:
            from cityops.app.web import WebServer

            web = WebServer(settings, database_url, settings.web_host, options.port)
            web.start()
            click.echo(f"\nCityOps is running: {web.url}  (Ctrl-C stops everything)\n")
            for username, role, password in logins:
                click.echo(f"  {role:<28} login {username:<10} password {password}")
            click.echo(f"\nready in {time.monotonic() - started:.1f} s;"
                       f" data in {data_dir} (kept across runs)")
        wait_for_signal(threading.Event(), options.duration)
        say("stopping ...")
        if simulator is not None:
            simulator.stop()
            simulator = None
        if services is not None:
            services.stop()  # drains ingest, then detection, then the dispatch outbox
            services = None
        if options.duration is not None:
            with db.connect(database_url) as conn:
                click.echo(format_summary(activity_summary(conn)))
        return 0
    finally:
        for part in (simulator, services, web, broker, pg):
            if part is not None:
                try:
                    part.stop()
                except Exception as exc:  # keep stopping the rest
                    say(f"while stopping {type(part).__name__}: {exc}")
