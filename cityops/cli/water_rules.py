"""Wiring of the water-meter detectors (models) to the detection pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from cityops.detection import DecisionLike, DeviceInfo, Evaluate, Window
from cityops.settings import Settings
from models import water_use


def water_rules(settings: Settings) -> Evaluate:
    """Evaluate a water meter's window: long silence, water that never stops."""
    limits = settings.detection
    tz = settings.tz

    def evaluate(device: DeviceInfo, window: Window) -> Sequence[DecisionLike]:
        times, volume = window.series("volume_l")
        found = [
            water_use.water_silence(times, volume, timedelta(hours=limits.water_silence_hours), tz),
            water_use.water_running(times, volume, timedelta(hours=limits.water_running_hours), tz,
                                    min_flow_l=limits.water_running_min_l),
        ]
        return [d for d in found if d is not None]

    return evaluate
