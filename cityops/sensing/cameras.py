"""Cameras near a place: which street cameras can show an operator what a flood gauge measures.

Distances are great-circle distances on a sphere of the Earth's mean radius (haversine), exact to
well under a metre at the few hundred metres that matter here. The database narrows the search to
a bounding box first, so the cost does not grow with the number of cameras far away.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg

EARTH_RADIUS_M = 6_371_008.8
NEARBY_M = 300.0
# alert kinds whose details list the cameras within NEARBY_M of the device
NEAR_ALERT_KINDS = frozenset({"flood_depth"})


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cameras_within(
    conn: psycopg.Connection[Any], lon: float, lat: float, radius_m: float = NEARBY_M,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Cameras within ``radius_m`` of a point, nearest first (at most ``limit``): id, label,
    distance in whole metres, lon, lat and stream URL."""
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    rows = conn.execute(
        "SELECT id, label, lon, lat, stream_url FROM cameras"
        " WHERE lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s",
        (lat - dlat, lat + dlat, lon - dlon, lon + dlon),
    ).fetchall()
    found = []
    for row in rows:
        cam = row if isinstance(row, dict) else dict(
            zip(("id", "label", "lon", "lat", "stream_url"), row, strict=True))
        d = distance_m(lon, lat, cam["lon"], cam["lat"])
        if d <= radius_m:
            found.append({**cam, "distance_m": round(d)})
    found.sort(key=lambda c: (c["distance_m"], c["id"]))
    return found[:limit]
