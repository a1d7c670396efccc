"""Wiring of the street-sensor detectors (flood gauges, manhole covers) to the pipeline."""

from __future__ import annotations

from collections.abc import Sequence

from cityops.detection import DecisionLike, DeviceInfo, Evaluate, Window
from cityops.settings import Settings
from models import street
from models.decisions import Decision


def street_rules(settings: Settings) -> Evaluate:
    """Evaluate a flood gauge's or a manhole cover's window with its own or default thresholds."""
    limits = settings.detection

    def evaluate(device: DeviceInfo, window: Window) -> Sequence[DecisionLike]:
        found: list[Decision | None] = []
        if device.kind == "flood_gauge":
            times, depth = window.series("depth_mm")
            threshold = float(device.config.get("threshold_mm", limits.flood_depth_mm))
            found.append(street.flood_depth(times, depth, threshold, device.label))
        elif device.kind == "manhole_cover":
            times, tilt = window.series("tilt_deg")
            lifted_at = dict(zip(*window.series("lifted"), strict=True))
            lifted = [lifted_at.get(t, 0.0) for t in times]
            threshold = float(device.config.get("tilt_deg", limits.manhole_tilt_deg))
            found.append(street.manhole_cover(times, tilt, lifted, threshold, device.label))
        return [d for d in found if d is not None]

    return evaluate
