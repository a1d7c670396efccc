"""Replay real FloodNet street-flood events through CityOps' flood detector and FloodNet's own rule.

    .venv/bin/python -m bench.floodnet_eval --seed 1   # ../shared/data/floodnet/flood-events-...
    .venv/bin/python -m bench.floodnet_eval PATH/TO/flood-events-2020-2024.csv --seed 1

Each event of the file (FloodNet NYC / NYC Open Data) becomes one sensor-day: its depth profile,
linearly interpolated onto a reading every minute (at a random phase), inside dry street around it
(at least 3 h before, the rest of the day after). Sensor noise is added everywhere (see
``noisy_readings``): a dry street reads 0 or 1-9 mm, water reads its depth +- N(0, 3 mm); about four
readings a day are spikes (70 % objects under the sensor at 300-2500 mm lasting 1-3 readings, 30 %
single reflections at 15-250 mm) and 2 % of readings are lost.

Both detectors see the same readings and the same alert level, 3 in = 76.2 mm:

- CityOps: ``models.street.flood_depth`` (the code the pipeline runs) evaluated at every reading on
  the pipeline's window (``cityops.sensing.detection.LOOKBACK``), with the alert lifecycle of
  ``cityops.sensing.alerts``: a raise opens an alert when none is open for the gauge, else repeats
  it; a clear resolves it. ``models.street.gauge_fault`` runs too (device-fault alerts are counted);
- FloodNet: readings under 10 mm are 0, a reading further from the last kept one than 10 in/min
  over the time since the previous reading (at least a minute) is dropped, and an alert fires
  when the mean of the last 5 minutes goes over 76.2 mm (rising edge).

An alert opened between an event's start and 60 min after its end belongs to the event; any other
is a false alert on a dry period. Figures: detection rate of events deeper than 3 in (per the
file's max_depth_inches), median delay from the true crossing of 76.2 mm (on the noise-free
profile) to the alert, false alerts per sensor-month of dry time, and the share of detected events
with more than one alert. A window whose readings are all under the noise floor while no alert is
open is skipped: on it the detector can neither raise nor change anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench import reference_data
from cityops.app.street_rules import flood_params
from cityops.platform.settings import StreetSettings
from cityops.sensing.detection import LOOKBACK
from models.street import FloodParams, flood_depth, gauge_fault, street_levels_from

FLOODNET_FILE = ("floodnet", "flood-events-2020-2024.csv")

ALERT_MM = 76.2
INCH_MM = 25.4
STEP_S = 60.0
DAY_S = 86_400.0
MIN_BEFORE_S = 3 * 3600.0
EVENT_MARGIN_S = 3600.0
MONTH_S = 30 * DAY_S
SPIKE_P = 1 / 360
LOSS_P = 0.02
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Replay:
    """One sensor-day: reading times (s), noisy depths, and where the event lies in it."""

    t: np.ndarray
    depth: np.ndarray
    event_start: float
    event_end: float
    crossing: float | None
    max_mm: float


@dataclass
class Outcome:
    """Alert opening times of one detector on one sensor-day."""

    alerts: list[float] = field(default_factory=list)
    faults: int = 0


def parse_events(path: Path) -> pd.DataFrame:
    """The events with their profiles as arrays (depth in mm, seconds since the start)."""
    events = pd.read_csv(path)
    events["depth_mm"] = [np.array(json.loads(s)) * INCH_MM
                          for s in events["flood_profile_depth_inches"]]
    events["secs"] = [np.array(json.loads(s), dtype=float)
                      for s in events["flood_profile_time_secs"]]
    return events


def true_crossing(secs: np.ndarray, depth: np.ndarray, level: float) -> float | None:
    """First time the linearly interpolated profile reaches ``level`` (s since the start)."""
    above = np.nonzero(depth >= level)[0]
    if not len(above):
        return None
    i = int(above[0])
    if i == 0:
        return float(secs[0])
    frac = (level - depth[i - 1]) / (depth[i] - depth[i - 1])
    return float(secs[i - 1] + frac * (secs[i] - secs[i - 1]))


def noisy_readings(secs: np.ndarray, depth: np.ndarray, rng: np.random.Generator) -> Replay:
    """A sensor-day of noisy one-minute readings around one event profile."""
    duration = float(secs[-1])
    length = max(DAY_S, duration + MIN_BEFORE_S + 3 * 3600.0)
    start = MIN_BEFORE_S + rng.uniform(0, length - duration - MIN_BEFORE_S - 3 * 3600.0)
    t = np.arange(rng.uniform(0, STEP_S), length, STEP_S)
    truth = np.interp(t - start, secs, depth, left=0.0, right=0.0)
    wet = truth > 0
    dry_noise = np.where(rng.random(len(t)) < 0.65, 0.0,
                         np.minimum(9.0, np.round(1.0 + np.abs(rng.normal(0, 3.0, len(t))))))
    wet_noise = np.maximum(np.round(truth + rng.normal(0, 3.0, len(t))), 0.0)
    values = np.where(wet, wet_noise, dry_noise)
    for i in np.nonzero(rng.random(len(t)) < SPIKE_P)[0]:
        if rng.random() < 0.7:
            burst = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
            level = rng.uniform(300.0, 2500.0)
            for k in range(i, min(i + burst, len(t))):
                values[k] = round(level * rng.uniform(0.9, 1.1))
        else:
            values[i] = round(rng.uniform(15.0, 250.0))
    kept = rng.random(len(t)) >= LOSS_P
    crossing = true_crossing(secs, depth, ALERT_MM)
    return Replay(t[kept], values[kept], start, start + duration,
                  None if crossing is None else start + crossing, float(depth.max()))


def run_cityops(replay: Replay, params: FloodParams, lookback_s: float) -> Outcome:
    """Every reading through flood_depth and gauge_fault with the alert lifecycle."""
    levels = street_levels_from(ALERT_MM)
    times = [EPOCH + timedelta(seconds=float(s)) for s in replay.t]
    values = replay.depth.tolist()
    floor = params.cleaning.noise_floor_mm
    below = replay.depth < floor
    # count of readings at or over the floor up to each index, to skip all-dry windows fast
    wet_before = np.concatenate([[0], np.cumsum(~below)])
    starts = np.searchsorted(replay.t, replay.t - lookback_s, side="right")
    out = Outcome()
    flood_open = fault_open = False
    for i in range(len(values)):
        lo = int(starts[i])
        if not flood_open and not fault_open and wet_before[i + 1] == wet_before[lo]:
            continue
        window_t, window_v = times[lo:i + 1], values[lo:i + 1]
        d = flood_depth(window_t, window_v, levels, "gauge", params=params)
        if d is not None:
            if d.action == "raise" and not flood_open:
                out.alerts.append(float(replay.t[i]))
                flood_open = True
            elif d.action == "clear":
                flood_open = False
        f = gauge_fault(window_t, window_v, "gauge", params=params)
        if f is not None:
            if f.action == "raise" and not fault_open:
                out.faults += 1
            fault_open = f.action == "raise"
    return out


def run_floodnet(replay: Replay) -> Outcome:
    """FloodNet's rule: floor, drop > 10 in/min jumps, 5-minute mean over 76.2 mm, rising edge."""
    out = Outcome()
    kept_t: list[float] = []
    kept_v: list[float] = []
    above = False
    lo = 0
    previous = float(replay.t[0])
    for ts, raw in zip(replay.t.tolist(), replay.depth.tolist(), strict=True):
        v = raw if raw >= 10.0 else 0.0
        minutes, previous = max((ts - previous) / 60.0, 1.0), ts
        if kept_t and abs(v - kept_v[-1]) > 10 * INCH_MM * minutes:
            continue
        kept_t.append(ts)
        kept_v.append(v)
        while kept_t[lo] <= ts - 300.0:
            lo += 1
        mean = sum(kept_v[lo:]) / (len(kept_v) - lo)
        if mean > ALERT_MM and not above:
            out.alerts.append(ts)
        above = mean > ALERT_MM
    return out


