"""CSV imports: a header checked as a whole, then the rows as dicts; the good rows upserted and
counted (added, updated) in the caller's transaction."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg


def read_rows(
    path: Path, required: Sequence[str], columns: Sequence[str], hint: str
) -> list[dict[str, str | None]]:
    """The rows of a UTF-8 CSV file (a BOM is allowed) keyed by their header's names (stripped).

    Raises ValueError naming the file when it is not UTF-8 text, when the header lacks a
    ``required`` column or names one not in ``columns``; ``hint`` says where the format is
    described. A row with more fields than the header keeps the extra ones under the key None,
    for the caller to refuse.
    """
    return rows_from_bytes(path.read_bytes(), str(path), required, columns, hint)


def rows_from_bytes(
    content: bytes, name: str, required: Sequence[str], columns: Sequence[str], hint: str
) -> list[dict[str, str | None]]:
    """:func:`read_rows` for a file's bytes (an upload); errors name the file ``name``."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8"
                         ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in columns]
    if missing or unknown:
        problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
        raise ValueError(f"{name}: {'; '.join(problems)}; {hint}")
    reader.fieldnames = header
    return list(reader)


def upsert_counting(conn: psycopg.Connection[Any], upsert: str, rows: Iterable[Mapping[str, Any]],
                    before: Callable[[Mapping[str, Any]], object] | None = None) -> tuple[int, int]:
    """Run ``upsert`` (an ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING (xmax = 0) AS
    inserted``) for each row, ``before(row)`` first when given; return (added, updated)."""
    added = updated = 0
    for row in rows:
        if before is not None:
            before(row)
        stored = conn.execute(upsert, row).fetchone()
        assert stored is not None
        if stored["inserted"]:
            added += 1
        else:
            updated += 1
    return added, updated
