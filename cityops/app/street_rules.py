"""Wiring of the street-sensor detectors (flood gauges, manhole covers) to the pipeline.

Thresholds come from ``settings.detection`` (``flood_depth_mm``, ``manhole_tilt_deg`` and the
``street`` section); a device's ``config`` overrides them (keys in docs/street-detectors.md). A
device whose config cannot be used is evaluated with the defaults and logged, so one bad row never
stops the detection of the rest of the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cityops.platform.settings import DetectionSettings, Settings, StreetSettings
from cityops.sensing.detection import DecisionLike, DeviceInfo, Evaluate, Window
from models import street
from models.decisions import Decision

log = logging.getLogger(__name__)

# devices.config keys of a flood gauge that replace a StreetSettings field of the same name
GAUGE_KEYS = ("clear_fraction", "clear_minutes", "noise_floor_mm", "spike_mm", "stuck_minutes")


def flood_params(limits: StreetSettings, config: Mapping[str, Any] | None = None) -> (
    street.FloodParams
):
    """The flood rule's parameters from settings, with a gauge's own values from ``config``
    (a river gauge clears at ``river_clear_fraction`` of its action stage by default)."""
    config = config or {}
    own = {k: float(v) for k, v in config.items() if k in GAUGE_KEYS}
    if config.get("scheme") == "river" and "clear_fraction" not in own:
        own["clear_fraction"] = limits.river_clear_fraction
    merged = limits.model_copy(update=own)
    params = street.FloodParams(
        cleaning=street.CleaningParams(
            noise_floor_mm=merged.noise_floor_mm,
            max_rate_mm_per_min=merged.max_rate_mm_per_min,
            jump_confirm_readings=merged.jump_confirm_readings,
            spike_mm=merged.spike_mm,
        ),
        clear_fraction=merged.clear_fraction,
        clear_minutes=merged.clear_minutes,
        trend_minutes=merged.trend_minutes,
        forecast_horizon_minutes=merged.forecast_horizon_minutes,
        min_rise_mm_per_min=merged.min_rise_mm_per_min,
        stuck_minutes=merged.stuck_minutes,
        stuck_min_readings=merged.stuck_min_readings,
    )
    if not 0 < params.clear_fraction < 1:
        raise ValueError(f"clear_fraction must be between 0 and 1, got {params.clear_fraction}")
    return params


def gauge_levels(limits: DetectionSettings, config: Mapping[str, Any] | None = None) -> (
    street.Levels
):
    """A gauge's levels: ``scheme`` "street" (default) or "river"; street ``levels_mm`` (1-3)
    or ``threshold_mm`` (the first level, default levels above it); river ``river_stages_mm``."""
    config = config or {}
    scheme = config.get("scheme", "street")
    if scheme == "river":
        return street.river_levels(config.get("river_stages_mm", limits.street.river_stages_mm))
    if scheme != "street":
        raise ValueError(f"scheme must be 'street' or 'river', got {scheme!r}")
    if "levels_mm" in config:
        return street.street_levels(config["levels_mm"])
    defaults = [limits.flood_depth_mm, *limits.street.higher_levels_mm]
    return street.street_levels_from(float(config.get("threshold_mm", limits.flood_depth_mm)),
                                     defaults)


def street_rules(settings: Settings) -> Evaluate:
    """Evaluate a flood gauge's or a manhole cover's window with its own or default thresholds."""
    limits = settings.detection
    default_params = flood_params(limits.street)
    default_levels = gauge_levels(limits)

    def gauge_setup(device: DeviceInfo) -> tuple[street.Levels, street.FloodParams]:
        try:
            return gauge_levels(limits, device.config), flood_params(limits.street, device.config)
        except (TypeError, ValueError) as exc:
            log.error("unusable flood-gauge config, defaults used",
                      extra={"device": device.id, "reason": str(exc)})
            return default_levels, default_params

    def cover_limits(device: DeviceInfo) -> dict[str, float]:
        defaults = {"tilt_deg": limits.manhole_tilt_deg,
                    "tilt_clear_deg": limits.street.manhole_tilt_clear_deg,
                    "well_water_mm": limits.street.manhole_well_water_mm,
                    "well_clear_mm": limits.street.manhole_well_clear_mm}
        try:
            return {k: float(device.config.get(k, v)) for k, v in defaults.items()}
        except (TypeError, ValueError) as exc:
            log.error("unusable manhole-cover config, defaults used",
                      extra={"device": device.id, "reason": str(exc)})
            return defaults

    def evaluate(device: DeviceInfo, window: Window) -> Sequence[DecisionLike]:
        found: list[Decision | None] = []
        if device.kind == "flood_gauge":
            times, depth = window.series("depth_mm")
            levels, params = gauge_setup(device)
            fault = street.gauge_fault(times, depth, device.label, params=params)
            found.append(fault)
            if fault is None or fault.action != "raise":
                found.append(street.flood_depth(times, depth, levels, device.label,
                                                params=params, tz=settings.tz))
        elif device.kind == "manhole_cover":
            own = cover_limits(device)
            times, tilt = window.series("tilt_deg")
            lifted_at = dict(zip(*window.series("lifted"), strict=True))
            lifted = [lifted_at.get(t, 0.0) for t in times]
            found.append(street.manhole_cover(times, tilt, lifted, own["tilt_deg"], device.label,
                                              clear_deg=own["tilt_clear_deg"]))
            well_times, well = window.series("well_water_mm")
            found.append(street.manhole_water(well_times, well, own["well_water_mm"],
                                              device.label, clear_mm=own["well_clear_mm"]))
        return [d for d in found if d is not None]

    return evaluate

