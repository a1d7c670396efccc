"""Settings from the environment (``CITYOPS_*``) and an optional TOML file.

Precedence, highest first: keyword arguments, environment variables, the TOML file named by
``CITYOPS_CONFIG`` (or passed as ``config_file``), then defaults. Every value is validated at start;
a wrong one stops the program with a message that names the setting and what is wrong with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cityops.platform.worktime import parse_working_hours


class SettingsError(ValueError):
    """Raised when the configuration is invalid; the message lists every wrong value."""


class WaterSettings(BaseModel):
    """Water use of elderly people living alone: baselines and detectors (docs/water-detectors.md).

    Hours of the day are local (7.5 = 07:30). Defaults tuned on the DAIAD traces
    (``bench/daiad_eval.py``).
    """

    history_days: int = Field(56, ge=7, le=120, description="baseline from the last N days")
    min_history_days: int = Field(
        14, ge=1, le=60, description="population defaults while a household has fewer days"
    )
    refresh_hours: float = Field(
        24.0, gt=0, le=168, description="store each meter's hourly history (baseline input) every"
    )
    cache_seconds: float = Field(
        60.0, ge=0, description="detection re-reads baselines and away marks at most this often"
    )
    use_min_l: float = Field(0.5, ge=0, description="litres in a reading that count as water use")
    day_start_h: float = Field(4.0, ge=0, lt=12, description="first use of the day counts from")
    first_use_quantile: float = Field(
        0.95, gt=0, le=1, description="the household's usual (latest) first use: this quantile"
    )
    late_margin_min: float = Field(60.0, ge=0, description="late morning: minutes past usual")
    late_latest_h: float = Field(
        12.0, gt=0, le=24, description="no late-morning rule for a household usually up later"
    )
    silence_quantile: float = Field(
        1.0, gt=0, le=1, description="usual longest gap at an hour of the day: this quantile"
    )
    silence_factor: float = Field(1.0, gt=0, description="long silence: usual gap times this")
    silence_margin_h: float = Field(1.0, ge=0, description="long silence: ... plus these hours")
    silence_floor_h: float = Field(4.0, gt=0, description="long silence: never below (hours)")
    absence_h: float = Field(
        20.0, gt=0, description="a gap longer than this was an absence: left out of baselines"
    )
    severity_high_ratio: float = Field(1.5, gt=1, description="gap / limit -> high severity")
    severity_critical_ratio: float = Field(2.0, gt=1, description="gap / limit -> critical")
    max_report_gap_h: float = Field(
        2.5, gt=0, description="a hole in the readings longer than this restarts the silence"
    )
    default_first_use_h: float = Field(9.0, ge=0, lt=24, description="population: first use by")
    default_bedtime_h: float = Field(22.5, ge=0, lt=24, description="population: last use by")
    default_day_gap_h: float = Field(
        5.0, gt=0, description="population: longest daytime gap without water (hours)"
    )
    default_daily_l: float = Field(90.0, gt=0, description="population: litres a day")
    decline_days: int = Field(4, ge=2, le=14, description="slow decline: days in a row")
    decline_fraction: float = Field(
        0.4, gt=0, lt=1, description="slow decline: each day under this share of the usual"
    )
    unusual_min_days: int = Field(
        21, ge=7, description="unusual-day ranking needs this many days of history"
    )


class StreetSettings(BaseModel):
    """Flood gauges and manhole covers (docs/street-detectors.md); ``devices.config`` overrides.

    A gauge's first street level is ``detection.flood_depth_mm``; these are the rest.
    """

    higher_levels_mm: list[float] = Field(
        [270.0, 500.0], max_length=2, description="street levels above the first (severity up)"
    )
    river_stages_mm: list[float] = Field(
        [1000.0, 1500.0, 2000.0, 3000.0], min_length=4, max_length=4,
        description="river scheme: action, minor, moderate, major stage (set per gauge)",
    )
    clear_fraction: float = Field(
        0.5, gt=0, lt=1, description="clear level: this share of the first level"
    )
    river_clear_fraction: float = Field(
        0.9, gt=0, lt=1, description="river scheme: clear level as a share of the action stage"
    )
    clear_minutes: float = Field(10.0, gt=0, le=25, description="under the clear level this long")
    noise_floor_mm: float = Field(10.0, ge=0, description="readings under this are dry")
    max_rate_mm_per_min: float = Field(
        254.0, gt=0, description="faster changes are impossible jumps (10 in/min)"
    )
    jump_confirm_readings: int = Field(
        5, ge=2, le=20, description="readings that confirm a new level after a jump"
    )
    spike_mm: float = Field(50.0, gt=0, description="a bigger step waits for the next reading")
    trend_minutes: float = Field(10.0, gt=0, le=25, description="rate of rise fitted over")
    forecast_horizon_minutes: float = Field(
        60.0, gt=0, description="next-level forecasts further ahead are not shown"
    )
    min_rise_mm_per_min: float = Field(1.0, gt=0, description="slower is not 'rising'")
    stuck_minutes: float = Field(
        20.0, gt=0, le=28, description="one value above the floor this long: device fault"
    )
    stuck_min_readings: int = Field(10, ge=2, description="... over at least these readings")
    manhole_tilt_clear_deg: float = Field(5.0, ge=0, le=90, description="tilt clear level")
    manhole_well_water_mm: float = Field(
        300.0, gt=0, description="water in the well that opens an alert"
    )
    manhole_well_clear_mm: float = Field(150.0, ge=0, description="well water clear level")

    @field_validator("higher_levels_mm", "river_stages_mm")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(v <= 0 for v in value) or sorted(set(value)) != value:
            raise ValueError(f"levels must be positive and increasing, got {value}")
        return value


class DetectionSettings(BaseModel):
    """Thresholds of the first detectors (per-device values in ``devices.config`` override them)."""

    flood_depth_mm: float = Field(150.0, gt=0, description="street water depth that opens an alert")
    manhole_tilt_deg: float = Field(10.0, gt=0, le=90, description="cover tilt that opens an alert")
    street: StreetSettings = StreetSettings()
    water_silence_hours: float = Field(
        12.0, gt=0, le=72,
        description="cap of the long-silence limit: hours without water use (meter still"
                    " reporting) that always open an alert",
    )
    water_running_hours: float = Field(
        3.0, gt=0, le=48, description="hours of uninterrupted flow -> alert"
    )
    water_running_min_l: float = Field(
        1.0, ge=0, description="litres per 15 minutes (scaled to the meter's reporting interval)"
                               " that count as flow for that rule"
    )
    water: WaterSettings = WaterSettings()


CALL_TYPES = ("consultation", "help", "complaint", "report", "suggestion")


class CasesSettings(BaseModel):
    """Case workflow: categories, working time and time limits (docs/cases.md)."""

    categories_file: Path | None = Field(
        None, description="case categories; unset -> the packaged cityops/data/case_categories.toml"
    )
    holidays_file: Path | None = Field(
        None, description="holidays and make-up working days; unset -> cityops/data/holidays.toml"
    )
    working_hours: str = Field(
        "09:00-12:00,13:30-17:30", description="working periods of a working day (local time)"
    )
    dispatch_hours: float = Field(
        1.0, gt=0, description="accept + register + dispatch within (working hours)"
    )
    sign_hours: float = Field(1.0, gt=0, description="sign for within (working hours)")
    duplicate_radius_m: float = Field(
        50.0, ge=0, description="a report of the same category this close to an open case ..."
    )
    duplicate_hours: float = Field(
        24.0, ge=0, description="... and this recent is linked to it, not dispatched twice"
    )
    max_open_per_worker: int = Field(
        8, gt=0, description="a worker with this many open cases is overloaded and skipped"
    )
    escalate_street_after_min: int = Field(
        30, ge=0, description="minutes after a missed limit: remind the street centre"
    )
    escalate_district_after_min: int = Field(
        60, ge=0, description="minutes after a missed limit: remind the district centre"
    )
    bad_review_follow_up_days: int = Field(
        5, gt=0, description="a bad review is followed up within (working days)"
    )
    call_type_days: dict[str, float] = Field(
        {"consultation": 1, "help": 3, "complaint": 5, "report": 5, "suggestion": 15},
        description="12345 hotline call types: handling limit in working days",
    )

    @field_validator("working_hours")
    @classmethod
    def _working_hours(cls, value: str) -> str:
        parse_working_hours(value)
        return value

    @field_validator("call_type_days")
    @classmethod
    def _call_types(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(CALL_TYPES):
            raise ValueError(
                f"needs exactly the call types {', '.join(CALL_TYPES)}, got {sorted(value)}"
            )
        if any(days <= 0 for days in value.values()):
            raise ValueError(f"every limit must be more than 0 working days, got {value}")
        return value

    @model_validator(mode="after")
    def _escalation_order(self) -> CasesSettings:
        if self.escalate_district_after_min <= self.escalate_street_after_min:
            raise ValueError(
                "escalate_district_after_min must be later than escalate_street_after_min"
            )
        return self


class NotifySettings(BaseModel):
    """Notifications besides MQTT (docs/cases.md, "Escalation and notifications")."""

    webhook_url: str | None = Field(
        None, description="also POST reminders and escalations here as JSON (an SMS gateway)"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="signs each POST: X-CityOps-Signature: sha256=<HMAC of the body>"
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="wait at most for a reply")

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value


class FloodSeasonSettings(BaseModel):
    """Flood season (docs/cases.md, "Flood season"): dates are month-day in local time."""

    season_start: str = Field("06-01", description="first day of the flood season (MM-DD)")
    season_end: str = Field("09-30", description="last day of the flood season (MM-DD)")
    inspection_lead_days: int = Field(
        14, ge=0, le=120, description="key sites' inspection cases are created this many days"
                                      " before the season starts"
    )

    @field_validator("season_start", "season_end")
    @classmethod
    def _month_day(cls, value: str) -> str:
        from datetime import date

        try:
            date.fromisoformat(f"2024-{value}")  # a leap year: 02-29 is a day
        except ValueError:
            raise ValueError(f"must be a month and day like 06-01, not {value!r}") from None
        return value

    @model_validator(mode="after")
    def _in_order(self) -> FloodSeasonSettings:
        if self.season_end < self.season_start:
            raise ValueError("season_end must come after season_start within one year")
        return self


class DeviceHealthSettings(BaseModel):
    """Silent devices (docs/operations.md, "Device health"); ``devices.config`` key
    ``reporting_interval_s`` overrides the interval of one device."""

    water_meter_interval_s: int = Field(900, gt=0, description="a water meter reports every")
    flood_gauge_interval_s: int = Field(60, gt=0, description="a flood gauge reports every")
    manhole_cover_interval_s: int = Field(900, gt=0, description="a manhole cover reports every")
    silent_after_intervals: float = Field(
        3.0, ge=1, description="no reading for this many intervals: silent (a device fault)"
    )
    check_seconds: int = Field(60, ge=10, description="the silent-device check runs every")
    mass_silence_fraction: float = Field(
        0.5, gt=0, le=1,
        description="more than this share of the devices silent (10 or more devices): ingest or"
                    " the broker is down, so no per-device alerts",
    )


class RetentionSettings(BaseModel):
    """How long readings are kept (docs/operations.md, "Retention and rollups")."""

    raw_days: int = Field(90, ge=1, description="raw readings are dropped after this many days")
    hourly_days: int = Field(730, ge=1, description="hourly rollups are kept this many days")
    rollup_seconds: int = Field(300, ge=10, description="hourly rollups are refreshed every")
    retention_seconds: int = Field(3600, ge=60, description="old data is dropped every")
    delete_batch_rows: int = Field(
        50_000, ge=100, description="without TimescaleDB: rows per DELETE transaction"
    )


class Settings(BaseSettings):
    """All CityOps settings. Environment variables are ``CITYOPS_<NAME>`` (nested: ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix="CITYOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database_url: SecretStr | None = Field(
        None, description="postgresql://user:password@host:port/dbname; unset -> embedded server"
    )
    mqtt_url: SecretStr | None = Field(
        None, description="mqtt://user:password@host:port (mqtts:// for TLS); unset -> embedded"
    )
    topic_prefix: str = Field(
        "cityops/v1", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", description="MQTT topic root"
    )
    data_dir: Path = Field(Path("var"), description="where the embedded servers keep their data")
    timezone: str = Field("Asia/Shanghai", description="the district's local time zone (IANA)")
    web_host: str = "127.0.0.1"
    web_port: int = Field(8050, ge=1, le=65535)
    secret_key: SecretStr | None = Field(
        None, description="Flask session key; required in production, generated by the demo"
    )
    open311_api_keys: list[str] = Field(
        [], description="Open311 api_key values allowed to file requests; empty -> open to all"
    )
    ingest_client_id: str = Field("cityops-ingest-1", min_length=1, max_length=23)
    ingest_batch_size: int = Field(5000, ge=1, le=100_000)
    ingest_batch_ms: int = Field(100, ge=1, le=10_000)
    log_level: str = Field("WARNING", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(True, description="structured JSON logs on stderr")
    detection: DetectionSettings = DetectionSettings()
    cases: CasesSettings = CasesSettings()
    notify: NotifySettings = NotifySettings()
    flood_season: FloodSeasonSettings = FloodSeasonSettings()
    device_health: DeviceHealthSettings = DeviceHealthSettings()
    retention: RetentionSettings = RetentionSettings()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
            ) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"{value!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return upper

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = urlsplit(value.get_secret_value()).scheme
            if scheme not in {"postgresql", "postgres"}:
                raise ValueError(f"must start with postgresql://, not {scheme or 'nothing'}://")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in {"mqtt", "mqtts"}:
                raise ValueError(f"must start with mqtt:// or mqtts://, not {parts.scheme or '?'}://")
            if not parts.hostname:
                raise ValueError("has no host name")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def embedded(self) -> bool:
        """True when neither a database nor a broker is configured (the demo default)."""
        return self.database_url is None and self.mqtt_url is None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("CITYOPS_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; raise :class:`SettingsError` naming every wrong value."""
    previous = os.environ.get("CITYOPS_CONFIG")
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"configuration file {config_file} does not exist")
        os.environ["CITYOPS_CONFIG"] = str(config_file)
    elif previous and not Path(previous).is_file():
        raise SettingsError(f"CITYOPS_CONFIG names {previous}, which does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            env = "CITYOPS_" + "__".join(str(p) for p in err["loc"]).upper()
            value = err.get("input")
            shown = "" if "url" in name or "secret" in name else f" (got {value!r})"
            lines.append(f"  {name} [{env}]: {err['msg']}{shown}")
        raise SettingsError("invalid CityOps configuration:\n" + "\n".join(lines)) from None
    except Exception as exc:  # a TOML syntax error, for example
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"cannot read the configuration: {exc}") from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("CITYOPS_CONFIG", None)
            else:
                os.environ["CITYOPS_CONFIG"] = previous
