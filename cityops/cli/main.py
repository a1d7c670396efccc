"""The ``cityops`` command (click). Production processes read their services from the settings
(``CITYOPS_DATABASE_URL``, ``CITYOPS_MQTT_URL`` or a TOML file); ``cityops demo`` needs neither.

The commands that run processes (ingest, scheduler, web, run, demo) import the composition root
when they run: the web app, ingest and the models take a second or two to import, which the
short commands (a user, an import, a household mark) should not pay.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from cityops.cli.common import (
    database_url,
    fail,
    mqtt_url,
    report_import,
    secret_key_required,
    settings_of,
    wait_for_signal,
)
from cityops.cli.needs import af_command as needs_af_command
from cityops.cli.needs_rules import find_command as needs_find_command
from cityops.cli.needs_score import score_command as needs_score_command
from cityops.flood import key_sites
from cityops.needs import imports as needs_imports
from cityops.org.grids import load_grid_index
from cityops.platform import db, logs
from cityops.platform.settings import SettingsError, load_settings
from cityops.platform.users import create_user
from cityops.sensing.away import AbsenceError, end_absence, mark_away
from cityops.simulation.district import DistrictSize, generate_district, is_loaded, load_district
from cityops.views.activity import activity_summary, format_summary


@click.group()
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML configuration file (else CITYOPS_CONFIG, else environment only).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """CityOps: the district's urban operations centre."""
    try:
        settings = load_settings(config_file)
    except SettingsError as exc:
        fail(str(exc))
    logs.configure(settings.log_level, settings.log_json)
    ctx.ensure_object(dict)["settings"] = settings


@cli.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending schema migrations."""
    url = database_url(settings_of(ctx))
    applied = db.upgrade(url)
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    with db.connect(url) as conn:
        click.echo(f"readings storage: {db.readings_engine(conn)}")


@db_group.command("status")
@click.pass_context
def db_status(ctx: click.Context) -> None:
    """List migrations not applied yet."""
    pending = db.pending_migrations(database_url(settings_of(ctx)))
    click.echo(f"pending: {', '.join(pending)}" if pending else "schema is up to date")


def _size(full: bool, households: int | None) -> DistrictSize:
    size = DistrictSize.full() if full else DistrictSize()
    if households is not None:
        size = DistrictSize(**{**size.__dict__, "households_per_community": households})
    return size


@cli.group("district")
def district_group() -> None:
    """The synthetic district."""


@district_group.command("load")
@click.option("--seed", default=1, show_default=True, help="Same seed, same district.")
@click.option("--full", is_flag=True, help="Full size: about 1.1 million residents.")
@click.option("--households-per-community", type=click.IntRange(1, 5000), default=None)
@click.pass_context
def district_load(ctx: click.Context, seed: int, full: bool,
                  households_per_community: int | None) -> None:
    """Generate the synthetic district and load it into an empty database."""
    url = database_url(settings_of(ctx))
    db.upgrade(url)
    district = generate_district(seed, _size(full, households_per_community),
                                 progress=lambda m: click.echo(f"generating {m}", err=True))
    with db.connect(url) as conn:
        if is_loaded(conn):
            fail("a district is already loaded in this database")
        load_district(conn, district)
    click.echo(f"loaded district seed {seed}: {len(district.cells)} grid cells,"
               f" {len(district.households)} households ({district.residents()} residents),"
               f" {len(district.devices)} devices, {len(district.workers)} grid workers")


@cli.command("user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(
    ["operations", "grid_worker", "civil_affairs", "admin", "hotline", "supervisor"]))
@click.option("--name", "display_name", default=None, help="Display name (default: username).")
@click.option("--worker", "worker_id", default=None, help="Worker id, for a grid_worker.")
@click.option("--cell", "cell_code", default=None,
              help="Street centre's grid code of an operations or supervisor user (default: all).")
@click.password_option(envvar="CITYOPS_NEW_PASSWORD")
@click.pass_context
def user_add(ctx: click.Context, username: str, role: str, display_name: str | None,
             worker_id: str | None, cell_code: str | None, password: str) -> None:
    """Create a user or reset their password (password from a prompt or CITYOPS_NEW_PASSWORD)."""
    with db.connect(database_url(settings_of(ctx))) as conn:
        try:
            user = create_user(conn, username, display_name or username, role, password,
                               worker_id, cell_code)
        except ValueError as exc:
            fail(str(exc))
    click.echo(f"user {user.username} ({user.role}) saved")


@cli.command("ingest")
@click.option("--shared", is_flag=True,
              help="Share the load with other ingest processes (MQTT 5 shared subscription).")
@click.pass_context
def ingest_cmd(ctx: click.Context, shared: bool) -> None:
    """Run ingest with streaming detection and dispatch until stopped."""
    from cityops.app.wiring import start_services

    settings = settings_of(ctx)
    services = start_services(settings, database_url(settings), mqtt_url(settings),
                              scheduler=False, shared_subscription=shared)
    wait_for_signal(threading.Event())
    services.stop()


@cli.command("scheduler")
@click.pass_context
def scheduler_cmd(ctx: click.Context) -> None:
    """Run the periodic jobs (once cluster-wide per period) until stopped."""
    from cityops.app.wiring import start_services

    settings = settings_of(ctx)
    services = start_services(settings, database_url(settings), mqtt_url(settings),
                              ingest=False)
    wait_for_signal(threading.Event())
    services.stop()


@cli.command("web")
@click.option("--host", default=None, help="Default: CITYOPS_WEB_HOST.")
@click.option("--port", type=int, default=None, help="Default: CITYOPS_WEB_PORT.")
@click.pass_context
def web_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web app (waitress) until stopped."""
    from cityops.app.web import WebServer

    settings = settings_of(ctx)
    secret_key_required(settings)
    server = WebServer(settings, database_url(settings), host or settings.web_host,
                       port or settings.web_port)
    click.echo(f"CityOps web on {server.url}")
    server.start()
    wait_for_signal(threading.Event())
    server.stop()


