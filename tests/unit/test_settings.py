"""Configuration: environment, TOML file, and clear errors for wrong values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityops.platform.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CITYOPS_DATABASE_URL", "CITYOPS_MQTT_URL", "CITYOPS_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.embedded and settings.timezone == "Asia/Shanghai"
    assert settings.detection.flood_depth_mm == 150


def test_environment_and_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_DATABASE_URL", "postgresql://u:p@db:5432/cityops")
    monkeypatch.setenv("CITYOPS_DETECTION__FLOOD_DEPTH_MM", "200")
    settings = load_settings()
    assert not settings.embedded
    assert settings.detection.flood_depth_mm == 200
    assert "p@db" not in repr(settings)  # secrets are not printed


def test_toml_file_below_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cityops.toml"
    config.write_text('timezone = "Europe/Berlin"\nweb_port = 9000\n'
                      '[detection]\nwater_silence_hours = 12\n')
    monkeypatch.setenv("CITYOPS_WEB_PORT", "9100")
    settings = load_settings(config)
    assert settings.timezone == "Europe/Berlin"
    assert settings.web_port == 9100
    assert settings.detection.water_silence_hours == 12


def test_every_wrong_value_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITYOPS_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("CITYOPS_MQTT_URL", "http://broker")
    monkeypatch.setenv("CITYOPS_WEB_PORT", "70000")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "timezone [CITYOPS_TIMEZONE]: Value error, unknown time zone 'Mars/Olympus'" in text
    assert "mqtt_url [CITYOPS_MQTT_URL]" in text and "mqtt://" in text
    assert "web_port [CITYOPS_WEB_PORT]" in text
    assert "http://broker" not in text  # URLs may hold passwords: never echoed


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("timezone = \n")
    with pytest.raises(SettingsError, match="cannot read the configuration"):
        load_settings(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'red'\n")
    with pytest.raises(SettingsError, match="colour"):
        load_settings(unknown)
