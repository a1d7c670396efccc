"""Import households with their achievements and indicators from CSV
(``cityops needs import-households FILE.csv``).

A header row names the columns; order does not matter::

    household_id,community_code,head_name,address,members,household_type,head_sex,
    head_age_band,hukou,ethnicity,income_per_capita_month,financial_assets,floor_area_per_person,
    medical_spending_share,education_spending_share,months_unemployed,<the 22 indicator ids>

- ``household_id`` is required. For a household the database does not know yet,
  ``community_code``, ``head_name``, ``address`` and ``members`` are required too (it is placed at
  its community's centre); for a known one they may be left empty, a given ``members``,
  ``head_name`` or ``address`` updates it, and a different ``community_code`` is refused (a
  wrong id, most likely).
- ``household_type``, ``head_sex`` (F/M), ``head_age_band`` (<40, 40-59, 60-79, 80+), ``hukou``
  (local/non_local), ``ethnicity`` (han/minority) are required; the protected attributes are kept
  for fairness reporting only.
- The achievements are non-negative numbers (``months_unemployed`` a whole number; empty = 0).
- Each indicator is 0 or 1. An empty cell is derived from the achievements with the default
  cutoffs where one stands behind it (income, assets, floor area, spending shares,
  unemployment); an empty cell of any other indicator is refused. An indicator column may be
  left out of the header only where it can be derived.

Each row is checked on its own: a bad row is reported with its line number and every reason,
and every good row is stored (profile inserted, or replaced when the household has one) with
``source = 'import'``, in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from cityops.needs.data import (
    AGE_BANDS,
    HOUSEHOLD_TYPES,
    INDICATOR_SET_VERSION,
    INDICATORS,
    derived_indicators,
)
from cityops.platform.csv_import import read_rows, rows_from_bytes, upsert_counting
from cityops.platform.database import Database
from cityops.platform.users import audit

HOUSEHOLD_COLUMNS = ("community_code", "head_name", "address", "members")
ATTRIBUTES = {
    "household_type": HOUSEHOLD_TYPES, "head_sex": ("F", "M"), "head_age_band": AGE_BANDS,
    "hukou": ("local", "non_local"), "ethnicity": ("han", "minority"),
}
ACHIEVEMENTS = ("income_per_capita_month", "financial_assets", "floor_area_per_person",
                "medical_spending_share", "education_spending_share", "months_unemployed")
DERIVABLE = frozenset(derived_indicators(*(np.zeros(1),) * 7))
COLUMNS = ("household_id", *HOUSEHOLD_COLUMNS, *ATTRIBUTES, *ACHIEVEMENTS, *INDICATORS)
HINT = "see docs/needs.md, import format"
REQUIRED = ("household_id", *ATTRIBUTES, *ACHIEVEMENTS[:5],
            *(i for i in INDICATORS if i not in DERIVABLE))

UPSERT = """
INSERT INTO household_profiles (household_id, household_type, head_sex, head_age_band, hukou,
    ethnicity, income_per_capita_month, financial_assets, floor_area_per_person,
    medical_spending_share, education_spending_share, months_unemployed, indicators,
    indicator_set_version, updated_at, source)
VALUES (%(household_id)s, %(household_type)s, %(head_sex)s, %(head_age_band)s, %(hukou)s,
    %(ethnicity)s, %(income_per_capita_month)s, %(financial_assets)s, %(floor_area_per_person)s,
    %(medical_spending_share)s, %(education_spending_share)s, %(months_unemployed)s,
    %(indicators)s, %(version)s, now(), 'import')
ON CONFLICT (household_id) DO UPDATE SET household_type = EXCLUDED.household_type,
    head_sex = EXCLUDED.head_sex, head_age_band = EXCLUDED.head_age_band,
    hukou = EXCLUDED.hukou, ethnicity = EXCLUDED.ethnicity,
    income_per_capita_month = EXCLUDED.income_per_capita_month,
    financial_assets = EXCLUDED.financial_assets,
    floor_area_per_person = EXCLUDED.floor_area_per_person,
    medical_spending_share = EXCLUDED.medical_spending_share,
    education_spending_share = EXCLUDED.education_spending_share,
    months_unemployed = EXCLUDED.months_unemployed, indicators = EXCLUDED.indicators,
    indicator_set_version = EXCLUDED.indicator_set_version, updated_at = now(),
    source = 'import'
