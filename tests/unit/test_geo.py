"""Distances on the Earth (cityops.org.geo), without servers."""

from __future__ import annotations

import pytest

from cityops.org.geo import distance_m


def test_haversine_distance() -> None:
    # one degree of latitude on the mean sphere, and a known city pair (Shanghai-Beijing ~1068 km)
    assert distance_m(121.0, 31.0, 121.0, 32.0) == pytest.approx(111_195, abs=1)
    assert distance_m(121.47, 31.23, 116.41, 39.90) == pytest.approx(1_068_000, rel=0.01)

