"""Importing households with achievements and indicators (`cityops needs import-households`)
into the real database: good rows stored, each bad row refused with its line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cityops.cli.main import cli
from cityops.needs.data import INDICATORS
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=2, communities=4, households_per_community=2,
                     flood_gauges=2, manhole_covers=2, cameras=2)
HEADER = ("household_id,community_code,head_name,address,members,household_type,head_sex,"
          "head_age_band,hukou,ethnicity,income_per_capita_month,financial_assets,"
          "floor_area_per_person,medical_spending_share,education_spending_share,"
          "months_unemployed," + ",".join(INDICATORS))


@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch):
    district = generate_district(3, SMALL)
    with db.connect(db_url) as conn:
        load_district(conn, district)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return db_url, district


def flags(**deprived: int) -> str:
    return ",".join(str(deprived.get(name, 0)) for name in INDICATORS)


def profile(url: str, hid: str) -> dict | None:
    with db.connect(url) as conn:
        return conn.execute("SELECT p.*, h.members, h.community_code FROM household_profiles p"
                            " JOIN households h ON h.id = p.household_id"
                            " WHERE household_id = %s", (hid,)).fetchone()


def test_good_rows_are_stored_and_each_bad_row_is_refused_with_its_line(
    district, tmp_path: Path
) -> None:
    url, d = district
    known = d.households[0]["id"]
    community = d.households[0]["community_code"].strip()
    attrs = "family,F,40-59,non_local,han"
    blank_income = flags(housing_unsafe=1).split(",")
    blank_income[0] = blank_income[1] = ""          # derived from the income
    csv_file = tmp_path / "households.csv"
    csv_file.write_text(
        HEADER + "\n"
        f",,,,3,{attrs},1200,5000,12.5,0.05,0.1,0,{','.join(blank_income)}\n"  # 2: update
        f"N1,{community},Li Mei,\"Room 101, No. 3\",2,{attrs},900.5,0,30,0.4,0,8,"
        f"{flags(income_below_dibao=1, income_below_1_5_dibao=1, recent_shock=1)}\n"  # 3: new
        f"N2,,,,,{attrs},1000,0,30,0,0,0,{flags()}\n"               # 4: unknown household
        f"N3,310101999999999,Wu Li,Room 1,1,{attrs},1000,0,30,0,0,0,{flags()}\n"  # 5: community
        f"N4,{community},Wu Li,Room 1,1,{attrs},lots,0,30,0,0,0,{flags()}\n"   # 6: bad number
        f"N5,{community},Wu Li,Room 1,1,{attrs},1000,-5,30,0,0,0,{flags()}\n"  # 7: negative
        f"N6,{community},Wu Li,Room 1,1,{attrs},1000,0,30,0,0,0,"
        f"{flags(disability=2)}\n"                                  # 8: indicator not 0/1
        f"N7,{community},Wu Li,Room 1,1,family,X,40-59,local,han,1000,0,30,0,0,0,"
        f"{flags()}\n"                                              # 9: bad attribute
        f"N1,{community},Li Mei,Room 1,2,{attrs},900,0,30,0,0,0,{flags()}\n",  # 10: twice
        encoding="utf-8",
    )
    # line 2 is for the known household
    text = csv_file.read_text().splitlines()
    text[1] = known + text[1]
    csv_file.write_text("\n".join(text) + "\n")
    result = CliRunner().invoke(cli, ["needs", "import-households", str(csv_file)])
    assert result.exit_code == 1, result.output
    assert "households: 1 added, 1 updated, 7 refused (1 new households)" in result.output
    assert "line 4: refused: unknown household N2: to add it give community_code, head_name," \
           " address, members" in result.output
    assert "line 5: refused: community_code: unknown community 310101999999999" in result.output
    assert "line 6: refused: income_per_capita_month: 'lots' is not a number" in result.output
    assert "line 7: refused: financial_assets: '-5' must be a number of 0 or more" \
        in result.output
    assert "line 8: refused: disability: '2' is not 0 or 1" in result.output
    assert "line 9: refused: head_sex: 'X' is not one of F, M" in result.output
    assert "line 10: refused: household N1 is already on line 3" in result.output

    updated = profile(url, known)
    assert updated is not None and updated["source"] == "import"
    assert updated["members"] == 3
    assert updated["hukou"] == "non_local"
    ind = dict(zip(INDICATORS, updated["indicators"], strict=True))
    assert ind["income_below_dibao"] and ind["income_below_1_5_dibao"]   # derived: 1200 < 1420
    assert ind["housing_unsafe"] and not ind["disability"]
    assert ind["assets_below_limit"] == 0   # given as 0, not derived
    added = profile(url, "N1")
    assert added is not None and added["community_code"].strip() == community
    assert float(added["income_per_capita_month"]) == 900.5
    assert added["months_unemployed"] == 8
    assert sum(added["indicators"]) == 3

    # the same good row again is an update
    again = tmp_path / "again.csv"
    again.write_text("\n".join(text[:1] + text[2:3]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["needs", "import-households", str(again)])
    assert result.exit_code == 0, result.output
    assert "households: 0 added, 1 updated, 0 refused (0 new households)" in result.output


def test_a_header_without_required_columns_is_refused_whole(district, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("household_id,colour\nH1,red\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["needs", "import-households", str(csv_file)])
    assert result.exit_code != 0
    assert "missing column(s) household_type" in result.output
    assert "unknown column(s) colour" in result.output