RETURNING (xmax = 0) AS inserted
"""


@dataclass
class ImportResult:
    """What an import did: profiles added and updated, rows refused with (line, reason)."""

    inserted: int = 0
    updated: int = 0
    households_created: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Known:
    """What the database knows for checking rows: households and community centres."""

    households: dict[str, tuple[str, int]]            # id -> (community_code, members)
    communities: dict[str, tuple[float, float]]       # code -> (lon, lat)


def _number(raw: str, name: str, problems: list[str], *, whole: bool = False,
            empty: float | None = None) -> float:
    if raw == "":
        if empty is not None:
            return empty
        problems.append(f"{name}: a number is required")
        return 0.0
    try:
        value = float(raw.replace(",", "")) if not whole else int(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a {'whole ' if whole else ''}number")
        return 0.0
    if not math.isfinite(value) or value < 0:
        problems.append(f"{name}: {raw!r} must be a number of 0 or more")
        return 0.0
    return value


def check_row(raw: dict[str, str], known: Known) -> tuple[dict[str, Any] | None, list[str]]:
    """Validate one row: (the row ready to store, []) or (None, the reasons)."""
    cell = {k: (v or "").strip() for k, v in raw.items()}
    problems: list[str] = []
    hid = cell.get("household_id", "")
    row: dict[str, Any] = {"household_id": hid, "version": INDICATOR_SET_VERSION}
    if not hid:
        problems.append("household_id: required")
    existing = known.households.get(hid)
    household = {c: cell.get(c, "") for c in HOUSEHOLD_COLUMNS}
    members: int | None = None
    if household["members"]:
        try:
            members = int(household["members"])
            if not 1 <= members <= 50:
                raise ValueError
        except ValueError:
            problems.append(f"members: {household['members']!r} is not a whole number 1..50")
    community = household["community_code"]
    if community and community not in known.communities:
        problems.append(f"community_code: unknown community {community}")
    elif existing is not None and community and community != existing[0].strip():
        problems.append(f"community_code: household {hid} is in community {existing[0].strip()},"
                        f" not {community}")
    if existing is None and hid:
        missing = [c for c in HOUSEHOLD_COLUMNS if not household[c]]
        if missing:
            problems.append(f"unknown household {hid}: to add it give {', '.join(missing)}")
    row["new_household"] = None if existing is not None else {**household, "members": members}
    row["members"] = members if members is not None else (existing[1] if existing else 1)
    row["head_name"] = household["head_name"]
    row["address"] = household["address"]
    for name, allowed in ATTRIBUTES.items():
        value = cell.get(name, "")
        if value not in allowed:
            problems.append(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        row[name] = value
    for name in ACHIEVEMENTS:
        whole = name == "months_unemployed"
        row[name] = _number(cell.get(name, ""), name, problems, whole=whole,
                            empty=0 if whole else None)
    derived = derived_indicators(*(np.array([v]) for v in (
        row["income_per_capita_month"], row["financial_assets"], row["members"],
        row["floor_area_per_person"], row["medical_spending_share"],
        row["education_spending_share"], row["months_unemployed"])))
    flags: list[bool] = []
    for name in INDICATORS:
        value = cell.get(name, "")
        if value in ("0", "1"):
            flags.append(value == "1")
        elif value == "" and name in derived:
            flags.append(bool(derived[name][0]))
        elif value == "":
            problems.append(f"{name}: 0 or 1 is required")
        else:
            problems.append(f"{name}: {value!r} is not 0 or 1")
    row["indicators"] = flags
    return (None, problems) if problems else (row, [])


def check_rows(rows: Iterable[dict[str, str | None]], known: Known
               ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Validate CSV rows (line numbers from 2, after the header); a household twice in the file
    is refused the second time."""
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(rows, start=2):
        if None in raw:
            bad.append((line, "more fields than the columns of the header"))
            continue
        row, problems = check_row(raw, known)  # type: ignore[arg-type]
        if row is None:
            bad.append((line, "; ".join(problems)))
            continue
        if row["household_id"] in seen:
            bad.append((line, f"household {row['household_id']} is already on line"
                              f" {seen[row['household_id']]}"))
            continue
        seen[row["household_id"]] = line
        good.append(row)
    return good, bad


def _known(conn: psycopg.Connection[Any], ids: list[str]) -> Known:
    households = {r["id"]: (r["community_code"], r["members"]) for r in conn.execute(
        "SELECT id, community_code, members FROM households WHERE id = ANY(%s)", (ids,))}
    communities = {r["code"].strip(): (r["centroid_lon"], r["centroid_lat"]) for r in
                   conn.execute("SELECT code, centroid_lon, centroid_lat FROM grids"
                                " WHERE level = 'community'")}
    return Known(households, communities)


def import_csv(conn: psycopg.Connection[Any], path: Path) -> ImportResult:
    """Store the good rows of ``path`` in one transaction; report the bad ones. A header with a
    missing required column or an unknown column is refused whole (ValueError)."""
    return import_rows(conn, read_rows(path, REQUIRED, COLUMNS, HINT))


def import_upload(conn: psycopg.Connection[Any], content: bytes, name: str) -> ImportResult:
    """:func:`import_csv` for an uploaded file's bytes (the civil-affairs import page)."""
    return import_rows(conn, rows_from_bytes(content, name, REQUIRED, COLUMNS, HINT))


def import_rows(conn: psycopg.Connection[Any], raw_rows: list[dict[str, str | None]]
                ) -> ImportResult:
    """Store the good rows of a read CSV file in one transaction; report the bad ones."""
    known = _known(conn, [(r.get("household_id") or "").strip() for r in raw_rows])
    good, bad = check_rows(raw_rows, known)
    result = ImportResult(refused=bad)

    def household(row: Mapping[str, Any]) -> None:
        new = row["new_household"]
        if new is not None:
            lon, lat = known.communities[new["community_code"]]
            conn.execute(
                "INSERT INTO households (id, community_code, head_name, address, members,"
                " lon, lat) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (row["household_id"], new["community_code"], new["head_name"],
                 new["address"], new["members"], lon, lat))
            result.households_created += 1
        else:
            conn.execute(
                "UPDATE households SET members = coalesce(%s, members),"
                " head_name = coalesce(nullif(%s, ''), head_name),"
                " address = coalesce(nullif(%s, ''), address) WHERE id = %s",
                (row["members"], row["head_name"], row["address"], row["household_id"]))

    with conn.transaction():
        result.inserted, result.updated = upsert_counting(conn, UPSERT, good, before=household)
    return result


def import_file(db: Database, username: str, content: bytes, name: str) -> ImportResult:
    """Import an uploaded file as ``username``, the import audited in the same transaction;
    ValueError (nothing written) for a file refused whole."""
    with db.transaction() as conn:
        result = import_upload(conn, content, name)
        audit(conn, username, "import", "needs.households",
              {"file": name, "added": result.inserted, "updated": result.updated,
               "refused": [line for line, _ in result.refused]})
    return result
