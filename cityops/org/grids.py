"""Grid cells and their hierarchy: district centre > street centres > responsibility grids >
communities, each a polygon with a 15-digit code.

Code layout (county 6 + street 3 + community 3 + sequence 3 digits):

==================  ===========================  =====================
level               code                         example
==================  ===========================  =====================
district centre     county + 000 + 000 + 000     310101 000 000 000
street centre       county + street + 000 + 000  310101 004 000 000
responsibility grid county + street + 000 + seq  310101 004 000 002
community           county + street + comm + 000 310101 004 017 000
==================  ===========================  =====================

A community's parent is the responsibility grid that contains it (not derivable from the code);
a grid's parent is its street; a street's is the district.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import shapely
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry

Level = Literal["district", "street", "grid", "community"]
LEVELS: tuple[Level, ...] = ("district", "street", "grid", "community")
CODE_RE = re.compile(r"^\d{15}$")


def district_code(county: str) -> str:
    """Code of the district centre of a 6-digit county code."""
    _check_digits(county, 6, "county")
    return county + "000000000"


def street_code(county: str, street: int) -> str:
    """Code of street centre number ``street`` (1-999)."""
    _check_range(street, "street")
    return f"{county}{street:03d}000000"


def grid_code(county: str, street: int, seq: int) -> str:
    """Code of responsibility grid ``seq`` (1-999) of a street."""
    _check_range(street, "street")
    _check_range(seq, "grid sequence")
    return f"{county}{street:03d}000{seq:03d}"


def community_code(county: str, street: int, community: int) -> str:
    """Code of community ``community`` (1-999) of a street."""
    _check_range(street, "street")
    _check_range(community, "community")
    return f"{county}{street:03d}{community:03d}000"


def level_of(code: str) -> Level:
    """The level a code denotes; ValueError for a malformed code."""
    if not CODE_RE.match(code):
        raise ValueError(f"grid code {code!r} must be 15 digits")
    street, community, seq = code[6:9], code[9:12], code[12:15]
    if street == "000":
        if community != "000" or seq != "000":
            raise ValueError(f"grid code {code!r}: street 000 needs community and sequence 000")
        return "district"
    if community == "000":
        return "street" if seq == "000" else "grid"
    if seq != "000":
        raise ValueError(f"grid code {code!r}: a community code ends in 000")
    return "community"


def _check_digits(value: str, n: int, what: str) -> None:
    if not re.fullmatch(rf"\d{{{n}}}", value):
        raise ValueError(f"{what} code {value!r} must be {n} digits")


def _check_range(value: int, what: str) -> None:
    if not 1 <= value <= 999:
        raise ValueError(f"{what} number {value} must be between 1 and 999")


@dataclass(frozen=True, slots=True)
class Cell:
    """One grid cell."""

    code: str
    level: Level
    name: str
    parent_code: str | None
    geometry: BaseGeometry

    def to_row(self) -> dict[str, Any]:
        """The cell as a row of the ``grids`` table (GeoJSON geometry)."""
        centroid = self.geometry.representative_point()
        return {
            "code": self.code,
            "level": self.level,
            "name": self.name,
            "parent_code": self.parent_code,
            "geometry": mapping(self.geometry),
            "centroid_lon": round(centroid.x, 6),
            "centroid_lat": round(centroid.y, 6),
        }


class GridIndex:
    """Point-in-polygon lookup and hierarchy walks over a set of cells (shapely STRtree)."""

    def __init__(self, cells: Iterable[Cell]) -> None:
        self.cells: dict[str, Cell] = {c.code: c for c in cells}
        self._leaves = [c for c in self.cells.values() if c.level == "community"]
        if not self._leaves:  # a district without communities: place in the finest level it has
            finest = max((LEVELS.index(c.level) for c in self.cells.values()), default=0)
            self._leaves = [c for c in self.cells.values() if LEVELS.index(c.level) == finest]
        self._tree = shapely.STRtree([c.geometry for c in self._leaves])

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> GridIndex:
        """Build from ``grids`` table rows (geometry as GeoJSON dict)."""
        return cls(
            Cell(
                code=r["code"],
                level=r["level"],
                name=r["name"],
                parent_code=r["parent_code"],
                geometry=shape(r["geometry"]),
            )
            for r in rows
        )

    def locate(self, lon: float, lat: float) -> str | None:
        """Code of the finest cell containing the point (on a shared border: the lowest code)."""
        point = Point(lon, lat)
        hits = self._tree.query(point, predicate="intersects")
        if len(hits) == 0:
            return None
        return min(self._leaves[i].code for i in hits)

    def ancestors(self, code: str) -> list[str]:
        """The cell and its parents up to the district centre, finest first."""
        chain = []
        current: str | None = code
        while current is not None:
            chain.append(current)
            current = self.cells[current].parent_code
        return chain

    def children(self, code: str) -> list[str]:
        """Codes of the direct children of a cell."""
        return sorted(c.code for c in self.cells.values() if c.parent_code == code)


def load_grid_index(conn: Any) -> GridIndex:
    """The grid cells of the loaded district, from the ``grids`` table (an empty index when none
    is loaded)."""
    return GridIndex.from_rows(
        conn.execute("SELECT code, level, name, parent_code, geometry FROM grids").fetchall()
    )


def cell_shapes(
    conn: Any, level: str = "community", codes: list[str] | None = None
) -> list[dict[str, Any]]:
    """Cells of one level (or the given codes) with their GeoJSON geometry and centroid."""
    if codes is not None:
        cursor = conn.execute(
            "SELECT code, name, level, geometry, centroid_lon, centroid_lat FROM grids"
            " WHERE code = ANY(%s) ORDER BY code",
            (codes,),
        )
    else:
        cursor = conn.execute(
            "SELECT code, name, level, geometry, centroid_lon, centroid_lat FROM grids"
            " WHERE level = %s ORDER BY code",
            (level,),
        )
    return list(cursor.fetchall())
