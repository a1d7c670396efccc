"""The centre's flood-season key sites: underpasses, low roads and basements that flood first,
shelters (with their capacity) and supply depots; a layer on the wall's map. :func:`key_sites`
lists them; :func:`import_csv` imports them from a CSV file (``cityops keysites import``).

Columns (a header row; ``capacity`` and ``notes`` may be empty or left out)::

    id,kind,name,lon,lat,capacity,notes
    UP-0301,underpass,"Underpass, Xizang Rd",121.4752,31.2301,,pumps 2 x 300 m3/h

Each row is checked on its own: a bad row is reported with its line number and what to fix,
and every good row is stored (inserted, or updated when its id exists). The grid cell comes from
the location (the community containing it), so a site outside the district is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cityops.org.grids import GridIndex
from cityops.platform.csv_import import read_rows, upsert_counting

COLUMNS = ("id", "kind", "name", "lon", "lat", "capacity", "notes")
REQUIRED = ("id", "kind", "name", "lon", "lat")

UPSERT = """
INSERT INTO key_sites (id, kind, name, grid_code, lon, lat, capacity, notes)
VALUES (%(id)s, %(kind)s, %(name)s, %(grid_code)s, %(lon)s, %(lat)s, %(capacity)s, %(notes)s)
ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
    grid_code = EXCLUDED.grid_code, lon = EXCLUDED.lon, lat = EXCLUDED.lat,
    capacity = EXCLUDED.capacity, notes = EXCLUDED.notes
RETURNING (xmax = 0) AS inserted
"""


class KeySiteRow(BaseModel):
    """One CSV row, validated."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal["underpass", "low_road", "basement", "shelter", "depot"]
    name: str = Field(min_length=1, max_length=200)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    capacity: int | None = Field(default=None, ge=0)
    notes: str = ""

    @field_validator("capacity", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value


@dataclass
class ImportResult:
    """What an import did: rows stored (new and updated) and rows refused, with the reasons."""

    inserted: int = 0
    updated: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors()
    )


def check_rows(
    rows: Iterable[dict[str, str | None]], index: GridIndex
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Validate CSV rows (line numbers from 2, after the header): good rows with their grid
    cell, and (line, reason) for each bad one. An id twice in the file is refused the second
    time."""
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(rows, start=2):
        if None in raw:  # more fields than the header names
            bad.append((line, f"more fields than the {len(COLUMNS)} columns of the header"))
            continue
        try:
            row = KeySiteRow.model_validate(raw)
        except ValidationError as exc:
            bad.append((line, _reason(exc)))
            continue
        if row.id in seen:
            bad.append((line, f"id {row.id} is already on line {seen[row.id]}"))
            continue
        cell = index.locate(row.lon, row.lat)
        if cell is None:
            bad.append((line, f"({row.lon}, {row.lat}) is outside every grid cell of the district"
                              " (lon, lat in WGS84 degrees)"))
            continue
        seen[row.id] = line
        good.append({**row.model_dump(), "grid_code": cell})
    return good, bad


def import_csv(conn: psycopg.Connection[Any], path: Path, index: GridIndex) -> ImportResult:
    """Store the good rows of ``path`` in one transaction; report the bad ones."""
    rows = read_rows(path, REQUIRED, COLUMNS, f"the header must name {', '.join(COLUMNS)}"
                                              " (capacity and notes may be left out)")
    good, bad = check_rows(rows, index)
    result = ImportResult(refused=bad)
    with conn.transaction():
        result.inserted, result.updated = upsert_counting(conn, UPSERT, good)
    return result


def key_sites(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """All key sites: id, kind, name, grid_code, cell (name), lon, lat, capacity, notes."""
    return list(conn.execute(
        "SELECT k.id, k.kind, k.name, k.grid_code, g.name AS cell, k.lon, k.lat, k.capacity,"
        " k.notes FROM key_sites k LEFT JOIN grids g ON g.code = k.grid_code ORDER BY k.id"
    ).fetchall())
