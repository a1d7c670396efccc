"""The flood season without servers: its dates, the key sites the synthetic district places."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cityops.flood import season as flood_season
from cityops.org.geo import distance_m
from cityops.org.grids import GridIndex
from cityops.platform.settings import FloodSeasonSettings
from cityops.simulation.district import DistrictSize, generate_district

SMALL = DistrictSize(streets=3, grids=6, communities=15, households_per_community=6,
                     flood_gauges=4, manhole_covers=5, cameras=3)


TZ = ZoneInfo("Asia/Shanghai")


def test_key_sites_are_generated_deterministically_inside_their_streets() -> None:
    a, b, c = generate_district(5, SMALL), generate_district(5, SMALL), generate_district(6, SMALL)
    assert a.key_sites == b.key_sites and a.key_sites != c.key_sites
    index = GridIndex(a.cells)
    streets = [cell for cell in a.cells if cell.level == "street"]
    for street in streets:
        mine = [k for k in a.key_sites if k["grid_code"][:9] == street.code[:9]]
        kinds = Counter(k["kind"] for k in mine)
        assert kinds["underpass"] == 3 and kinds["low_road"] == 2 and kinds["basement"] == 2
        assert kinds["depot"] == 1 and 1 <= kinds["shelter"] <= 2
        name = street.name.removesuffix(" Street Centre")
        assert f"Underpass, {name} 2" in {k["name"] for k in mine}
    for k in a.key_sites:
        assert index.locate(k["lon"], k["lat"]) == k["grid_code"]  # inside its community
        assert (k["capacity"] is not None) == (k["kind"] == "shelter")
    assert len({k["id"] for k in a.key_sites}) == len(a.key_sites)


def test_underpasses_sit_next_to_the_gauges_labelled_as_underpasses() -> None:
    district = generate_district(1)  # the demo district: 40 gauges, 13 streets
    gauges = {d["id"]: d for d in district.devices if d["kind"] == "flood_gauge"}
    gauged = [k for k in district.key_sites if k["notes"].startswith("flood gauge")]
    assert len(gauged) >= 10
    for k in gauged:
        g = gauges[k["notes"].split()[2]]
        assert g["label"].endswith(("underpass", "tunnel mouth"))
        assert distance_m(k["lon"], k["lat"], g["lon"], g["lat"]) < 30
    # key sites come from an rng of their own: the demo's devices are as they were
    assert len(district.devices) == 40 + 300 + sum(h["elderly_alone"]
                                                   for h in district.households)


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_inspection_window() -> None:
    fs = FloodSeasonSettings()
    assert flood_season.inspection_season(_local("2027-05-17").date(), fs) is None
    assert flood_season.inspection_season(_local("2027-05-18").date(), fs) == 2027
    assert flood_season.inspection_season(_local("2027-09-30").date(), fs) == 2027
    assert flood_season.inspection_season(_local("2027-10-01").date(), fs) is None
    with pytest.raises(ValueError, match="month and day"):
        FloodSeasonSettings(season_start="06-31")
    with pytest.raises(ValueError, match="after season_start"):
        FloodSeasonSettings(season_start="09-01", season_end="06-01")

