"""Evaluate the water-use detectors on real household traces (DAIAD swm_trialA format).

    .venv/bin/python -m bench.daiad_eval --seed 1      # ../shared/data/daiad/swm_trialA.zip
    .venv/bin/python -m bench.daiad_eval PATH/TO/swm_trialA.zip --seed 1

1. Reads the file (zip or csv, ``;``-separated: user key; datetime DD/MM/YYYY HH:MM:SS; meter
   reading; diff), cleans meter resets (negative differences, and jumps faster than
   ``--max-l-per-h``) and prints how many it cleaned; a cleaned interval becomes "not reported".
2. Puts each household on the meter's interval series (hourly here: each reading at its nearest
   hour, litres summed), in the households' time zone (``--tz``, Europe/Madrid). A hole in the
   readings stays "not reported" unless the reading after it shows 0 litres (the meter is
   cumulative: then nothing was used in the hole either).
3. Replays every hour of every household through the same detectors production runs
   (``models.water_use``), with the baseline refitted each day on the 8 weeks before that day
   (population defaults while a household has under ``min_history_days`` of data), and counts
   alerts the way the alerts table does (one alert per episode: opened by a raise, closed when the
   condition clears): alerts per household-month, a false-alarm proxy (the traces have no labels).
4. Inserts simulated emergencies at random positions (``--seed``): silences of 12-24 h (every
   reading 0 litres, the meter still reporting, as the simulator's ``silent_morning``; with
   ``--keep-holes`` the trace's own holes stay holes) and running taps (24-40 L/h more, as the
   simulator's, for 4-8 h); each is replayed alone on a copy of its household's trace, with the
   baseline fitted before the emergency's day. Prints recall and the median time to detection.
5. Ranks the days of each household with the secondary "unusual day" model (IsolationForest) and
   prints where a day holding an inserted silence lands in its household's ranking.

Detectors see no ground truth. The households are not all elderly people living alone, and
hourly data detects later than 15-minute readings would. Attribution: "DAIAD project,
swm_trialA, CC BY-SA 4.0".
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import reference_data
from cityops.app.water_rules import water_config
from cityops.platform.settings import Settings
from cityops.sensing.detection import LOOKBACK
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

DAIAD_FILE = ("daiad", "swm_trialA.zip")

WINDOW_H = int(LOOKBACK["water_meter"] / timedelta(hours=1))  # the pipeline's lookback, hours
MONTH_DAYS = 30.44
ABSENCE_H = 24  # a silence longer than this in the real traces: the household was away
NATURAL_H = (10, 12, 24)  # lengths of the real traces' own silences to count
Rule = Callable[[list[datetime], list[float], WaterBaseline], Decision | None]


@dataclass
class Cleaning:
    """What cleaning removed."""

    negative: int = 0
    jumps: int = 0
    readings: int = 0


def load(path: Path, max_l_per_h: float) -> tuple[dict[str, pd.DataFrame], Cleaning]:
    """Per household: reading times (UTC) and litres per interval, resets cleaned to NaN."""
    frame = pd.read_csv(path, sep=";")
    if frame.shape[1] != 4:
        raise SystemExit(f"{path}: expected 4 ';'-separated columns (user key; datetime; meter"
                         f" reading; diff), found {frame.shape[1]}")
    frame.columns = ["user", "dt", "reading", "diff"]
    frame["dt"] = pd.to_datetime(frame["dt"], format="%d/%m/%Y %H:%M:%S")
    cleaning = Cleaning(readings=len(frame))
    out: dict[str, pd.DataFrame] = {}
    for user, rows in frame.sort_values(["user", "dt"]).groupby("user", sort=True):
        litres = rows["diff"].to_numpy(dtype=float)
        hours = rows["dt"].diff().dt.total_seconds().fillna(3600).to_numpy() / 3600
        negative = litres < 0
        jump = litres > max_l_per_h * np.maximum(hours, 1.0)
        cleaning.negative += int(negative.sum())
        cleaning.jumps += int(jump.sum())
        litres[negative | jump] = np.nan
        out[str(user)] = pd.DataFrame({"dt": rows["dt"].to_numpy(), "litres": litres})
    return out, cleaning


def to_grid(rows: pd.DataFrame, tz: ZoneInfo) -> HourGrid:
    """The household's hourly series: each reading at its nearest local hour, litres summed."""
    local = pd.DatetimeIndex(rows["dt"]).tz_localize(tz, ambiguous="NaT",
                                                     nonexistent="shift_forward")
    keep = ~local.isna()
    ends = local[keep].tz_convert("UTC").round("h")
    litres = pd.Series(rows["litres"].to_numpy()[keep], index=ends)
    summed = litres.groupby(level=0).sum(min_count=1)
    known = summed.dropna()
    grid = hour_grid(list(known.index), list(known.to_numpy()), tz, start=ends.min(),
                     stop=ends.max())
    bridge_holes(grid.litres, 0, len(grid))
    return grid


