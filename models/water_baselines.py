"""Per-household water-use baselines: what a household's ordinary day looks like.

Pure computation on hourly sums (litres used in each local hour, missing hours absent or NaN),
fitted on the household's own history over the last ``history_days`` before ``now``. While a
household has fewer than ``min_history_days`` days of data, :func:`population_baseline` stands in.

A baseline holds, all in the district's local time:

- ``hourly_mean_l``: mean litres per hour of the week (Monday 00-01 is 0), for the slow decline;
- ``band_low_l``/``band_high_l``: the usual range of each hour of the day (10th/90th percentile),
  drawn behind today's use on a ticket;
- ``first_use_min``: the household's usual latest first use of the day (its ``first_use_quantile``
  of the first use after ``day_start_h``), in minutes after midnight; ``inf`` when the household
  often has no use at all in a day (then the late-morning rule stays quiet for it);
- ``silence_h``: for each hour of the day, the usual longest time since the last use seen at that
  hour (its ``silence_quantile`` over the days, the neighbouring hours included; gaps longer
  than ``absence_h`` are absences, left out);
- ``daily_l``: the median litres of a day.

Times are reading times (the end of the interval a volume was measured over), as the detectors
see them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

HOURS_PER_WEEK = 168
MIN_HOURS_PER_DAY = 20  # a day with fewer reported hours does not count as a day of data

# Share of a day's water in each local hour of an elderly person's ordinary day (sums to 1):
# asleep 22-06, a morning peak, a smaller midday and evening peak. Only used without history.
POPULATION_SHAPE = np.array([
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.13, 0.12, 0.06, 0.04, 0.06,
    0.07, 0.04, 0.03, 0.03, 0.04, 0.07, 0.09, 0.07, 0.05, 0.04, 0.01, 0.0,
])


@dataclass(frozen=True)
class WaterConfig:
    """Thresholds of the water-use baselines and detectors (defaults:
    ``cityops.platform.settings``).

    Hours are hours of the local day (7.5 = 07:30); durations are in hours unless named.
    """

    history_days: int
    min_history_days: int
    use_min_l: float
    day_start_h: float
    first_use_quantile: float
    late_margin_min: float
    late_latest_h: float
    silence_quantile: float
    silence_factor: float
    silence_margin_h: float
    silence_floor_h: float
    silence_cap_h: float
    absence_h: float
    severity_high_ratio: float
    severity_critical_ratio: float
    max_report_gap_h: float
    default_first_use_h: float
    default_bedtime_h: float
    default_day_gap_h: float
    default_daily_l: float
    decline_days: int
    decline_fraction: float
    unusual_min_days: int


@dataclass(frozen=True)
class WaterBaseline:
    """A household's ordinary day (see the module docstring)."""

    source: Literal["household", "population"]
    days: int
    hourly_mean_l: tuple[float, ...]
    band_low_l: tuple[float, ...]
    band_high_l: tuple[float, ...]
    first_use_min: float
    silence_h: tuple[float, ...]
    daily_l: float

    def silence_limit_h(self, hour: int, cfg: WaterConfig) -> float:
        """Hours without water at local ``hour`` beyond which a silence is unusual."""
        usual = self.silence_h[hour % 24] * cfg.silence_factor + cfg.silence_margin_h
        return min(max(usual, cfg.silence_floor_h), cfg.silence_cap_h)

    def late_deadline_min(self, cfg: WaterConfig) -> float | None:
        """Minutes after midnight by which a first use is overdue; None when the household has
        no usual morning (its first use is too late or too irregular for the rule)."""
        deadline = self.first_use_min + cfg.late_margin_min
        return deadline if deadline <= cfg.late_latest_h * 60 else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``inf`` stored as None)."""
        data = asdict(self)
        data["first_use_min"] = None if math.isinf(self.first_use_min) else self.first_use_min
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WaterBaseline:
        """The inverse of :meth:`to_json`."""
        first = data["first_use_min"]
        return cls(
            source=data["source"], days=int(data["days"]),
            hourly_mean_l=tuple(data["hourly_mean_l"]), band_low_l=tuple(data["band_low_l"]),
            band_high_l=tuple(data["band_high_l"]),
            first_use_min=math.inf if first is None else float(first),
            silence_h=tuple(data["silence_h"]), daily_l=float(data["daily_l"]),
        )


@dataclass(frozen=True)
class HourGrid:
    """Hourly sums on a regular grid of reading times (hour ends), with their local calendar."""

    ends: pd.DatetimeIndex  # UTC
    litres: np.ndarray  # NaN where the meter did not report
    hour: np.ndarray  # local hour of the reading time, 0-23
    minute_of_day: np.ndarray  # local minutes after midnight of the reading time
    day: np.ndarray  # local date ordinal of the interval (the hour ending 00:00 is the day before)
    hour_of_week: np.ndarray  # local hour of the week of the interval (Monday 00-01 = 0)

    def __len__(self) -> int:
        return len(self.litres)

    def slice(self, start: int, stop: int) -> HourGrid:
        """Grid points ``start`` to ``stop`` (exclusive)."""
        return HourGrid(self.ends[start:stop], self.litres[start:stop], self.hour[start:stop],
                        self.minute_of_day[start:stop], self.day[start:stop],
                        self.hour_of_week[start:stop])


def hour_grid(hour_ends: Sequence[datetime] | pd.DatetimeIndex, litres: Sequence[float],
              tz: tzinfo, start: datetime | None = None, stop: datetime | None = None) -> HourGrid:
    """Put hourly sums (keyed by the end of their hour) on a regular grid from ``start`` to
    ``stop`` (inclusive; default: the first and last given), NaN where nothing was reported."""
    index = pd.DatetimeIndex(hour_ends)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    series = pd.Series(np.asarray(litres, dtype=float), index=index).groupby(level=0).sum()
    first = pd.Timestamp(start).tz_convert("UTC") if start is not None else index.min()
    last = pd.Timestamp(stop).tz_convert("UTC") if stop is not None else index.max()
    ends = pd.date_range(first.ceil("h"), last.floor("h"), freq="h", tz="UTC")
    values = series.reindex(ends).to_numpy(dtype=float, copy=True)
    local = ends.tz_convert(tz)
    begun = (ends - pd.Timedelta(hours=1)).tz_convert(tz)
    return HourGrid(
        ends=ends, litres=values, hour=local.hour.to_numpy(),
        minute_of_day=(local.hour * 60 + local.minute).to_numpy(),
        day=np.array([d.toordinal() for d in begun.date]) if len(begun) else np.array([], int),
        hour_of_week=(begun.day_of_week * 24 + begun.hour).to_numpy(),
    )


def hours_since_use(litres: np.ndarray, use_min_l: float,
                    absence_h: float | None = None) -> np.ndarray:
    """At each grid point, hours since the last hour with use (NaN when a missing hour lies in
    between, or no use was seen yet; with ``absence_h``, also NaN all through a gap that lasted
    longer than that: the household was away, which is no part of its daily rhythm)."""
    n = len(litres)
    idx = np.arange(n)
    used = litres >= use_min_l
    missing = np.isnan(litres)
    last_use = np.maximum.accumulate(np.where(used, idx, -1))
    last_missing = np.maximum.accumulate(np.where(missing, idx, -1))
    since = (idx - last_use).astype(float)
    since[(last_use < 0) | (last_missing > last_use)] = np.nan
    if absence_h is not None:
        next_use = np.minimum.accumulate(np.where(used, idx, n)[::-1])[::-1]
        since[(next_use - last_use > absence_h) & (last_use >= 0)] = np.nan
    return since


def _day_bounds(day: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, day[1:] != day[:-1]])


def _full_days(grid: HourGrid) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each local day in the grid, and whether it is a full day of data (all its
    hours in the grid, at least ``MIN_HOURS_PER_DAY`` of them reported)."""
    starts = _day_bounds(grid.day)
    lengths = np.diff(np.r_[starts, len(grid)])
    reported = np.add.reduceat((~np.isnan(grid.litres)).astype(int), starts)
    return starts, (lengths >= 23) & (reported >= MIN_HOURS_PER_DAY)


