"""Photos of cases: what an upload is, its metadata removed, and who may see a stored photo.

- :func:`image_type` tells a JPEG, PNG or WebP image by its first bytes (the type a client
  claims is not trusted).
- :func:`strip_metadata` removes what a phone writes into a photo besides the picture (EXIF with
  the GPS position, the time and the phone's serial number, XMP, IPTC, text chunks) without
  re-encoding it: a citizen's photo is published through Open311 (``media_url``), and the
  reporter's whereabouts and device are not ours to publish.
- :func:`photo_access` applies the rule for signed-in users: operations, admin, supervisor and
  hotline see every photo; a grid worker only photos of cases assigned to them or in their cell;
  anyone else none. (The one photo anybody may fetch, through Open311, is
  :func:`cityops.cases.public.public_photo`.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cityops.platform.database import Database

MAX_PHOTO_BYTES = 5 * 1024 * 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
SEE_ALL_ROLES = ("operations", "admin", "supervisor", "hotline")
# uploaded_by of photos that came in with a citizen's Open311 request
OPEN311_UPLOADER = "open311"


@dataclass(frozen=True)
class Photo:
    """An image as stored: its bytes and content type."""

    data: bytes
    content_type: str


def image_type(data: bytes) -> str | None:
    """``image/jpeg``, ``image/png`` or ``image/webp`` by the file's signature, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def strip_metadata(data: bytes) -> bytes:
    """The image without EXIF, XMP, IPTC and text metadata (the picture untouched); an image
    this cannot parse is returned as it is."""
    kind = image_type(data)
    try:
        if kind == "image/jpeg":
            return _strip_jpeg(data)
        if kind == "image/png":
            return _strip_png(data)
        if kind == "image/webp":
            return _strip_webp(data)
    except (IndexError, struct.error, ValueError):
        return data
    return data


def _strip_jpeg(data: bytes) -> bytes:
    # Segments up to the start of scan; drop APP1 (EXIF, XMP), APP13 (IPTC) and comments, keep
    # APP0 (JFIF), APP2 (ICC colour profile), APP14 (Adobe colour transform) and the rest.
    out, pos = bytearray(data[:2]), 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan (the rest is the picture), end of image
            out += data[pos:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out += data[pos:pos + 2]
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        end = pos + 2 + length
        if end > len(data):
            raise ValueError("truncated JPEG segment")
        if marker not in (0xE1, 0xED, 0xFE):
            out += data[pos:end]
        pos = end
    return bytes(out)


_PNG_DROP = {b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"tIME"}


def _strip_png(data: bytes) -> bytes:
    out, pos = bytearray(data[:8]), 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunk_type = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        if chunk_type not in _PNG_DROP:
            out += data[pos:end]
        pos = end
        if chunk_type == b"IEND":
            break
    return bytes(out)


def _strip_webp(data: bytes) -> bytes:
    chunks, pos = bytearray(), 12
    while pos + 8 <= len(data):
        fourcc = data[pos:pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > len(data):
            raise ValueError("truncated WebP chunk")
        chunk = bytearray(data[pos:end])
        if fourcc == b"VP8X":
            chunk[8] &= ~0x0C & 0xFF  # the flags: no EXIF (0x08), no XMP (0x04)
        if fourcc not in (b"EXIF", b"XMP "):
            chunks += chunk
        pos = end
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + bytes(chunks)


def check_photo(data: bytes) -> tuple[Photo | None, str | None]:
    """``(Photo, None)`` for an acceptable upload, else ``(None, reason)`` a person can act on."""
    if not data:
        return None, "the file is empty"
    if len(data) > MAX_PHOTO_BYTES:
        return None, (f"a photo may be at most 5 MB; this one is {len(data) / 2**20:.1f} MB")
    kind = image_type(data)
    if kind is None:
        return None, "a photo must be a JPEG, PNG or WebP image"
    return Photo(data, kind), None


def photo_access(db: Database, photo_id: int, role: str, worker_id: str | None) -> Photo | str:
    """The photo if a signed-in user of ``role`` (a grid worker: ``worker_id``) may see it, else
    ``"missing"`` (no such photo) or ``"forbidden"``."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT p.content_type, p.data, t.worker_id, t.grid_code,"
            "       (SELECT w.cell_code FROM workers w WHERE w.id = %s) AS my_cell"
            " FROM case_photos p JOIN tickets t ON t.id = p.ticket_id WHERE p.id = %s",
            (worker_id, photo_id),
        ).fetchone()
    if row is None:
        return "missing"
    if role in SEE_ALL_ROLES:
        allowed = True
    elif role == "grid_worker" and worker_id is not None:
        allowed = row["worker_id"] == worker_id or (
            row["my_cell"] is not None and row["grid_code"] == row["my_cell"])
    else:
        allowed = False
    return Photo(bytes(row["data"]), row["content_type"]) if allowed else "forbidden"
