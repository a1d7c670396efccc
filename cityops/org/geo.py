"""Distances on the Earth, for places in the district (cases, workers, cameras, gauges).

Great-circle distances on a sphere of the Earth's mean radius (haversine), exact to well under a
metre at the few hundred metres that matter here. :func:`degrees_around` turns a radius into the
half-widths of a bounding box, so a query can narrow a search in SQL before measuring exactly.
(A library such as pyproj would measure on the ellipsoid; at these distances the sphere is as good
and costs no dependency.)
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def degrees_around(lat: float, radius_m: float) -> tuple[float, float]:
    """(dlon, dlat): the degrees of longitude and latitude that ``radius_m`` spans at ``lat``."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    return dlat / max(math.cos(math.radians(lat)), 1e-6), dlat
