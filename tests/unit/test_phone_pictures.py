"""The phone page's pure parts: photo checks and the place map's tap arithmetic."""

from __future__ import annotations

import base64

import pytest

from cityops.cases.photos import Photo
from dashboards import photos, svgmap

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def test_photo_checks() -> None:
    ok = photos.decode("data:image/jpeg;base64," + base64.b64encode(JPEG).decode(), "a.jpg")
    assert ok == Photo(JPEG, "image/jpeg")
    png_named_jpeg = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    assert photos.decode("data:image/jpeg;base64,"
                         + base64.b64encode(png_named_jpeg).decode()).content_type == "image/png"
    with pytest.raises(ValueError, match="not a JPEG, PNG or WebP"):
        photos.decode("data:text/plain;base64," + base64.b64encode(b"hello").decode(), "a.txt")
    big = "data:image/jpeg;base64," + "A" * (6 * 1024 * 1024 * 4 // 3)
    with pytest.raises(ValueError, match="at most 5 MB"):
        photos.decode(big, "huge.jpg")
    with pytest.raises(ValueError, match="could not be read"):
        photos.decode("garbage", "x.jpg")


def test_place_map_and_its_tap_arithmetic() -> None:
    square = {"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.01, 31.0],
                                                  [121.01, 31.01], [121.0, 31.01],
                                                  [121.0, 31.0]]]}
    src, (west, south, east, north) = svgmap.place_map(
        [{"code": "X", "geometry": square}], own="X", focus=["X"], point=(121.005, 31.005))
    assert src.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    assert "<polygon" in svg and "<circle" in svg and "http" not in svg.replace(
        "http://www.w3.org/2000/svg", "")
    assert west < 121.0 and east > 121.01 and south < 31.0 and north > 31.01
    # the point drawn at the centre is where a tap at the centre lands (the browser's sum)
    fx, fy = 0.5, 0.5
    assert west + fx * (east - west) == pytest.approx(121.005)
    assert north - fy * (north - south) == pytest.approx(31.005)
    chart = svgmap.water_day({"now_hour": 3, "today": [1.0, None, 30.0, 2.0] + [None] * 20,
                              "band_low_l": [0.0] * 24, "band_high_l": [10.0] * 24,
                              "history_days": 14})
    assert base64.b64decode(chart.split(",", 1)[1]).decode().count("<rect") == 4

