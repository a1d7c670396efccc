"""Grid codes, the point-in-polygon index and the synthetic district."""

from __future__ import annotations

import pytest

from cityops.org import grids
from cityops.simulation.district import DistrictSize, generate_district

SMALL = DistrictSize(streets=3, grids=6, communities=15, households_per_community=6,
                     flood_gauges=4, manhole_covers=5, cameras=3)


def test_codes_are_15_digits_and_levels_parse() -> None:
    assert grids.district_code("310101") == "310101000000000"
    assert grids.street_code("310101", 4) == "310101004000000"
    assert grids.grid_code("310101", 4, 2) == "310101004000002"
    assert grids.community_code("310101", 4, 17) == "310101004017000"
    for code, level in [("310101000000000", "district"), ("310101004000000", "street"),
                        ("310101004000002", "grid"), ("310101004017000", "community")]:
        assert grids.level_of(code) == level


@pytest.mark.parametrize("bad", ["31010100400000", "31010100401700A", "310101004017001",
                                 "310101000001000"])
def test_malformed_codes_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        grids.level_of(bad)


def test_default_district_has_the_shanghai_shape() -> None:
    district = generate_district(seed=1)
    levels = [c.level for c in district.cells]
    assert levels.count("district") == 1
    assert levels.count("street") == 13
    assert levels.count("grid") == 63
    assert levels.count("community") == 300
    assert any(h["elderly_alone"] for h in district.households)
    meters = [d for d in district.devices if d["kind"] == "water_meter"]
    alone = [h for h in district.households if h["elderly_alone"]]
    assert len(meters) == len(alone)


def test_full_size_district_has_about_1_1_million_residents() -> None:
    full = DistrictSize.full()
    # the household mix of the full size, measured on a sample of it (the whole takes seconds)
    sample = generate_district(1, DistrictSize(households_per_community=40,
                                               elderly_alone_share=full.elderly_alone_share))
    per_household = sample.residents() / len(sample.households)
    residents = per_household * full.communities * full.households_per_community
    assert 1_050_000 <= residents <= 1_150_000


def test_generation_is_deterministic_and_seed_dependent() -> None:
    a, b, c = generate_district(5, SMALL), generate_district(5, SMALL), generate_district(6, SMALL)
    assert [x.to_row() for x in a.cells] == [x.to_row() for x in b.cells]
    assert a.households == b.households and a.devices == b.devices and a.shifts == b.shifts
    assert a.households != c.households


def test_cells_tile_the_district_and_everything_lies_in_its_cell() -> None:
    district = generate_district(3)
    index = grids.GridIndex(district.cells)
    communities = [c for c in district.cells if c.level == "community"]
    outline = district.cells[0].geometry
    assert sum(c.geometry.area for c in communities) == pytest.approx(outline.area, rel=1e-6)
    for h in district.households:
        assert index.locate(h["lon"], h["lat"]) == h["community_code"]
    for d in district.devices:
        assert index.locate(d["lon"], d["lat"]) == d["grid_code"]
    assert index.locate(0.0, 0.0) is None


def test_hierarchy_walks_from_community_to_district() -> None:
    district = generate_district(1, SMALL)
    index = grids.GridIndex(district.cells)
    community = next(c for c in district.cells if c.level == "community")
    chain = index.ancestors(community.code)
    assert [index.cells[c].level for c in chain] == ["community", "grid", "street", "district"]
    assert community.code in index.children(chain[1])


def test_bad_sizes_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="at least one community"):
        DistrictSize(streets=2, grids=4, communities=3)