def bridge_holes(litres: np.ndarray, start: int, stop: int) -> None:
    """A cumulative meter's first reading after a hole holds the litres of the whole hole: when
    it is 0, no water was used in the hole either (within ``start:stop``, in place)."""
    part = pd.Series(litres[start:stop])
    following = part.bfill().to_numpy()
    litres[start:stop] = np.where(part.isna() & (following == 0), 0.0, part.to_numpy())


def daily_baselines(grid: HourGrid, cfg: WaterConfig) -> dict[int, WaterBaseline]:
    """For each local day of the grid, the baseline fitted on the ``history_days`` before it."""
    starts = np.flatnonzero(np.r_[True, grid.day[1:] != grid.day[:-1]])
    out: dict[int, WaterBaseline] = {}
    population = population_baseline(cfg)
    for s in starts:
        lo = max(0, s - cfg.history_days * 24)
        out[int(grid.day[s])] = fit_grid(grid.slice(lo, s), cfg) or population
    return out


@dataclass
class Tally:
    """Alerts of one detector over the real traces."""

    alerts: int = 0
    absences: int = 0  # alerts whose silence went on for more than ABSENCE_H (household away)


@dataclass
class Detectors:
    """The rules under evaluation, as production wires them."""

    cfg: WaterConfig
    tz: ZoneInfo
    running_min_l_15: float
    running_hours: float
    rules: dict[str, Rule] = field(init=False)

    def __post_init__(self) -> None:
        cfg, tz = self.cfg, self.tz
        self.rules = {
            "late morning": lambda t, v, b: water_use.late_morning(t, v, b, cfg, tz),
            "long silence": lambda t, v, b: water_use.long_silence(t, v, b, cfg, tz),
            "silence (both)": lambda t, v, b: water_use.silence_rules(t, v, b, cfg, tz),
            "running water": lambda t, v, _b: water_use.water_running(
                t, v, timedelta(hours=self.running_hours), tz,
                min_flow_l=water_use.running_min_l(self.running_min_l_15, t)),
        }


def window(ends: list[datetime], litres: np.ndarray, i: int) -> tuple[list[datetime], list[float]]:
    """The readings the pipeline would load at grid point ``i`` (missing hours absent)."""
    lo = max(0, i - WINDOW_H + 1)
    picked = [(ends[j], float(litres[j])) for j in range(lo, i + 1) if litres[j] == litres[j]]
    return [t for t, _ in picked], [v for _, v in picked]