def daily_totals(grid: HourGrid) -> list[tuple[date, float]]:
    """Litres per local day, for the full days of data (see :func:`_full_days`)."""
    if not len(grid):
        return []
    starts, full = _full_days(grid)
    totals = np.add.reduceat(np.nan_to_num(grid.litres), starts)
    return [(date.fromordinal(int(grid.day[s])), float(t))
            for s, ok, t in zip(starts, full, totals, strict=True) if ok]


def fit_grid(grid: HourGrid, cfg: WaterConfig) -> WaterBaseline | None:
    """The household's baseline from its hourly grid (already cut to the history window), or
    None when it has fewer than ``min_history_days`` days of data."""
    if not len(grid):
        return None
    litres = grid.litres
    starts, full = _full_days(grid)
    days = int(full.sum())
    if days < cfg.min_history_days:
        return None
    lengths = np.diff(np.r_[starts, len(litres)])
    in_full_day = np.repeat(full, lengths)
    known = ~np.isnan(litres) & in_full_day
    # hour of the week / hour of the day (of the interval the litres were used in)
    hod = grid.hour_of_week % 24
    values = np.where(known, litres, np.nan)
    by_hod = [values[hod == h] for h in range(24)]
    by_hod = [v[~np.isnan(v)] for v in by_hod]
    hod_mean = np.array([v.mean() if len(v) else 0.0 for v in by_hod])
    low = np.array([np.quantile(v, 0.1) if len(v) else 0.0 for v in by_hod])
    high = np.array([np.quantile(v, 0.9) if len(v) else 0.0 for v in by_hod])
    sums = np.bincount(grid.hour_of_week[known], weights=litres[known], minlength=HOURS_PER_WEEK)
    counts = np.bincount(grid.hour_of_week[known], minlength=HOURS_PER_WEEK)
    how = np.where(counts > 0, sums / np.maximum(counts, 1), hod_mean[np.arange(168) % 24])
    # first use of each full day after day_start
    late = np.where((litres >= cfg.use_min_l) & (grid.minute_of_day >= cfg.day_start_h * 60),
                    grid.minute_of_day.astype(float), np.inf)
    first = np.minimum.reduceat(late, starts)[full]
    first_use = float(np.quantile(first, cfg.first_use_quantile, method="higher"))
    # usual longest time since the last use at each hour of the day (neighbours included)
    since = np.where(in_full_day, hours_since_use(litres, cfg.use_min_l, cfg.absence_h), np.nan)
    per_hour = np.full(24, np.nan)
    for h in range(24):
        near = since[np.isin(grid.hour, [(h - 1) % 24, h, (h + 1) % 24])]
        near = near[~np.isnan(near)]
        if len(near):
            per_hour[h] = np.quantile(near, cfg.silence_quantile, method="higher")
    per_hour = np.where(np.isnan(per_hour), cfg.silence_cap_h, per_hour)
    daily = np.add.reduceat(np.nan_to_num(litres), starts)[full]
    return WaterBaseline(
        source="household", days=days,
        hourly_mean_l=tuple(round(float(v), 2) for v in how),
        band_low_l=tuple(round(float(v), 2) for v in low),
        band_high_l=tuple(round(float(v), 2) for v in high),
        first_use_min=first_use, silence_h=tuple(float(v) for v in per_hour),
        daily_l=round(float(np.median(daily)), 1),
    )


