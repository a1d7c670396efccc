"""Open311 GeoReport v2 (/open311/v2) and the signed-in photo route (/photos/<id>), through
Flask's test client on a real database: services, filing, queries, validation, api keys,
privacy, duplicates, photo access."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from shapely.geometry import Point
from werkzeug.test import TestResponse

from cityops.cases import opening, tickets
from cityops.cases.clock import CaseClock
from cityops.cases.intake import file_case
from cityops.cases.photos import Photo
from cityops.cases.tickets import Actor, NewCase
from cityops.org.grids import load_grid_index
from cityops.platform import db, users
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.sensing.alerts import AlertSignal, raise_alert
from cityops.simulation.district import DistrictSize, generate_district, load_district
from dashboards.app import create_app

pytestmark = pytest.mark.integration

SIZE = DistrictSize(streets=1, grids=2, communities=3, households_per_community=3,
                    flood_gauges=2, manhole_covers=2, cameras=1)
PASSWORD = "correct-horse-1"
KEY = "open311-test-key"
V2 = "/open311/v2"
EXIF = b"\xff\xe1\x00\x16Exif\x00\x00GPS:31.2,121.4"
JPEG = b"\xff\xd8" + EXIF + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x00IEND\xaeB`\x82"
# a citizen's personal details: never in any answer
REPORTER = {"first_name": "Meiling", "last_name": "Zhou", "email": "zhou.meiling@example.org",
            "phone": "13912345678"}


@dataclass
class Site:
    url: str
    settings: Settings
    database: Any
    app: Any
    inner: Point                      # 200 m inside a community
    cell: str
    other_cell: str
    personal: list[str] = field(default_factory=list)
    hidden: dict[str, int] = field(default_factory=dict)  # cases never published

    def client(self) -> FlaskClient:
        return self.app.server.test_client()

    def at(self, north_m: float = 0.0, east_m: float = 0.0) -> dict[str, str]:
        lat = self.inner.y + north_m / 111_320
        lon = self.inner.x + east_m / (111_320 * math.cos(math.radians(self.inner.y)))
        return {"lat": f"{lat:.7f}", "long": f"{lon:.7f}"}


def make_site(db_url: str, **settings: Any) -> Site:
    district = generate_district(5, SIZE)
    personal = [h[k] for h in district.households for k in ("head_name", "phone", "address")]
    with db.connect(db_url) as conn:
        load_district(conn, district)
        index = load_grid_index(conn)
        communities = [c for c in index.cells.values() if c.level == "community"]
        best = max(communities, key=lambda c: c.geometry.buffer(-0.002).area)
        inner = best.geometry.buffer(-0.002).representative_point()
        other = next(c.code for c in communities if c.code != best.code)
        site_settings = Settings(secret_key="open311-test-key-0123456789abcdef", **settings)
        clock = CaseClock.from_settings(site_settings)
        site = Site(db_url, site_settings, None, None, inner, best.code, other, personal)
        # cases that must never be published: a welfare check from a water meter, a hotline
        # call, a citizen's help request (care category E08)
        meter = conn.execute("SELECT * FROM devices WHERE kind = 'water_meter' LIMIT 1").fetchone()
        assert meter is not None
        alert = raise_alert(conn, AlertSignal(
            source_id=meter["id"], kind="water_silence", severity="medium",
            message="No water used for 11 hours", observed_at=datetime.now(UTC),
            grid_code=meter["grid_code"], lon=meter["lon"], lat=meter["lat"]))
        welfare = opening.create_for_alert(conn, alert.alert_id)
        assert welfare is not None
        site.hidden["welfare"] = welfare
        hotline = file_case(conn, NewCase(
            source="hotline", category="C0203", title="Sign down", description="Caller says",
            lon=inner.x, lat=inner.y, call_type="report", reporter_name="Caller Name",
            reporter_phone="13700000000", reported_by="op1"), Actor("op1", "hotline"),
            settings=site_settings, index=index, clock=clock)
        site.hidden["hotline"] = hotline.ticket_id
        users.create_user(conn, "ops1", "Olga Ops", "operations", PASSWORD)
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        users.create_user(conn, "sup1", "Sam Supervisor", "supervisor", PASSWORD)
        conn.commit()
    site.personal += ["Caller Name", "13700000000", *REPORTER.values()]
    site.database = Database.open(db_url, max_size=4, name="open311-test")
    site.app = create_app(site.database, site_settings)
    return site


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    try:
        yield s
    finally:
        s.database.close()


def sign_in(client: FlaskClient, username: str) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "csrf": token.group(1)})
    assert answer.status_code == 302, answer.text


def post(client: FlaskClient, data: dict[str, Any]) -> TestResponse:
    return client.post(f"{V2}/requests.json", data=data, content_type="multipart/form-data")


def file_ok(client: FlaskClient, data: dict[str, Any]) -> tuple[str, str]:
    response = post(client, data)
    assert response.status_code == 201, response.text
    [answer] = response.json
    assert answer["account_id"] is None
    return answer["service_request_id"], answer["service_notice"]


def get_one(client: FlaskClient, request_id: str) -> dict[str, Any]:
    response = client.get(f"{V2}/requests/{request_id}.json")
    assert response.status_code == 200, response.text
    [item] = response.json
    return item


def descriptions(response: TestResponse) -> list[str]:
    assert all(e["code"] == response.status_code for e in response.json)
    return [e["description"] for e in response.json]


def test_discovery_and_services(site: Site) -> None:
    client = site.client()
    discovery = client.get(f"{V2}/discovery.json")
    assert discovery.status_code == 200
    assert discovery.json["endpoints"][0]["formats"] == ["application/json"]
    assert "Content-Security-Policy" in discovery.headers
    services = client.get(f"{V2}/services.json").json
    codes = {s["service_code"]: s for s in services}
    assert "E0401" in codes and "C0201" in codes
    assert "E0801" not in codes and "C0109" not in codes  # not public
    waterlogging = codes["E0401"]
    assert waterlogging["service_name"] == "Road waterlogging"
    assert waterlogging["metadata"] is False and waterlogging["type"] == "realtime"
    assert waterlogging["group"] and "keywords" in waterlogging
    definition = client.get(f"{V2}/services/E0401.json")
    assert definition.json == {"service_code": "E0401", "attributes": []}
    assert client.get(f"{V2}/services/E0801.json").status_code == 404
    xml = client.get(f"{V2}/services.xml")
    assert xml.status_code == 400 and "XML is not offered" in descriptions(xml)[0]
    assert client.get(f"{V2}/nothing.json").status_code == 404


def test_file_with_a_place_and_read_it_back(site: Site) -> None:
    client = site.client()
    request_id, notice = file_ok(client, {"service_code": "C0201", **site.at(),
                                          "description": "Deep pothole by the bus stop",
                                          "address_string": "Bus stop, Xizang Road", **REPORTER,
                                          "device_id": "phone-1", "account_id": "acc-7"})
    assert "Received" in notice
    item = get_one(client, request_id)
    assert item["status"] == "open" and item["service_code"] == "C0201"
    assert item["status_notes"].startswith("received")
    assert item["description"] == "Deep pothole by the bus stop"
    assert item["agency_responsible"] == "Road maintenance office"
    assert item["address"] == "Bus stop, Xizang Road"
    assert float(item["lat"]) == pytest.approx(float(site.at()["lat"]), abs=1e-6)
    assert item["requested_datetime"].endswith("Z") and "media_url" not in item
    with db.connect(site.url) as conn:
        row = conn.execute("SELECT * FROM tickets WHERE id = %s", (int(request_id),)).fetchone()
    assert row is not None
    assert (row["source"], row["status"], row["grid_code"]) == ("citizen", "reported", site.cell)
    assert (row["reporter_name"], row["reporter_phone"], row["reporter_email"]) == (
        "Meiling Zhou", "13912345678", "zhou.meiling@example.org")


def test_file_with_a_photo_published_without_its_metadata(site: Site) -> None:
    client = site.client()
    request_id, _ = file_ok(client, {"service_code": "E0103", **site.at(east_m=300),
                                     "media": (io.BytesIO(JPEG), "litter.jpg", "image/jpeg"),
                                     "media_url": "https://photos.example.org/p/1"})
    item = get_one(client, request_id)
    assert "https://photos.example.org/p/1" in item["description"]  # kept, not fetched
    media = client.get(item["media_url"].removeprefix("http://localhost"))
    assert media.status_code == 200 and media.mimetype == "image/jpeg"
    assert b"GPS" not in media.data and media.data.startswith(b"\xff\xd8\xff\xe0")
    # a photo a worker added later is not public
    with db.connect(site.url) as conn:
        worker_photo = tickets.add_photo(conn, int(request_id), PNG, "image/png", "gw-x")
        conn.commit()
    assert client.get(f"{V2}/media/{worker_photo}").status_code == 404


def test_every_wrong_field_is_named(site: Site) -> None:
    client = site.client()
    missing = post(client, {"description": "no code, no place"})
    assert missing.status_code == 400
    text = descriptions(missing)
    assert text[0].startswith("service_code: required")
    assert text[1].startswith("lat, long or address_string")
    unknown = post(client, {"service_code": "E0801", **site.at()})  # exists, but not public
    assert descriptions(unknown) == [
        "service_code: there is no service 'E0801'; the services are listed at"
        " /open311/v2/services.json"]
    bad = post(client, {"service_code": "C0201", "lat": "north", "long": "121.4",
                        "email": "not-an-email"})
    assert descriptions(bad) == ["lat: 'north' is not a number of degrees",
                                 "email: 'not-an-email' is not an e-mail address"]
    assert descriptions(post(client, {"service_code": "C0201", "lat": "95", "long": "121"})) == [
        "lat: 95 is not between -90 and 90 degrees"]
    assert descriptions(post(client, {"service_code": "C0201", "lat": "31.2"})) == [
        "long: give both lat and long, or neither (then address_string)"]
    outside = post(client, {"service_code": "C0201", "lat": "0", "long": "0"})
    assert outside.status_code == 400
    assert descriptions(outside)[0].startswith("long: the point (0.000000, 0.000000) is outside")
    big = b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024)
    too_big = post(client, {"service_code": "C0201", **site.at(),
                            "media": (io.BytesIO(big), "big.jpg", "image/jpeg")})
    assert descriptions(too_big) == ["media: a photo may be at most 5 MB; this one is 5.0 MB"]
    gif = post(client, {"service_code": "C0201", **site.at(),
                        "media": (io.BytesIO(b"GIF89a..."), "a.gif", "image/gif")})
    assert descriptions(gif) == ["media: a photo must be a JPEG, PNG or WebP image"]
    huge = post(client, {"service_code": "C0201", **site.at(),
                         "media": (io.BytesIO(b"0" * (7 * 1024 * 1024)), "x.jpg", "image/jpeg")})
    assert huge.status_code == 413
    with db.connect(site.url) as conn:
        n = conn.execute("SELECT count(*) AS n FROM tickets WHERE source = 'citizen'").fetchone()
    assert n == {"n": 0}  # nothing was filed
    assert client.get(f"{V2}/requests/abc.json").status_code == 404
    assert client.get(f"{V2}/requests/999999.json").status_code == 404


def test_query_by_id_status_and_dates(site: Site) -> None:
    client = site.client()
    first, _ = file_ok(client, {"service_code": "C0201", **site.at()})
    second, _ = file_ok(client, {"service_code": "C0401", "address_string": "No. 3, Lane 5"})
    with db.connect(site.url) as conn:
        conn.execute("UPDATE tickets SET status = 'closed' WHERE id = %s", (int(second),))
        conn.commit()

    def ids(query: str) -> list[str]:
        response = client.get(f"{V2}/requests.json?{query}")
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json]

    assert set(ids("")) >= {first, second}
    assert ids(f"service_request_id={first},{second}") == [second, first]  # newest first
    assert ids(f"service_request_id={first}&status=closed") == [first]  # ids win
    assert ids("status=closed") == [second]
    assert first in ids("status=open") and second not in ids("status=open")
    assert ids("service_code=C0401") == [second]
    assert ids("status=open,closed&service_code=C0201,C0401") == [second, first]
    now = datetime.now(UTC)
    soon = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    earlier = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"start_date={soon}") == []
    assert set(ids(f"start_date={earlier}&end_date={soon}")) >= {first, second}
    assert ids(f"end_date={earlier}") == []
    assert [r["status"] for r in client.get(f"{V2}/requests.json?service_request_id={second}")
            .json] == ["closed"]
    wrong = client.get(f"{V2}/requests.json?status=done&start_date=yesterday"
                       "&service_code=Z0000")
    assert descriptions(wrong) == [
        "service_code: there is no service 'Z0000'; the services are listed at"
        " /open311/v2/services.json",
        "start_date: 'yesterday' is not a date and time like 2026-11-22T08:00:00Z",
        "status: 'done' is neither open nor closed"]
    backwards = client.get(f"{V2}/requests.json?start_date={soon}&end_date={earlier}")
    assert descriptions(backwards) == ["end_date: is before start_date"]


def test_duplicates_are_linked_and_said_so(site: Site) -> None:
    client = site.client()
    original, _ = file_ok(client, {"service_code": "C0201", **site.at()})
    again, notice = file_ok(client, {"service_code": "C0201", **site.at(north_m=30)})
    assert f"already reported as request {original}" in notice
    item = get_one(client, again)
    assert item["status"] == "closed" and item["status_notes"] == f"duplicate of request {original}"
    assert get_one(client, original)["status"] == "open"
    far, notice = file_ok(client, {"service_code": "C0201", **site.at(north_m=80)})
    assert "already reported" not in notice and get_one(client, far)["status"] == "open"
    # the hotline's case (C0203, hidden) is linked without naming it
    _, notice = file_ok(client, {"service_code": "C0203", **site.at(east_m=10)})
    assert "already reported as an earlier report" in notice


def test_api_key_is_enforced_when_configured(db_url: str) -> None:
    keyed = make_site(db_url, open311_api_keys=[KEY, "another"])
    try:
        client = keyed.client()
        form = {"service_code": "C0201", **keyed.at()}
        assert descriptions(post(client, form))[0].startswith("api_key: this server needs")
        assert post(client, form).status_code == 403
        assert descriptions(post(client, {**form, "api_key": "guess"})) == [
            "api_key: the key is not valid"]
        file_ok(client, {**form, "api_key": KEY})
        assert client.get(f"{V2}/requests.json").status_code == 200  # reading needs no key
        assert client.get(f"{V2}/discovery.json").json["key_service"].startswith("ask")
    finally:
        keyed.database.close()


def test_nothing_personal_and_no_hidden_case_is_published(site: Site) -> None:
    client = site.client()
    help_id, notice = file_ok(client, {"service_code": "E0802", **site.at(), **REPORTER,
                                       "description": "My neighbour needs help"})
    assert "not published" in notice
    filed, _ = file_ok(client, {"service_code": "C0201", **site.at(east_m=200), **REPORTER,
                                "media": (io.BytesIO(JPEG), "p.jpg", "image/jpeg")})
    listing = client.get(f"{V2}/requests.json")
    listed = {r["service_request_id"] for r in listing.json}
    assert filed in listed
    hidden = [str(i) for i in site.hidden.values()] + [help_id]
    assert not listed & set(hidden)
    for ticket_id in hidden:
        assert client.get(f"{V2}/requests/{ticket_id}.json").status_code == 404
    assert client.get(f"{V2}/requests.json?service_request_id={','.join(hidden)}").json == []
    answers = [listing, client.get(f"{V2}/requests/{filed}.json"),
               client.get(f"{V2}/services.json"), client.get(f"{V2}/discovery.json"),
               client.get(f"{V2}/requests.json?service_code=E0802")]
    for answer in answers:
        text = answer.get_data(as_text=True)
        for secret in site.personal:
            assert secret not in text, secret
        for key in ("reporter", "email", "phone", "first_name", "last_name"):
            assert key not in text
    assert answers[-1].json == []  # a public service, but its requests are not published


# -- /photos/<id> for signed-in users -----------------------------------------------------------

def test_photo_route_follows_roles(site: Site) -> None:
    with db.connect(site.url) as conn:
        index = load_grid_index(conn)
        clock = CaseClock.from_settings(site.settings)
        intake = file_case(conn, NewCase(
            source="patrol", category="E0101", title="Overflowing bins", description="Bins",
            lon=site.inner.x, lat=site.inner.y, reported_by="patrol1"),
            Actor("patrol1", "grid_worker", "GW-none"), settings=site.settings, index=index,
            clock=clock, photos=[Photo(PNG, "image/png")])
        assert intake.assignment is not None and intake.assignment.worker_id
        [photo] = intake.photo_ids
        assigned = intake.assignment.worker_id
        mates = conn.execute("SELECT id, cell_code FROM workers WHERE id <> %s ORDER BY id",
                             (assigned,)).fetchall()
        same_cell = next(w["id"] for w in mates if w["cell_code"] == site.cell)
        elsewhere = next(w["id"] for w in mates if w["cell_code"] != site.cell)
        users.create_user(conn, "gw-assigned", "A", "grid_worker", PASSWORD, worker_id=assigned)
        users.create_user(conn, "gw-cell", "B", "grid_worker", PASSWORD, worker_id=same_cell)
        users.create_user(conn, "gw-far", "C", "grid_worker", PASSWORD, worker_id=elsewhere)
        users.create_user(conn, "hot1", "H", "hotline", PASSWORD)
        conn.commit()
    url = f"/photos/{photo}"
    anonymous = site.client().get(url)
    assert anonymous.status_code in (302, 401)
    for username, status in [("ops1", 200), ("sup1", 200), ("hot1", 200), ("gw-assigned", 200),
                             ("gw-cell", 200), ("gw-far", 403), ("civil1", 403)]:
        client = site.client()
        sign_in(client, username)
        response = client.get(url)
        assert response.status_code == status, username
        if status == 200:
            assert response.mimetype == "image/png" and response.data == PNG
            assert response.headers["Cache-Control"].startswith("private")
    client = site.client()
    sign_in(client, "ops1")
    assert client.get("/photos/999999").status_code == 404
    # a patrol photo is never public through Open311
    assert site.client().get(f"{V2}/media/{photo}").status_code == 404