def false_alarms(grid: HourGrid, baselines: dict[int, WaterBaseline], det: Detectors,
                 tallies: dict[str, dict[str, Tally]]) -> dict[str, float]:
    """Replay every reported hour; count alert episodes per detector, apart for the hours on
    the household's own baseline and on the population defaults. Returns the months of each."""
    ends = list(grid.ends.to_pydatetime())
    # per open alert: (its tally, the hour its silence began)
    open_: dict[str, tuple[Tally, float] | None] = dict.fromkeys(det.rules)
    hours = {"household": 0, "population": 0}
    for i in range(len(grid)):
        if np.isnan(grid.litres[i]):
            continue
        times, volumes = window(ends, grid.litres, i)
        baseline = baselines[int(grid.day[i])]
        hours[baseline.source] += 1
        for name, rule in det.rules.items():
            decision = rule(times, volumes, baseline)
            current = open_[name]
            if decision is not None and decision.action == "raise":
                if current is None:
                    tally = tallies[baseline.source][name]
                    tally.alerts += 1
                    began = i - decision.details.get("gap_minutes", 0) / 60
                    open_[name] = (tally, began)
            elif decision is not None or (name == "late morning"
                                          and volumes[-1] >= det.cfg.use_min_l):
                if current is not None and i - current[1] > ABSENCE_H:
                    current[0].absences += 1
                open_[name] = None
    return {k: v / 24 / MONTH_DAYS for k, v in hours.items()}


def natural_silences(grid: HourGrid, cfg: WaterConfig, hours: tuple[int, ...]) -> dict[int, int]:
    """How many runs of reported hours without use last at least each of ``hours`` (a hole in
    the readings ends a run): silences any detector sees in the real traces."""
    counts = dict.fromkeys(hours, 0)
    run = 0
    for litres in [*grid.litres, np.nan]:
        if litres == litres and litres < cfg.use_min_l:
            run += 1
            continue
        for h in hours:
            counts[h] += run >= h
        run = 0
    return counts


def declines(grid: HourGrid, baselines: dict[int, WaterBaseline], cfg: WaterConfig) -> int:
    """Slow-decline alert episodes, evaluated once a day on the days before it (on the
    household's own baseline: the rule never runs on the population defaults)."""
    totals = daily_totals(grid)
    alerts, open_ = 0, False
    for k in range(1, len(totals)):
        day = totals[k][0]
        decision = water_use.slow_decline(totals[max(0, k - cfg.decline_days):k],
                                          baselines[day.toordinal()], cfg,
                                          datetime(day.year, day.month, day.day))
        if decision is not None and decision.action == "raise" and not open_:
            alerts, open_ = alerts + 1, True
        elif decision is not None and decision.action == "clear":
            open_ = False
    return alerts


@dataclass
class Emergency:
    """One inserted emergency and what each detector did."""

    kind: str
    start: int
    hours: int
    found: dict[str, float | None] = field(default_factory=dict)


def insert(grid: HourGrid, e: Emergency, rng: np.random.Generator,
           keeps_reporting: bool) -> np.ndarray:
    """A copy of the household's litres with the emergency in it. With ``keeps_reporting`` the
    meter reports every hour of the emergency (as the simulator's incidents: a person in trouble,
    not a device fault; a tap's hour the trace lacks is the tap alone); else the trace's own
    holes stay holes."""
    litres = grid.litres.copy()
    span = slice(e.start, e.start + e.hours)
    reported = ~np.isnan(litres[span]) | keeps_reporting
    if e.kind == "silence":
        litres[span] = np.where(reported, 0.0, np.nan)
        bridge_holes(litres, e.start, e.start + e.hours)
    else:
        extra = rng.uniform(24.0, 40.0, size=e.hours)
        litres[span] = np.where(reported, np.nan_to_num(litres[span]) + extra, np.nan)
    return litres


def detect(grid: HourGrid, litres: np.ndarray, e: Emergency, baseline: WaterBaseline,
           det: Detectors, names: list[str]) -> None:
    """First raise of each detector during the emergency, in hours after its start."""
    ends = list(grid.ends.to_pydatetime())
    for name in names:
        e.found[name] = None
    for i in range(e.start, e.start + e.hours):
        if np.isnan(litres[i]):
            continue
        times, volumes = window(ends, litres, i)
        for name in names:
            if e.found[name] is not None:
                continue
            decision = det.rules[name](times, volumes, baseline)
            if decision is not None and decision.action == "raise":
                e.found[name] = float(i - e.start)


