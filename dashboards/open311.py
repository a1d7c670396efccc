"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) at ``/open311/v2``: existing 311
clients list our services, file requests with a place, a description and a photo, and follow them.

JSON only (``.json``); XML is not offered (a ``.xml`` URL gets a 400 saying so). The routes are
public (no sign-in); filing may need an ``api_key`` (setting ``open311_api_keys``; empty: open).

=====================================  ==========================================================
``GET  /discovery.json``               where the API is and what it speaks
``GET  /services.json``                the categories citizens may report (``public`` in the
                                       categories file): service_code is our code (``E0401``)
``GET  /services/<code>.json``         a service's definition: no extra attributes
``POST /requests.json``                file a request (form-encoded or multipart)
``GET  /requests.json``                requests by ``service_request_id`` (comma list), or by
                                       ``service_code``, ``start_date``, ``end_date``, ``status``
                                       (default: the last 90 days; at most 1000, newest first)
``GET  /requests/<id>.json``           one request
``GET  /media/<photo id>``             the photo a citizen filed with a published request
=====================================  ==========================================================

A request is filed through :func:`cityops.cases.intake.file_case` as a ``citizen`` case: it waits in
``reported`` for the operations centre to accept it; a report of the same thing near an open
case is linked to it and closed as a duplicate (the ``service_notice`` says so). ``media`` is an
uploaded JPEG, PNG or WebP of at most 5 MB (stored without its EXIF/XMP metadata); ``media_url``
is kept in the description as given and never fetched (the centre works offline). ``device_id``
and ``account_id`` are not kept. The reporter's name, phone and e-mail are stored for the centre
and never published. What is published (and what is not: hotline cases, care cases E08xx, water
meter cases) is :mod:`cityops.cases.public`.

Errors follow Open311: ``[{"code": 400, "description": "lat: ..."}, ...]`` with one item per
problem, each naming the field to fix; a request with any problem is rejected whole. 403: a
missing or wrong api_key; 404: no such service or request.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from cityops.cases import public as public_cases
from cityops.cases.intake import IntakeError
from cityops.cases.photos import OPEN311_UPLOADER, Photo, check_photo, strip_metadata
from cityops.cases.tickets import Actor, NewCase
from dashboards.context import AppContext, context

PREFIX = "/open311/v2"
SPEC = "http://wiki.open311.org/GeoReport_v2"
ACTOR = Actor(OPEN311_UPLOADER, "system")
MAX_BODY = 6 * 1024 * 1024  # a 5 MB photo and the text fields
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# NewCase field -> the Open311 field a person fixes
FIELD_NAMES = {"category": "service_code", "lon": "long", "lat": "lat", "photos": "media",
               "title": "service_code", "grid_code": "lat", "source": "service_code"}
STATUS_NOTES = {
    "reported": "received; waiting for the operations centre to accept it",
    "accepted": "accepted; being sent to a grid worker",
    "registered": "accepted; being sent to a grid worker",
    "dispatched": "sent to a grid worker",
    "returned": "being sent to another grid worker",
    "signed_for": "a grid worker is on it",
    "in_progress": "being handled",
    "postponed": "being handled; postponed with approval",
    "rework": "being handled again",
    "handled": "handled; waiting for a check on site",
    "verified": "handled and checked on site",
    "closed": "closed",
    "evaluated": "closed",
    "voided": "not taken up by the operations centre",
}


class Problems(Exception):
    """One or more Open311 errors of one status code."""

    def __init__(self, code: int, descriptions: list[str]) -> None:
        super().__init__("; ".join(descriptions))
        self.code = code
        self.descriptions = descriptions


