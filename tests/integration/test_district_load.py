"""Loading the synthetic district into PostgreSQL."""

from __future__ import annotations

import pytest

from cityops.org import grids
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, is_loaded, load_district

SMALL = DistrictSize(streets=3, grids=6, communities=15, households_per_community=6,
                     flood_gauges=4, manhole_covers=5, cameras=3)


@pytest.mark.integration
def test_load_district_into_postgres(db_url: str) -> None:
    district = generate_district(2, SMALL)
    with db.connect(db_url) as conn:
        assert not is_loaded(conn)
        load_district(conn, district)
        assert is_loaded(conn)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM grids) g, (SELECT count(*) FROM households) h,"
            " (SELECT count(*) FROM devices) d, (SELECT count(*) FROM shifts) s").fetchone()
        assert counts == {"g": len(district.cells), "h": len(district.households),
                          "d": len(district.devices), "s": len(district.shifts)}
        rows = conn.execute("SELECT code, level, name, parent_code, geometry FROM grids").fetchall()
        index = grids.GridIndex.from_rows(rows)
        h = district.households[0]
        assert index.locate(h["lon"], h["lat"]) == h["community_code"]
        with pytest.raises(RuntimeError, match="already loaded"):
            load_district(conn, district)