def fit_baseline(hour_ends: Sequence[datetime], litres: Sequence[float], tz: tzinfo,
                 now: datetime, cfg: WaterConfig) -> WaterBaseline:
    """The household's baseline from hourly sums before ``now`` over the last ``history_days``;
    the population baseline while it has fewer than ``min_history_days`` days of data."""
    start = now - timedelta(days=cfg.history_days)
    kept = [(t, v) for t, v in zip(hour_ends, litres, strict=True) if start < t <= now]
    if not kept:
        return population_baseline(cfg)
    grid = hour_grid([t for t, _ in kept], [v for _, v in kept], tz, start, now)
    return fit_grid(grid, cfg) or population_baseline(cfg)


def population_baseline(cfg: WaterConfig) -> WaterBaseline:
    """What an ordinary elderly person's day looks like, for a household without history:
    asleep from ``default_bedtime_h``, first use by ``default_first_use_h``, no daytime gap over
    ``default_day_gap_h``, ``default_daily_l`` litres a day."""
    silence = []
    for h in range(24):
        since_bed = (h - cfg.default_bedtime_h) % 24
        asleep = since_bed <= (cfg.default_first_use_h - cfg.default_bedtime_h) % 24
        silence.append(max(since_bed, cfg.default_day_gap_h) if asleep else cfg.default_day_gap_h)
    mean = POPULATION_SHAPE * cfg.default_daily_l
    return WaterBaseline(
        source="population", days=0,
        hourly_mean_l=tuple(round(float(mean[h % 24]), 2) for h in range(HOURS_PER_WEEK)),
        band_low_l=tuple(0.0 for _ in range(24)),
        band_high_l=tuple(round(float(v) * 2.5, 2) for v in mean),
        first_use_min=cfg.default_first_use_h * 60, silence_h=tuple(silence),
        daily_l=cfg.default_daily_l,
    )


