"""Cameras near a place: which street cameras can show an operator what a flood gauge measures.

Distances are great-circle distances (:mod:`cityops.org.geo`). The database narrows the search to
a bounding box first, so the cost does not grow with the number of cameras far away.
"""

from __future__ import annotations

from typing import Any

import psycopg

from cityops.org.geo import degrees_around, distance_m

NEARBY_M = 300.0
# alert kinds whose details list the cameras within NEARBY_M of the device
NEAR_ALERT_KINDS = frozenset({"flood_depth"})


def cameras_within(
    conn: psycopg.Connection[Any], lon: float, lat: float, radius_m: float = NEARBY_M,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Cameras within ``radius_m`` of a point, nearest first (at most ``limit``): id, label,
    distance in whole metres, lon, lat and stream URL."""
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    dlon, dlat = degrees_around(lat, radius_m)
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
