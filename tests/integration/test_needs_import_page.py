"""The civil-affairs import page ``/needs/import`` through Flask's test client on a real database:
good rows stored, each bad row refused with its line and reason, a summary of each, the import
audited, a file refused whole with the reason, and the page refused to other roles."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from cityops.needs.data import INDICATORS
from cityops.platform import db
from tests.integration.web_client import Web, callback, route, sign_in

pytestmark = pytest.mark.integration

HEADER = ("household_id,community_code,head_name,address,members,household_type,head_sex,"
          "head_age_band,hukou,ethnicity,income_per_capita_month,financial_assets,"
          "floor_area_per_person,medical_spending_share,education_spending_share,"
          "months_unemployed," + ",".join(INDICATORS))
ATTRS = "family,F,40-59,local,han"


def flags(**deprived: int) -> str:
    return ",".join(str(deprived.get(name, 0)) for name in INDICATORS)


def upload(client: FlaskClient, content: bytes, name: str = "households.csv") -> Any:
    encoded = "data:text/csv;base64," + base64.b64encode(content).decode()
    response = callback(client, "needs-import-result",
                        [{"id": "needs-import-upload", "property": "contents",
                          "value": encoded}],
                        [{"id": "needs-import-upload", "property": "filename", "value": name}])
    return response


def text_of(response: Any) -> str:
    return json.dumps(response.json)


def community(url: str) -> str:
    with db.connect(url) as conn:
        row = conn.execute("SELECT code FROM grids WHERE level = 'community' ORDER BY code"
                           " LIMIT 1").fetchone()
    return row["code"].strip()


def test_good_rows_kept_bad_rows_refused_with_line_and_reason(web: Web) -> None:
    client = web.client()
    sign_in(client, "civil1")
    page = text_of(route(client, "/needs/import"))
    assert "needs-import-upload" in page and "income_per_capita_month" in page
    code = community(web.scenario.url)
    content = (
        HEADER + "\n"
        f"IMP1,{code},Li Mei,Room 1,2,{ATTRS},900,0,30,0.4,0,8,"
        f"{flags(income_below_dibao=1, income_below_1_5_dibao=1)}\n"      # 2: stored
        f"IMP2,{code},Wu Li,Room 2,1,{ATTRS},lots,0,30,0,0,0,{flags()}\n"   # 3: bad number
        f"IMP3,{code},Zhao Yu,Room 3,3,{ATTRS},1000,0,30,0,0,0,{flags()}\n"  # 4: stored
    ).encode()
    response = upload(client, content)
    assert response.status_code == 200
    shown = text_of(response)
    assert "households.csv: 2 added, 0 updated, 1 refused (2 new households)." in shown
    assert '"3"' in shown and "income_per_capita_month" in shown  # line 3 and its reason
    with db.connect(web.scenario.url) as conn:
        stored = {r["household_id"] for r in conn.execute(
            "SELECT household_id FROM household_profiles WHERE source = 'import'")}
        audit = conn.execute("SELECT username, details FROM audit_log WHERE action = 'import'"
                             " AND subject = 'needs.households'").fetchall()
    assert stored == {"IMP1", "IMP3"}
    assert [(a["username"], a["details"]["added"], a["details"]["refused"]) for a in audit] == [
        ("civil1", 2, [3])]

    # the same file again: the good rows are updated, not duplicated
    shown = text_of(upload(client, content))
    assert "households.csv: 0 added, 2 updated, 1 refused (0 new households)." in shown


def test_a_file_refused_whole_says_why_and_stores_nothing(web: Web) -> None:
    client = web.client()
    sign_in(client, "civil1")
    shown = text_of(upload(client, b"household_id,colour\nX1,red\n", "wrong.csv"))
    assert "Not imported: wrong.csv: missing column(s)" in shown
    assert "unknown column(s) colour" in shown
    shown = text_of(upload(client, HEADER.encode("utf-16"), "utf16.csv"))
    assert "Not imported: utf16.csv: not UTF-8 text" in shown
    with db.connect(web.scenario.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM household_profiles"
                            " WHERE source = 'import'").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM audit_log"
                            " WHERE action = 'import'").fetchone()["n"] == 0


def test_other_roles_cannot_open_or_import(web: Web) -> None:
    client = web.client()
    sign_in(client, "ops1")
    assert "not for your role" in text_of(route(client, "/needs/import"))
    code = community(web.scenario.url)
    content = (HEADER + "\n" + f"IMP9,{code},Li Mei,Room 1,2,{ATTRS},900,0,30,0.4,0,8,"
               f"{flags()}\n").encode()
    assert upload(client, content).status_code == 403
    with db.connect(web.scenario.url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM household_profiles"
                            " WHERE household_id = 'IMP9'").fetchone()["n"] == 0
