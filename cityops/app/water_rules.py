"""Wiring of the water-meter detectors (models) to the detection pipeline.

For each water meter the evaluator uses its household's baseline, fitted
(``models.water_baselines``) from the hourly history the scheduler stores in ``water_history``,
or the population defaults while the household has too little history or none is stored. A meter
whose household is marked away or in hospital (``cityops.sensing.away``) raises no alert; its
alerts still clear. The history and the marks are read from the database at most every
``detection.water.cache_seconds``; a baseline is fitted again only when its history changed.

The evaluator needs a database to find baselines and marks: ``database_url`` (else
``settings.database_url``). Without one every meter runs on the population defaults.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

from cityops.platform import db
from cityops.platform.settings import Settings
from cityops.sensing import away as households
from cityops.sensing import water_history
from cityops.sensing.detection import DecisionLike, DeviceInfo, Evaluate, Window
from models import water_use
from models.decisions import Decision
from models.water_baselines import (
    HourGrid,
    WaterBaseline,
    WaterConfig,
    daily_totals,
    fit_grid,
    hour_grid,
    population_baseline,
    unusual_day_scores,
)

log = logging.getLogger(__name__)


def water_config(settings: Settings) -> WaterConfig:
    """The models' thresholds from ``settings.detection`` (the ``water`` section; the silence
    cap is ``water_silence_hours``)."""
    water = settings.detection.water
    values = {f.name: getattr(water, f.name) for f in fields(WaterConfig)
              if f.name != "silence_cap_h"}
    return WaterConfig(**values, silence_cap_h=settings.detection.water_silence_hours)


@dataclass
class HouseholdView:
    """What the evaluator knows about a meter's household beyond the readings. The unusual-day
    scores are computed on first use (only when an alert is raised: an IsolationForest per
    household would cost every meter tens of milliseconds a day)."""

    baseline: WaterBaseline
    daily_l: tuple[tuple[date, float], ...] = ()
    grid: HourGrid | None = None
    _unusual: dict[date, float] | None = None

    def unusual(self, day: date, cfg: WaterConfig) -> float | None:
        """The unusual-day score of ``day`` (0 ordinary ... 1), None when unknown."""
        if self.grid is None:
            return None
        if self._unusual is None:
            self._unusual = dict(unusual_day_scores(self.grid, self.baseline, cfg))
        return self._unusual.get(day)


def household_view(history: water_history.MeterHistory, settings: Settings) -> HouseholdView:
    """Fit a meter's baseline and daily totals from its stored history."""
    cfg = water_config(settings)
    grid = hour_grid(history.hour_ends(), [float("nan") if v is None else v
                                           for v in history.litres], settings.tz)
    baseline = fit_grid(grid, cfg)
    if baseline is None:
        return HouseholdView(population_baseline(cfg))
    return HouseholdView(baseline, tuple(daily_totals(grid)), grid)


class WaterFacts:
    """Baselines and away marks of water meters, read from the database and cached."""

    def __init__(self, settings: Settings, database_url: str | None) -> None:
        self._settings = settings
        self._url = database_url
        self._ttl = settings.detection.water.cache_seconds
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._computed: datetime | None = None
        self._histories: dict[str, water_history.MeterHistory] = {}
        self._views: dict[str, HouseholdView] = {}
        self._away: dict[str, households.Absence] = {}
        self._population = HouseholdView(population_baseline(water_config(settings)))

    def _read(self, now: datetime) -> None:
        clock = time.monotonic()
        if self._url is None or (self._read_at is not None and clock - self._read_at < self._ttl):
            return
        with db.connect(self._url) as conn:
            changed = water_history.histories(conn, self._computed)
            self._away = households.absent_meters(conn, now)
        for history in changed:
            self._histories[history.device_id] = history
            self._views.pop(history.device_id, None)
            if self._computed is None or history.computed_at > self._computed:
                self._computed = history.computed_at
        self._read_at = clock

    def view(self, device_id: str, now: datetime) -> (
        tuple[HouseholdView, households.Absence | None]
    ):
        """The meter's household view and its away mark in force (cache refreshed if stale)."""
        with self._lock:
            self._read(now)
            history = self._histories.get(device_id)
            if history is None:
                view = self._population
            elif device_id in self._views:
                view = self._views[device_id]
            else:
                view = self._views[device_id] = household_view(history, self._settings)
            away = self._away.get(device_id)
        if away is not None and not away.starts_at <= now < away.until:
            away = None
        return view, away


def water_rules(settings: Settings, database_url: str | None = None) -> Evaluate:
    """Evaluate a water meter's window: silences (late morning, long silence), water that never
    stops, a slow decline; annotated with yesterday's unusual-day score; quiet while away."""
    limits = settings.detection
    tz = settings.tz
    cfg = water_config(settings)
    url = database_url or (settings.database_url.get_secret_value()
                           if settings.database_url is not None else None)
    facts = WaterFacts(settings, url)

    def evaluate(device: DeviceInfo, window: Window) -> Sequence[DecisionLike]:
        times, volume = window.series("volume_l")
        if not times:
            return []
        now = times[-1]
        view, away = facts.view(device.id, now)
        today = now.astimezone(tz).date()
        found = [
            water_use.silence_rules(times, volume, view.baseline, cfg, tz),
            water_use.water_running(times, volume, timedelta(hours=limits.water_running_hours),
                                    tz, min_flow_l=water_use.running_min_l(
                                        limits.water_running_min_l, times)),
            water_use.slow_decline([d for d in view.daily_l if d[0] < today], view.baseline,
                                   cfg, now),
        ]
        out: list[DecisionLike] = []
        for d in found:
            if d is None:
                continue
            if d.action == "raise":
                if away is not None:
                    continue
                unusual = view.unusual(today - timedelta(days=1), cfg)
                if unusual is not None:
                    d = Decision(d.kind, d.action, d.observed_at, d.severity, d.message,
                                 {**d.details, "unusual_yesterday": unusual})
            out.append(d)
        return out

    return evaluate