@cli.command("run")
@click.pass_context
def run_cmd(ctx: click.Context) -> None:
    """Run ingest, detection, dispatch, the scheduler and the web app in one process."""
    from cityops.app.web import WebServer
    from cityops.app.wiring import start_services

    settings = settings_of(ctx)
    secret_key_required(settings)
    url = database_url(settings)
    services = start_services(settings, url, mqtt_url(settings))
    server = WebServer(settings, url, settings.web_host, settings.web_port)
    server.start()
    click.echo(f"CityOps running; web on {server.url}")
    wait_for_signal(threading.Event())
    server.stop()
    services.stop()


@cli.command("status")
@click.pass_context
def status_cmd(ctx: click.Context) -> None:
    """Print what the system has stored and done."""
    with db.connect(database_url(settings_of(ctx))) as conn:
        click.echo(format_summary(activity_summary(conn)))


@cli.command("demo")
@click.option("--duration", type=click.FloatRange(min=1), default=None,
              help="Run headless this many seconds, print what happened, and exit.")
@click.option("--speed", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Simulated seconds per real second while replaying the recent past.")
@click.option("--history-hours", type=click.FloatRange(min=0.5, max=72), default=24,
              show_default=True, help="Start the simulation this many hours in the past.")
@click.option("--seed", default=1, show_default=True, help="District and simulation seed.")
@click.option("--port", type=int, default=None, help="Web port (default CITYOPS_WEB_PORT).")
@click.pass_context
def demo_cmd(ctx: click.Context, duration: float | None, speed: float, history_hours: float,
             seed: int, port: int | None) -> None:
    """The whole system on private servers with a synthetic district and its simulator."""
    from cityops.cli.demo import DemoOptions, run_demo

    settings = settings_of(ctx)
    options = DemoOptions(duration=duration, speed=speed, history_hours=history_hours, seed=seed,
                          port=port or settings.web_port)
    sys.exit(run_demo(settings, options))




@cli.group("keysites")
def keysites_group() -> None:
    """Flood-season key sites: underpasses, low roads, basements, shelters, supply depots."""


@keysites_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def keysites_import(ctx: click.Context, csv_file: Path) -> None:
    """Add or update the key sites of CSV_FILE (docs/cases.md, "Flood season")."""
    settings = settings_of(ctx)
    with db.connect(database_url(settings)) as conn:
        index = load_grid_index(conn)
        if not index.cells:
            fail("the database has no grid cells: load the district's grids first")
        try:
            result = key_sites.import_csv(conn, csv_file, index)
        except ValueError as exc:
            fail(str(exc))
    report_import(ctx, result.refused, f"key sites: {result.inserted} added,"
                   f" {result.updated} updated, {len(result.refused)} refused")


@cli.group("needs")
def needs_group() -> None:
    """Needs scoring for targeted assistance (docs/needs.md)."""


needs_group.add_command(needs_af_command)
needs_group.add_command(needs_find_command)
needs_group.add_command(needs_score_command)


@needs_group.command("import-households")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def needs_import_households(ctx: click.Context, csv_file: Path) -> None:
    """Add or update households with their achievements and indicators from CSV_FILE
    (docs/needs.md, "Data")."""
    with db.connect(database_url(settings_of(ctx))) as conn:
        try:
            result = needs_imports.import_csv(conn, csv_file)
        except ValueError as exc:
            fail(str(exc))
    report_import(ctx, result.refused, f"households: {result.inserted} added,"
                   f" {result.updated} updated, {len(result.refused)} refused"
                   f" ({result.households_created} new households)")


@cli.group("household")
def household_group() -> None:
    """Households: mark one away or in hospital (no water-use alerts until the end date)."""


@household_group.command("away")
@click.argument("household_id")
@click.option("--until", "until", required=True,
              help="Last day away (YYYY-MM-DD, local: alerts resume the next midnight) or an"
                   " exact local time (YYYY-MM-DDTHH:MM).")
@click.option("--reason", type=click.Choice(["away", "hospital"]), default="away",
              show_default=True)
@click.option("--by", "actor", default="cli", show_default=True, help="Who sets it (audited).")
@click.option("--note", default="", help="A short note for the audit log and the civil page.")
@click.pass_context
def household_away(ctx: click.Context, household_id: str, until: str, reason: str, actor: str,
                   note: str) -> None:
    """Mark HOUSEHOLD_ID away or in hospital until a date."""
    settings = settings_of(ctx)
    try:
        parsed = datetime.fromisoformat(until)
    except ValueError:
        fail(f"--until {until!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)")
    if "T" not in until and " " not in until:
        parsed += timedelta(days=1)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=settings.tz)
    with db.connect(database_url(settings)) as conn:
        try:
            absence = mark_away(conn, household_id, parsed, reason, actor, datetime.now(UTC),
                                note)
        except AbsenceError as exc:
            fail(str(exc))
    click.echo(f"household {household_id} marked {absence.reason} until"
               f" {absence.until.astimezone(settings.tz):%Y-%m-%d %H:%M}; no water-use alerts"
               f" until then")


@household_group.command("back")
@click.argument("household_id")
@click.option("--by", "actor", default="cli", show_default=True, help="Who ends it (audited).")
@click.pass_context
def household_back(ctx: click.Context, household_id: str, actor: str) -> None:
    """End HOUSEHOLD_ID's away / in-hospital mark now (water-use alerts resume)."""
    with db.connect(database_url(settings_of(ctx))) as conn:
        ended = end_absence(conn, household_id, actor, datetime.now(UTC))
    click.echo(f"household {household_id}: " + ("mark ended; water-use alerts resume" if ended
                                                 else "was not marked away"))
