"""Small pictures for the phone, drawn on the server as SVG: a place map (grid cells and a point)
and a water meter's day. They travel as ``data:`` images of a few kilobytes: no map library, no
plotly.js, no tiles or fonts, so the phone page stays light and works offline.

The map is an equirectangular projection scaled by cos(latitude) (exact enough for a few
kilometres). Its bounding box (west, south, east, north) is returned with it: a tap at fractions
(fx, fy) of the picture is at ``lon = west + fx * (east - west)``, ``lat = north - fy * (north -
south)``; the page's tap handler does that sum in the browser.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Bbox = tuple[float, float, float, float]  # west, south, east, north

CELL_FILL = "#1a2b45"
CELL_LINE = "#5b7194"
OWN_FILL = "#22406b"
OWN_LINE = "#8cc4ff"
BACKGROUND = "#0b1322"


def data_uri(svg: str) -> str:
    """The SVG as a ``data:`` URL for an ``<img>`` (the CSP allows ``img-src data:``)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _rings(geometry: Mapping[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    if geometry["type"] == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def _bounds(points: Iterable[Sequence[float]]) -> Bbox:
    xs, ys = zip(*((p[0], p[1]) for p in points), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def fit_bbox(bounds: Bbox, width: int, height: int, margin: float = 0.12) -> Bbox:
    """``bounds`` grown by ``margin`` and to the picture's aspect ratio (in projected units)."""
    west, south, east, north = bounds
    k = math.cos(math.radians((south + north) / 2))
    span_x = max((east - west) * k, 1e-5) * (1 + 2 * margin)
    span_y = max(north - south, 1e-5) * (1 + 2 * margin)
    if span_x / span_y < width / height:
        span_x = span_y * width / height
    else:
        span_y = span_x * height / width
    cx, cy = (west + east) / 2, (south + north) / 2
    return cx - span_x / k / 2, cy - span_y / 2, cx + span_x / k / 2, cy + span_y / 2


def place_map(
    cells: Sequence[Mapping[str, Any]],
    *,
    own: str | None = None,
    focus: Sequence[str] = (),
    point: tuple[float, float] | None = None,
    point_colour: str = "#ff4d4f",
    width: int = 360,
    height: int = 220,
) -> tuple[str, Bbox]:
    """An SVG map of ``cells`` (dicts with code and GeoJSON geometry) framed on the ``focus``
    cells (and the point), the ``own`` cell highlighted, the point as a ringed dot."""
    framed = [c for c in cells if c["code"] in focus] or list(cells)
    corners = [p for c in framed for ring in _rings(c["geometry"]) for p in ring]
    if point is not None:
        corners.append([point[0], point[1]])
    if not corners:
        raise ValueError("nothing to draw: no cell and no point")
    bbox = fit_bbox(_bounds(corners), width, height)
    west, south, east, north = bbox

    def xy(lon: float, lat: float) -> str:
        return (f"{(lon - west) / (east - west) * width:.1f},"
                f"{(north - lat) / (north - south) * height:.1f}")

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
             f' width="{width}" height="{height}">',
             f'<rect width="{width}" height="{height}" fill="{BACKGROUND}"/>']
    def visible(cell: Mapping[str, Any]) -> bool:
        points = [p for ring in _rings(cell["geometry"]) for p in ring]
        if not points:
            return False
        w, s, e, n = _bounds(points)
        return w <= east and e >= west and s <= north and n >= south

    # only the cells in the picture (a district has hundreds); the own cell last, on top
    ordered = sorted(filter(visible, cells), key=lambda c: c["code"] == own)
    for cell in ordered:
        mine = cell["code"] == own
        for ring in _rings(cell["geometry"]):
            path = " ".join(xy(p[0], p[1]) for p in ring)
            parts.append(
                f'<polygon points="{path}" fill="{OWN_FILL if mine else CELL_FILL}"'
                f' stroke="{OWN_LINE if mine else CELL_LINE}"'
                f' stroke-width="{3 if mine else 1.2}" stroke-linejoin="round"/>')
    if point is not None:
        x, y = xy(*point).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="13" fill="none" stroke="#fff"'
                     f' stroke-width="3"/><circle cx="{x}" cy="{y}" r="8"'
                     f' fill="{point_colour}"/>')
    parts.append("</svg>")
    return data_uri("".join(parts)), bbox


def water_day(chart: Mapping[str, Any], width: int = 360, height: int = 170) -> str:
    """A water meter's litres per hour today (bars) over its usual range (band), as an SVG
    ``data:`` URL; ``chart`` is :func:`cityops.views.queries.water_day_chart`'s answer."""
    left, right, top, bottom = 34, 6, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    upto = chart["now_hour"] + 1
    today = [v or 0.0 for v in chart["today"][:upto]]
    high = chart["band_high_l"]
    low = chart["band_low_l"]
    top_value = max([*today, *(high or []), 1.0])
    scale = plot_h / (top_value * 1.1)
    slot = plot_w / 24

    def y(v: float) -> float:
        return top + plot_h - v * scale

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
             f' width="{width}" height="{height}" font-family="sans-serif" font-size="12"'
             ' fill="#9fb0c8">']
    if high is not None and low is not None:
        upper = [f"{left + h * slot:.1f},{y(high[h]):.1f} {left + (h + 1) * slot:.1f},"
                 f"{y(high[h]):.1f}" for h in range(24)]
        lower = [f"{left + (h + 1) * slot:.1f},{y(low[h]):.1f} {left + h * slot:.1f},"
                 f"{y(low[h]):.1f}" for h in reversed(range(24))]
        parts.append(f'<polygon points="{" ".join(upper + lower)}"'
                     ' fill="rgba(116,192,252,0.35)"/>')
    for h, v in enumerate(today):
        bar = v * scale
        parts.append(f'<rect x="{left + h * slot + 1:.1f}" y="{top + plot_h - bar:.1f}"'
                     f' width="{slot - 2:.1f}" height="{bar:.1f}" fill="#ffd43b"/>')
    base = top + plot_h
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}"'
                 ' stroke="#5b7194"/>')
    for h in (0, 6, 12, 18):
        parts.append(f'<text x="{left + h * slot:.1f}" y="{height - 6}">{h:02d}:00</text>')
    parts.append(f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">'
                 f'{top_value * 1.1:.0f}</text>')
    parts.append(f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>')
    parts.append("</svg>")
    return data_uri("".join(parts))
