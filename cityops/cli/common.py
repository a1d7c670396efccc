"""What every ``cityops`` command shares: the settings, the service URLs, errors, progress, the
wait for Ctrl-C and the report of a CSV import."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, NoReturn

import click

from cityops.platform.settings import Settings


def fail(message: str) -> NoReturn:
    """Print a clear error and exit with status 2."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def say(message: str) -> None:
    """Progress for the person at the terminal (stderr)."""
    click.echo(message, err=True)


def settings_of(ctx: click.Context) -> Settings:
    """The validated settings the ``cityops`` group loaded."""
    return ctx.ensure_object(dict)["settings"]  # type: ignore[no-any-return]


def database_url(settings: Settings) -> str:
    """The configured database URL, or a clear error."""
    if settings.database_url is None:
        fail("CITYOPS_DATABASE_URL is not set (or database_url in the config file);"
             " `cityops demo` runs with a private database instead")
    return settings.database_url.get_secret_value()


def mqtt_url(settings: Settings) -> str:
    """The configured broker URL, or a clear error."""
    if settings.mqtt_url is None:
        fail("CITYOPS_MQTT_URL is not set (or mqtt_url in the config file);"
             " `cityops demo` runs with a private broker instead")
    return settings.mqtt_url.get_secret_value()


def secret_key_required(settings: Settings) -> None:
    """Stop with a clear error when the web app has no session key."""
    if settings.secret_key is None:
        fail("CITYOPS_SECRET_KEY is not set: the web app needs it to sign sessions")


def wait_for_signal(stop: threading.Event, duration: float | None = None) -> None:
    """Block until Ctrl-C / SIGTERM (or ``duration`` seconds), then return."""
    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    stop.wait(duration)


def report_import(ctx: click.Context, refused: list[tuple[int, str]], summary: str) -> None:
    """Each refused CSV line with its reason (stderr), the summary; exit 1 if any was refused."""
    for line, reason in refused:
        click.echo(f"line {line}: refused: {reason}", err=True)
    click.echo(summary)
    if refused:
        ctx.exit(1)
