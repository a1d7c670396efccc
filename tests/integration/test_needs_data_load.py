"""The district's needs data in PostgreSQL."""

from __future__ import annotations

import pytest

from cityops.needs.data import (
    INDICATOR_SET_VERSION,
    generate_needs,
)
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, load_district


@pytest.mark.integration
def test_the_district_loads_its_needs_data(db_url: str) -> None:
    size = DistrictSize(streets=2, grids=2, communities=4, households_per_community=50,
                        flood_gauges=2, manhole_covers=2, cameras=2)
    district = generate_district(4, size)
    assert district.needs is not None and len(district.needs) == 200
    assert generate_needs(4, district.households).decisions == district.needs.decisions
    with db.connect(db_url) as conn:
        load_district(conn, district)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM household_profiles) AS profiles,"
            " (SELECT count(*) FROM needs_true) AS truth,"
            " (SELECT count(*) FROM needs_true WHERE in_need) AS needy,"
            " (SELECT count(*) FROM needs_decisions) AS decisions,"
            " (SELECT count(*) FROM assistance) AS assistance").fetchone()
        assert counts == {"profiles": 200, "truth": 200,
                          "needy": int(district.needs.true_need.sum()),
                          "decisions": len(district.needs.decisions),
                          "assistance": len(district.needs.assistance)}
        row = conn.execute(
            "SELECT indicators, indicator_set_version, source, income_per_capita_month"
            " FROM household_profiles WHERE household_id = %s",
            (district.households[7]["id"],)).fetchone()
        assert row["indicators"] == district.needs.indicators[7].tolist()
        assert row["indicator_set_version"] == INDICATOR_SET_VERSION
        assert row["source"] == "synthetic"
        assert float(row["income_per_capita_month"]) == pytest.approx(district.needs.income[7])

