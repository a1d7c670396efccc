"""``GET /photos/<id>``: a case's photo for a signed-in user (the ticket and worker pages link to
it). Operations, admin, supervisor and hotline users see every photo; a grid worker only the
photos of cases assigned to them or in their cell; anyone else gets 403, an anonymous visitor is
sent to sign in (the guard in :mod:`dashboards.auth`). The answer is ``Cache-Control: private``:
shared caches never keep it. The rule is :func:`cityops.cases.photos.photo_access`.
"""

from __future__ import annotations

from flask import Blueprint, Response

from cityops.cases.photos import photo_access
from dashboards.context import context
from dashboards.users import signed_in

blueprint = Blueprint("photos", __name__)


@blueprint.get("/photos/<int:photo_id>")
def photo(photo_id: int) -> Response:
    """The photo, if the signed-in user may see it."""
    user = signed_in()
    if user is None:
        return Response("sign in first", 401, mimetype="text/plain")
    found = photo_access(context().db, photo_id, user.role, user.worker_id)
    if found == "missing":
        return Response("no such photo", 404, mimetype="text/plain")
    if isinstance(found, str):
        return Response("this photo is not for your role", 403, mimetype="text/plain")
    response = Response(found.data, mimetype=found.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
