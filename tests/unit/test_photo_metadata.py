"""Photos lose their metadata (EXIF, XMP) and keep their picture; no servers."""

from __future__ import annotations

from cityops.cases.photos import strip_metadata

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def test_strip_metadata_keeps_the_picture() -> None:
    exif = b"\xff\xe1\x00\x10Exif\x00\x00GPS-here"
    jpeg = JPEG[:2] + exif + JPEG[2:]
    assert b"GPS-here" in jpeg
    stripped = strip_metadata(jpeg)
    assert stripped == JPEG
    assert strip_metadata(b"not an image") == b"not an image"