@dataclass
class Figures:
    """What one detector achieved over every sensor-day."""

    deep: int = 0
    detected: int = 0
    delays_min: list[float] = field(default_factory=list)
    false_alerts: int = 0
    dry_s: float = 0.0
    alerts_per_event: list[int] = field(default_factory=list)
    shallow_alerted: int = 0
    shallow: int = 0
    faults: int = 0

    def add(self, replay: Replay, outcome: Outcome, deep: bool) -> None:
        own = [a for a in outcome.alerts
               if replay.event_start <= a <= replay.event_end + EVENT_MARGIN_S]
        self.false_alerts += len(outcome.alerts) - len(own)
        self.faults += outcome.faults
        self.dry_s += float(replay.t[-1] - replay.t[0]) - (
            replay.event_end + EVENT_MARGIN_S - replay.event_start)
        if deep:
            self.deep += 1
            self.alerts_per_event.append(len(own))
            if own:
                self.detected += 1
                if replay.crossing is not None:
                    self.delays_min.append((own[0] - replay.crossing) / 60.0)
        else:
            self.shallow += 1
            self.shallow_alerted += bool(own)

    def rows(self) -> dict[str, str]:
        counts = np.array(self.alerts_per_event)
        detected = counts[counts > 0]
        delays = np.array(self.delays_min)
        return {
            "events deeper than 3 in": f"{self.deep}",
            "detection rate": f"{100 * self.detected / self.deep:.1f} %",
            "median delay after the true crossing": f"{np.median(delays):.2f} min",
            "p90 delay": f"{np.percentile(delays, 90):.2f} min",
            "events with more than one alert": f"{100 * (detected > 1).mean():.1f} %",
            "most alerts for one event": f"{int(counts.max())}",
            "false alerts on dry periods": f"{self.false_alerts}",
            "dry sensor-months": f"{self.dry_s / MONTH_S:.1f}",
            "false alerts per sensor-month": f"{self.false_alerts / (self.dry_s / MONTH_S):.3f}",
            "events up to 3 in with an alert": f"{self.shallow_alerted} of {self.shallow}",
            "device-fault alerts": f"{self.faults}",
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("events", type=Path, nargs="?", default=reference_data(*FLOODNET_FILE),
                        help="flood-events CSV in FloodNet's format (default: the reference"
                             " data, bench/README.md)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthesised noise")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N events")
    args = parser.parse_args(argv)
    if not args.events.is_file():
        parser.error(f"{args.events} does not exist")
    events = parse_events(args.events)
    if args.limit:
        events = events.head(args.limit)
    rng = np.random.default_rng(args.seed)
    params = flood_params(StreetSettings())
    lookback_s = LOOKBACK["flood_gauge"].total_seconds()
    ours, theirs = Figures(), Figures()
    started = time.monotonic()
    for n, event in enumerate(events.itertuples(), start=1):
        replay = noisy_readings(event.secs, event.depth_mm, rng)
        deep = float(event.max_depth_inches) > 3.0
        ours.add(replay, run_cityops(replay, params, lookback_s), deep)
        theirs.add(replay, run_floodnet(replay), deep)
        if n % 200 == 0:
            print(f"{n} events replayed ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    a, b = ours.rows(), theirs.rows()
    b["device-fault alerts"] = "-"
    width = max(map(len, a))
    print(f"{len(events)} FloodNet events from {args.events.name}, seed {args.seed}, "
          f"alert level {ALERT_MM} mm, lookback {lookback_s / 60:.0f} min")
    print(f"{'':{width}}  {'CityOps':>12}  {'FloodNet rule':>14}")
    for key in a:
        print(f"{key:{width}}  {a[key]:>12}  {b[key]:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