def _errors(code: int, descriptions: list[str]) -> Response:
    response = jsonify([{"code": code, "description": d} for d in descriptions])
    response.status_code = code
    return response


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Open311:
    """What the routes share: the app's context, whose intake desk has the categories and files
    the requests."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.clock = ctx.desk.clock

    # -- services -------------------------------------------------------------------------------

    def services(self) -> list[dict[str, Any]]:
        return [
            {"service_code": c.code, "service_name": c.name,
             "description": f"{c.name} ({c.major_name}); handled by {c.unit}",
             "metadata": False, "type": "realtime", "keywords": "", "group": c.major_name}
            for c in self.clock.catalogue.public()
        ]

    def service_code(self, code: str) -> str:
        public = {c.code for c in self.clock.catalogue.public()}
        if code in public:
            return code
        raise Problems(404, [f"service_code: there is no service {code!r}; the services are"
                             f" listed at {PREFIX}/services.json"])

    # -- requests -------------------------------------------------------------------------------

    def item(self, row: dict[str, Any], base: str) -> dict[str, Any]:
        category = self.clock.catalogue.categories.get(row["category"])
        name = category.name if category else row["category"]
        notes = STATUS_NOTES.get(row["status"], "")
        if row["duplicate_of"] is not None:
            notes = (f"duplicate of request {row['duplicate_of']}" if row["duplicate_public"]
                     else "duplicate of an earlier report")
        item: dict[str, Any] = {
            "service_request_id": str(row["id"]),
            "status": "open" if public_cases.is_open(row["status"]) else "closed",
            "status_notes": notes,
            "service_name": name,
            "service_code": row["category"],
            "description": row["description"] if row["description"] is not None else name,
            "agency_responsible": row["unit"],
            "service_notice": "",
            "requested_datetime": _iso(row["created_at"]),
            "updated_datetime": _iso(row["updated_at"]),
            "expected_datetime": _iso(row["due_at"]),
            "address": row["address"],
            "address_id": None,
            "zipcode": None,
            "lat": None if row["lat"] is None else round(row["lat"], 6),
            "long": None if row["lon"] is None else round(row["lon"], 6),
        }
        if row["photo_id"] is not None:
            item["media_url"] = f"{base}{PREFIX}/media/{row['photo_id']}"
        return item

    def check_api_key(self, form: Any) -> None:
        keys = self.ctx.settings.open311_api_keys
        if not keys:
            return
        given = form.get("api_key", "")
        if not given:
            raise Problems(403, ["api_key: this server needs an API key to file requests; ask"
                                 " the operations centre for one"])
        if not any(secrets.compare_digest(given.encode(), k.encode()) for k in keys):
            raise Problems(403, ["api_key: the key is not valid"])

    def parse_request(self) -> tuple[NewCase, list[Photo]]:
        """The filed form as a case and its photos; Problems(400) listing every wrong field."""
        form, problems = request.form, []
        code = form.get("service_code", "").strip()
        public = {c.code for c in self.clock.catalogue.public()}
        if not code:
            problems.append("service_code: required: the code of the service the request is"
                            f" for, from {PREFIX}/services.json")
        elif code not in public:
            problems.append(f"service_code: there is no service {code!r}; the services are listed"
                            f" at {PREFIX}/services.json")
        lat, lon = self._coordinate(form, "lat", 90, problems), \
            self._coordinate(form, "long", 180, problems)
        address = form.get("address_string", "").strip()
        raw_lat, raw_lon = form.get("lat", "").strip(), form.get("long", "").strip()
        if bool(raw_lat) != bool(raw_lon):
            problems.append(f"{'long' if raw_lat else 'lat'}: give both lat and long, or neither"
                            " (then address_string)")
        elif not raw_lat and not address:
            problems.append("lat, long or address_string: say where the problem is: lat and long"
                            " (WGS84 degrees) or an address")
        description = form.get("description", "").strip()
        if len(description) > 4000:
            problems.append(f"description: at most 4000 characters; this one has"
                            f" {len(description)}")
        email, phone, first, last, media_url = self._reporter(form, problems)
        photos: list[Photo] = []
        upload = request.files.get("media")
        if upload is not None and upload.filename is not None:
            data = upload.read()
            photo, reason = check_photo(data)
            if photo is None:
                problems.append(f"media: {reason}")
            else:
                photos.append(Photo(strip_metadata(photo.data), photo.content_type))
        if problems:
            raise Problems(400, problems)
        if media_url:
            description = (description + "\n\n" if description else "") + \
                f"Photo link given by the reporter (not fetched): {media_url}"
        category = self.clock.catalogue.get(code)
        case = NewCase(
            source="citizen", category=code, title=category.name, description=description,
            lon=lon, lat=lat, address=address or None,
            reporter_name=" ".join(p for p in (first, last) if p) or None,
            reporter_phone=phone or None, reporter_email=email or None,
        )
        return case, photos

    @staticmethod
    def _reporter(form: Any, problems: list[str]) -> tuple[str, str, str, str, str]:
        """The reporter's e-mail, phone, first and last name, and a photo link, each checked."""
        email = form.get("email", "").strip()
        if email and not EMAIL.match(email):
            problems.append(f"email: {email!r} is not an e-mail address")
        phone = form.get("phone", "").strip()
        if len(phone) > 40:
            problems.append("phone: at most 40 characters")
        first, last = form.get("first_name", "").strip(), form.get("last_name", "").strip()
        if len(first) > 100 or len(last) > 100:
            problems.append("first_name, last_name: at most 100 characters each")
        media_url = form.get("media_url", "").strip()
        if media_url:
            parts = urlsplit(media_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or len(media_url) > 2000:
                problems.append("media_url: give an http:// or https:// link (at most 2000"
                                " characters)")
        return email, phone, first, last, media_url

    @staticmethod
    def _coordinate(form: Any, name: str, bound: float, problems: list[str]) -> float | None:
        raw = form.get(name, "").strip()
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{name}: {raw!r} is not a number of degrees")
            return None
        if not -bound <= value <= bound:
            problems.append(f"{name}: {raw} is not between -{bound:g} and {bound:g} degrees")
            return None
        return value

    def query(self) -> dict[str, Any]:
        """The filters of GET requests.json; Problems(400) listing every wrong one."""
        args, problems = request.args, []
        ids_raw = args.get("service_request_id", "").strip()
        if ids_raw:
            ids = []
            for part in ids_raw.split(","):
                if part.strip().isdigit():
                    ids.append(int(part))
                else:
                    problems.append(f"service_request_id: {part.strip()!r} is not a request id")
            if problems:
                raise Problems(400, problems)
            return {"ids": ids}
        filters: dict[str, Any] = {}
        codes = [c.strip() for c in args.get("service_code", "").split(",") if c.strip()]
        public = {c.code for c in self.clock.catalogue.public()}
        for code in codes:
            if code not in public:
                problems.append(f"service_code: there is no service {code!r}; the services are"
                                f" listed at {PREFIX}/services.json")
        filters["codes"] = codes or None
        start = self._date(args, "start_date", problems)
        end = self._date(args, "end_date", problems)
        if start is not None and end is not None and end < start:
            problems.append("end_date: is before start_date")
        statuses = [s.strip() for s in args.get("status", "").split(",") if s.strip()]
        for status in statuses:
            if status not in ("open", "closed"):
                problems.append(f"status: {status!r} is neither open nor closed")
        if problems:
            raise Problems(400, problems)
        end = end or self.ctx.now()
        filters.update(start=start or end - timedelta(days=90), end=end,
                       statuses=statuses or None)
        return filters

    def _date(self, args: Any, name: str, problems: list[str]) -> datetime | None:
        raw = args.get(name, "").strip()
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            problems.append(f"{name}: {raw!r} is not a date and time like 2026-11-22T08:00:00Z")
            return None
        return value if value.tzinfo else value.replace(tzinfo=self.ctx.tz)


blueprint = Blueprint("open311", __name__, url_prefix=PREFIX)


def _api() -> Open311:
    return Open311(context())


def _base() -> str:
    return request.url_root.rstrip("/")


@blueprint.before_request
def limit_body() -> None:
    """A request's body may be a 5 MB photo and its text fields, no more."""
    request.max_content_length = MAX_BODY


@blueprint.errorhandler(Problems)
def problems(exc: Problems) -> Response:
    """Open311's error list."""
    return _errors(exc.code, exc.descriptions)


@blueprint.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Response:
    """A body over 6 MB, as Open311's error list."""
    return _errors(413, ["media: the request is larger than 6 MB; a photo may be at most 5 MB"])


@blueprint.get("/discovery.json")
def discovery() -> Response:
    """Where the API is and what it speaks."""
    ctx = context()
    return jsonify({
        "changeset": _iso(datetime(2026, 11, 22, tzinfo=UTC)),
        "contact": "the district operations centre (12345)",
        "key_service": "ask the operations centre for an api_key" if
        ctx.settings.open311_api_keys else "no api_key needed",
        "endpoints": [{
            "specification": SPEC, "url": f"{_base()}{PREFIX}",
            "changeset": _iso(datetime(2026, 11, 22, tzinfo=UTC)),
            "type": "production", "formats": ["application/json"],
        }],
    })


@blueprint.get("/services.json")
def services() -> Response:
    """The services citizens may report."""
    return jsonify(_api().services())


@blueprint.get("/services/<code>.json")
def service(code: str) -> Response:
    """A service's definition (no extra attributes)."""
    return jsonify({"service_code": _api().service_code(code), "attributes": []})


@blueprint.post("/requests.json")
def create() -> Response:
    """File a request; the notice says whether it duplicates an earlier one."""
    api = _api()
    api.check_api_key(request.form)
    case, photos = api.parse_request()
    ctx = api.ctx
    try:
        intake = ctx.desk.file(case, ACTOR, photos=photos, now=ctx.now())
    except IntakeError as exc:
        raise Problems(400, [f"{FIELD_NAMES.get(name, name)}: {reason}"
                             for name, reason in exc.problems]) from None
    original = (public_cases.read_request(ctx.db, intake.duplicate_of)
                if intake.duplicate_of is not None else None)
    published = public_cases.read_request(ctx.db, intake.ticket_id) is not None
    response = jsonify([{"service_request_id": str(intake.ticket_id),
                         "service_notice": _notice(intake.duplicate_of, original, published),
                         "account_id": None}])
    response.status_code = 201
    return response


def _notice(duplicate_of: int | None, original: dict[str, Any] | None, published: bool) -> str:
    if duplicate_of is not None:
        same = f"request {duplicate_of}" if original is not None else "an earlier report"
        notice = (f"This was already reported as {same}, which is being dealt with: your"
                  f" request is linked to it and closed as a duplicate.")
    else:
        notice = "Received. The operations centre checks it and sends it to the responsible unit."
    if not published:
        notice += (" Requests of this kind are about a person: their status is not published;"
                   " call 12345 to ask about it.")
    return notice


@blueprint.get("/requests.json")
def requests_() -> Response:
    """Published requests by id, or by service, dates and status."""
    api = _api()
    rows = public_cases.read_requests(api.ctx.db, **api.query())
    return jsonify([api.item(r, _base()) for r in rows])


@blueprint.get("/requests/<request_id>.json")
def one(request_id: str) -> Response:
    """One published request."""
    api = _api()
    row = public_cases.read_request(api.ctx.db, int(request_id)) if request_id.isdigit() else None
    if row is None:
        raise Problems(404, [f"service_request_id: there is no request {request_id!r}"])
    return jsonify([api.item(row, _base())])


@blueprint.get("/media/<int:photo_id>")
def media(photo_id: int) -> Response:
    """The photo a citizen filed with a published request."""
    photo = public_cases.read_photo(context().db, photo_id)
    if photo is None:
        raise Problems(404, [f"media: there is no published photo {photo_id}"])
    response = Response(photo.data, mimetype=photo.content_type)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@blueprint.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str) -> Response:
    """Anything else under the API: Open311's error list."""
    if rest.endswith(".xml"):
        raise Problems(400, ["format: XML is not offered; use the .json URL"])
    raise Problems(404, [f"there is no {PREFIX}/{rest}; see {PREFIX}/discovery.json"])