# -- the secondary "unusual day" ranking --------------------------------------------------------

DAY_FEATURES = ("litres vs usual", "first use vs usual (h)", "longest gap (h)",
                "hours with use", "night litres vs usual")


def day_features(grid: HourGrid, baseline: WaterBaseline, cfg: WaterConfig) -> (
    tuple[list[date], np.ndarray]
):
    """One row per full local day, each feature relative to the household's baseline:
    its litres / usual litres, first use minus usual (hours), longest gap, hours with use, and
    night litres (00-05) / usual night litres."""
    if not len(grid):
        return [], np.empty((0, len(DAY_FEATURES)))
    starts, full = _full_days(grid)
    litres = np.nan_to_num(grid.litres)
    used = litres >= cfg.use_min_l
    total = np.add.reduceat(litres, starts)
    late = np.where(used & (grid.minute_of_day >= cfg.day_start_h * 60),
                    grid.minute_of_day / 60.0, 24.0)
    first = np.minimum.reduceat(late, starts)
    usual_first = (min(baseline.first_use_min, 24 * 60)) / 60.0
    since = np.nan_to_num(hours_since_use(grid.litres, cfg.use_min_l), nan=0.0)
    longest = np.maximum.reduceat(since, starts)
    hours_used = np.add.reduceat(used.astype(int), starts)
    night = np.add.reduceat(np.where(grid.hour_of_week % 24 < 5, litres, 0.0), starts)
    usual_night = sum(baseline.hourly_mean_l[h] for h in range(5)) + 1.0
    rows = np.column_stack([total / max(baseline.daily_l, 1.0), first - usual_first, longest,
                            hours_used, night / usual_night])
    days = [date.fromordinal(int(grid.day[s])) for s in starts[full]]
    return days, rows[full]


def unusual_day_scores(grid: HourGrid, baseline: WaterBaseline, cfg: WaterConfig,
                       seed: int = 0) -> list[tuple[date, float]]:
    """Rank the household's days by how unusual they are for it (IsolationForest over
    :func:`day_features`): 0 ordinary ... 1 most unusual. Empty with under ``unusual_min_days``
    full days. A ranking to annotate alerts with, never a trigger of its own."""
    days, rows = day_features(grid, baseline, cfg)
    if len(days) < cfg.unusual_min_days:
        return []
    forest = IsolationForest(n_estimators=50, random_state=seed).fit(rows)
    raw = -forest.score_samples(rows)  # higher = more unusual, about 0.35 ... 0.8
    scores = np.clip((raw - 0.35) / 0.45, 0.0, 1.0)
    return [(d, round(float(s), 3)) for d, s in zip(days, scores, strict=True)]
