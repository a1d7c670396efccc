"""Photos from the phone (``dcc.Upload``): JPEG, PNG or WebP, at most 5 MB.

The browser checks first (the clientside callback :data:`CHECK_JS`, so a wrong or too large file
is refused before it is sent over a slow connection); the server checks again here, by the file's
own bytes rather than its name (:func:`cityops.cases.photos.image_type`), before it is stored.
"""

from __future__ import annotations

import base64
import binascii

from cityops.cases.photos import MAX_PHOTO_BYTES as MAX_BYTES
from cityops.cases.photos import PHOTO_TYPES, Photo, image_type

ACCEPT = ",".join(PHOTO_TYPES)


def decode(contents: str, filename: str | None = None) -> Photo:
    """The uploaded photo; ValueError with a message a person can act on when it is not a JPEG,
    PNG or WebP image of at most 5 MB."""
    name = f" {filename}" if filename else ""
    head, _, body = contents.partition(",")
    if not head.startswith("data:") or ";base64" not in head:
        raise ValueError(f"the photo{name} could not be read; choose it again")
    if len(body) * 3 // 4 > MAX_BYTES + 3:
        raise ValueError(f"the photo{name} is {len(body) * 3 / 4 / 2**20:.1f} MB; at most 5 MB"
                         " is allowed (take it again at a lower resolution)")
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the photo{name} could not be read; choose it again") from None
    if len(data) > MAX_BYTES:
        raise ValueError(f"the photo{name} is {len(data) / 2**20:.1f} MB; at most 5 MB is"
                         " allowed (take it again at a lower resolution)")
    kind = image_type(data)
    if kind is None:
        raise ValueError(f"the file{name} is not a JPEG, PNG or WebP photo")
    return Photo(data, kind)


# Runs in the browser when a file is chosen: says at once what is wrong with it (type, size).
CHECK_JS = """
function (contents, filename) {
    if (!contents) { return ['', '']; }
    var head = contents.slice(0, contents.indexOf(','));
    var bytes = Math.floor((contents.length - head.length - 1) * 3 / 4);
    var types = ['image/jpeg', 'image/png', 'image/webp'];
    var type = head.replace('data:', '').split(';')[0];
    if (types.indexOf(type) < 0) {
        return ['Not a photo: ' + filename + ' is not a JPEG, PNG or WebP image.', 'error'];
    }
    if (bytes > MAX_BYTES) {
        return ['Too large: ' + filename + ' is ' + (bytes / 1048576).toFixed(1)
                + ' MB; at most 5 MB is allowed.', 'error'];
    }
    return ['Photo ready: ' + filename + ' (' + Math.ceil(bytes / 1024) + ' kB).', 'ok'];
}
""".replace("MAX_BYTES", str(MAX_BYTES))
