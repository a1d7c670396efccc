"""compose.yml cannot run here (no Docker engine): check that it parses and names the services,
commands and settings the code expects, and that the broker confines each device."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cityops.cli.main import cli
from cityops.platform.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yml").read_text())


def test_services_and_images(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"db", "broker", "migrate", "ingest", "scheduler", "web"}
    assert services["db"]["image"] == "timescale/timescaledb:latest-pg17"
    assert services["broker"]["image"].startswith("eclipse-mosquitto:2")
    assert services["db"]["healthcheck"]["test"][1].startswith("pg_isready")


def test_commands_exist_in_the_cli(compose: dict) -> None:
    runner = CliRunner()
    for name in ("migrate", "ingest", "scheduler", "web"):
        command = compose["services"][name]["command"]
        assert command[0] == "cityops"
        words = [w for w in command[1:] if not w.startswith("-")]
        path = words[:2] if words[0] == "db" else words[:1]
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (name, result.output)
        for option in (w for w in command[1:] if w.startswith("--")):
            assert option in result.output, (name, option)


def test_environment_names_are_settings_the_code_reads(compose: dict) -> None:
    fields = {f"CITYOPS_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key in env:
            if key.startswith("CITYOPS_"):
                assert key in fields, (name, key)
    web_env = compose["services"]["web"]["environment"]
    for required in ("CITYOPS_DATABASE_URL", "CITYOPS_MQTT_URL", "CITYOPS_SECRET_KEY"):
        assert required in web_env
    # secrets are taken from the environment, never written in the file
    text = (ROOT / "compose.yml").read_text()
    assert re.search(r"\$\{CITYOPS_DB_PASSWORD:\?", text)
    assert "password=" not in text.lower()


def test_urls_in_compose_pass_validation(compose: dict) -> None:
    env = compose["services"]["web"]["environment"]
    filled = {k: re.sub(r"\$\{[^}]+\}", "secret", v) for k, v in env.items()}
    settings = Settings(database_url=filled["CITYOPS_DATABASE_URL"],
                        mqtt_url=filled["CITYOPS_MQTT_URL"], timezone=filled["CITYOPS_TIMEZONE"])
    assert settings.database_url is not None and settings.mqtt_url is not None


def test_broker_requires_login_tls_and_confines_devices() -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "password_file /mosquitto/config/passwd" in conf
    assert "acl_file /mosquitto/config/acl" in conf
    assert "listener 8883" in conf and "certfile" in conf and "keyfile" in conf
    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    assert "pattern write cityops/v1/+/%u/telemetry" in acl
    assert "pattern write cityops/v1/+/%u/status" in acl
    assert "pattern read cityops/v1/dispatch/%u" in acl
    # no device-side rule grants a wildcard over other devices' topics
    for line in acl.splitlines():
        if line.startswith("pattern write"):
            assert "%u" in line and "#" not in line
