"""Importing a centre's key sites from CSV (`cityops keysites import`) into the real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cityops.cli.main import cli
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=2, communities=4, households_per_community=2,
                     flood_gauges=2, manhole_covers=2, cameras=2)


@pytest.fixture
def district(db_url: str, monkeypatch: pytest.MonkeyPatch):
    district = generate_district(3, SMALL)
    with db.connect(db_url) as conn:
        load_district(conn, district)
        conn.execute("DELETE FROM key_sites")
    monkeypatch.setenv("CITYOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "ERROR")
    return db_url, district


def sites(url: str) -> dict[str, dict]:
    with db.connect(url) as conn:
        return {r["id"]: r for r in conn.execute("SELECT * FROM key_sites").fetchall()}


def test_good_rows_are_stored_and_each_bad_row_is_refused_with_its_line(
    district, tmp_path: Path
) -> None:
    url, d = district
    community = next(c for c in d.cells if c.level == "community")
    inside = community.geometry.representative_point()
    lon, lat = round(inside.x, 6), round(inside.y, 6)
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        "id,kind,name,lon,lat,capacity,notes\n"
        f'UP-1,underpass,"Underpass, Xizang Rd",{lon},{lat},,pumps 2 x 300 m3/h\n'
        f"SH-1,shelter,School hall,{lon},{lat},300,\n"
        f"XX-1,tunnel,Somewhere,{lon},{lat},,\n"            # unknown kind
        f"SH-2,shelter,Gym,{lon},{lat},many,\n"             # capacity not a number
        "LR-1,low_road,Far away,0.5,0.5,,\n"                 # outside the district
        f"UP-1,underpass,Again,{lon},{lat},,\n",            # id twice
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["keysites", "import", str(csv_file)])
    assert result.exit_code == 1, result.output
    assert "key sites: 2 added, 0 updated, 4 refused" in result.output
    assert "line 4: refused: kind:" in result.output
    assert "line 5: refused: capacity:" in result.output
    assert "line 6: refused: (0.5, 0.5) is outside every grid cell" in result.output
    assert "line 7: refused: id UP-1 is already on line 2" in result.output
    stored = sites(url)
    assert set(stored) == {"UP-1", "SH-1"}
    assert stored["UP-1"]["grid_code"] == community.code
    assert stored["UP-1"]["notes"] == "pumps 2 x 300 m3/h" and stored["UP-1"]["capacity"] is None
    assert stored["SH-1"]["capacity"] == 300

    csv_file.write_text("id,kind,name,lon,lat\n"
                        f"UP-1,underpass,Underpass renamed,{lon},{lat}\n", encoding="utf-8")
    again = CliRunner().invoke(cli, ["keysites", "import", str(csv_file)])
    assert again.exit_code == 0 and "0 added, 1 updated, 0 refused" in again.output
    assert sites(url)["UP-1"]["name"] == "Underpass renamed"


def test_a_file_without_the_needed_columns_is_refused_whole(district, tmp_path: Path) -> None:
    url, _d = district
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text("id,type,name,x,y\nUP-1,underpass,U,1,2\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["keysites", "import", str(csv_file)])
    assert result.exit_code != 0
    assert "missing column(s) kind, lon, lat" in result.output
    assert "unknown column(s) type, x, y" in result.output
    assert sites(url) == {}