def plan(grid: HourGrid, rng: np.random.Generator, per_household: int,
         cfg: WaterConfig) -> list[Emergency]:
    """Random emergencies after the household's first weeks (half silences, half taps)."""
    first = cfg.min_history_days * 24
    out: list[Emergency] = []
    if len(grid) < first + 72:
        return out
    for k in range(per_household):
        kind = "silence" if k % 2 == 0 else "running"
        hours = int(rng.integers(12, 25)) if kind == "silence" else int(rng.integers(4, 9))
        start = int(rng.integers(first, len(grid) - hours))
        out.append(Emergency(kind, start, hours))
    return out


def unusual_rank(grid: HourGrid, e: Emergency, litres: np.ndarray, cfg: WaterConfig) -> (
    float | None
):
    """Where the emergency's day ranks among its 8 weeks (1.0 = the most unusual day)."""
    lo = max(0, e.start - cfg.history_days * 24)
    stop = min(len(grid), e.start + 24)
    window_grid = replace(grid.slice(lo, stop), litres=litres[lo:stop])
    baseline = fit_grid(grid.slice(lo, e.start), cfg)
    if baseline is None:
        return None
    scores = unusual_day_scores(window_grid, baseline, cfg)
    day = grid.day[e.start]
    mine = [s for d, s in scores if d.toordinal() == day]
    if not mine:
        return None
    return float(np.mean([s <= mine[0] for _, s in scores]))


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, nargs="?", default=reference_data(*DAIAD_FILE),
                        help="swm_trialA.zip or .csv (default: the reference data,"
                             " bench/README.md)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tz", default="Europe/Madrid", help="the households' time zone")
    parser.add_argument("--max-l-per-h", type=float, default=2500.0,
                        help="faster than this is a meter reset (a DN15 meter's Q3 is 2.5 m3/h)")
    parser.add_argument("--emergencies", type=int, default=20, help="per household")
    parser.add_argument("--households", type=int, default=None, help="only the first N")
    parser.add_argument("--keep-holes", action="store_true",
                        help="keep the trace's own holes inside an inserted emergency (the meter"
                             " stops reporting then too) instead of a meter that keeps reporting")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        parser.error(f"{args.path} does not exist")

    started = time.monotonic()
    settings = Settings()
    cfg = water_config(settings)
    tz = ZoneInfo(args.tz)
    det = Detectors(cfg, tz, settings.detection.water_running_min_l,
                    settings.detection.water_running_hours)
    households, cleaning = load(args.path, args.max_l_per_h)
    print(f"read {cleaning.readings:,} readings of {len(households)} households; cleaned"
          f" {cleaning.negative} negative differences and {cleaning.jumps} jumps over"
          f" {args.max_l_per_h:.0f} L/h (meter resets), now 'not reported'")
    rng = np.random.default_rng(args.seed)
    tallies = {source: {name: Tally() for name in det.rules}
               for source in ("household", "population")}
    decline_alerts = 0
    months = {"household": 0.0, "population": 0.0}
    natural = dict.fromkeys(NATURAL_H, 0)
    emergencies: list[Emergency] = []
    ranks: list[float] = []
    keys = sorted(households)[: args.households]
    for n, key in enumerate(keys, 1):
        grid = to_grid(households[key], tz)
        baselines = daily_baselines(grid, cfg)
        for source, m in false_alarms(grid, baselines, det, tallies).items():
            months[source] += m
        for h, n_runs in natural_silences(grid, cfg, NATURAL_H).items():
            natural[h] += n_runs
        decline_alerts += declines(grid, baselines, cfg)
        for e in plan(grid, rng, args.emergencies, cfg):
            litres = insert(grid, e, rng, not args.keep_holes)
            baseline = baselines[int(grid.day[e.start])]
            names = (["late morning", "long silence", "silence (both)"] if e.kind == "silence"
                     else ["running water"])
            detect(grid, litres, e, baseline, det, names)
            emergencies.append(e)
            if e.kind == "silence":
                rank = unusual_rank(grid, e, litres, cfg)
                if rank is not None:
                    ranks.append(rank)
        print(f"  {n}/{len(keys)} households, {time.monotonic() - started:.0f} s",
              file=sys.stderr)

    own = months["household"]
    print(f"\n{len(keys)} households, {own:.1f} household-months of reported hours on the"
          f" household's own baseline (fitted each day on the {cfg.history_days} days before),"
          f" time zone {args.tz}, hourly readings\n")
    print(f"{'detector':<16} {'alerts':>7} {'per hh-month':>13} {'of them >24 h':>14}"
          f" {'emergencies':>12} {'recall':>7} {'median TTD':>11} {'p90 TTD':>8}")
    kinds = {"late morning": "silence", "long silence": "silence", "silence (both)": "silence",
             "running water": "running"}
    for name, tally in tallies["household"].items():
        mine = [e for e in emergencies if e.kind == kinds[name]]
        hits = [e.found[name] for e in mine if e.found.get(name) is not None]
        recall = len(hits) / len(mine) if mine else float("nan")
        ttd = f"{median(hits):.1f} h" if hits else "—"
        p90 = f"{np.quantile(hits, 0.9):.1f} h" if hits else "—"
        away = f"{tally.absences / own:.2f}" if kinds[name] == "silence" else "—"
        print(f"{name:<16} {tally.alerts:>7} {tally.alerts / own:>13.2f} {away:>14}"
              f" {len(mine):>12} {recall:>7.3f} {ttd:>11} {p90:>8}")
    print(f"{'slow decline':<16} {decline_alerts:>7} {decline_alerts / own:>13.2f} {'—':>14}"
          f" {'—':>12} {'—':>7} {'—':>11} {'—':>8}")
    new = months["population"]
    print(f"\nfirst {cfg.min_history_days} days of each household (population defaults,"
          f" {new:.1f} household-months):"
          + "".join(f" {name} {t.alerts} ({t.alerts / new:.2f}/hh-month);"
                    for name, t in tallies["population"].items()))
    silences = [e for e in emergencies if e.kind == "silence"]
    long_ones = [e for e in silences if e.hours >= 12]
    both = [e.found["silence (both)"] for e in long_ones]
    hits = [h for h in both if h is not None]
    print(f"\nsilences of 12 h or more: {len(long_ones)}, recall {len(hits) / len(long_ones):.3f},"
          f" median time to detection {median(hits):.1f} h (from the moment water use stopped)")
    both_rules = tallies["household"]["silence (both)"]
    print(f"silence + late morning alerts (one alert kind, water_silence):"
          f" {both_rules.alerts / own:.2f} per household-month, of which"
          f" {both_rules.absences / own:.2f} were silences of more than {ABSENCE_H} h (the"
          f" household away: an away mark suppresses them)")
    total = months["household"] + months["population"]
    print("silences in the real traces themselves (reported hours, no use), per household-month: "
          + ", ".join(f"{h} h or more {n / total:.2f}" for h, n in natural.items())
          + " (a detector that finds 95 % of 12 h silences within 12 h alerts on most of the"
            " natural ones too, unless the household's own history expects them)")
    if ranks:
        print(f"unusual-day ranking (IsolationForest, annotation only): a day holding an inserted"
              f" silence ranks above {100 * median(ranks):.0f} % of its household's days"
              f" (median over {len(ranks)}); in the top 10 % for"
              f" {100 * np.mean([r >= 0.9 for r in ranks]):.0f} %")
    print(f"\ndone in {time.monotonic() - started:.0f} s. Data: DAIAD project, swm_trialA,"
          f" CC BY-SA 4.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
