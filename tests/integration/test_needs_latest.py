"""``needs_latest`` (migration 0010): each household's latest assessment, kept by triggers, always
equals what DISTINCT ON over every assessment says (the newest ``at``, then the highest id) after
scoring runs (COPY), hand INSERTs older and newer than the latest, two rows for one household in
one statement, and DELETE / UPDATE of assessments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from cityops.cli.needs_score import score_households
from cityops.platform import db
from cityops.simulation.district import DistrictSize, generate_district, load_district

pytestmark = pytest.mark.integration
SMALL = DistrictSize(streets=2, grids=2, communities=4, households_per_community=60,
                     flood_gauges=2, manhole_covers=2, cameras=2)
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def conn(db_url: str) -> Iterator[Conn]:
    """An autocommit connection to a database with a small district loaded."""
    with db.connect(db_url) as c:
        load_district(c, generate_district(3, SMALL))
    with db.connect(db_url, autocommit=True) as c:
        yield c


def kept(conn: Conn) -> dict[str, tuple[int, Any]]:
    """needs_latest as household -> (assessment id, at)."""
    rows = conn.execute("SELECT household_id, assessment_id, at FROM needs_latest").fetchall()
    return {r["household_id"]: (r["assessment_id"], r["at"]) for r in rows}


def recomputed(conn: Conn) -> dict[str, tuple[int, Any]]:
    """Each household's latest assessment worked out from every assessment."""
    rows = conn.execute("SELECT DISTINCT ON (household_id) household_id, id, at"
                        " FROM needs_assessments ORDER BY household_id, at DESC, id DESC"
                        ).fetchall()
    return {r["household_id"]: (r["id"], r["at"]) for r in rows}


def assert_current(conn: Conn) -> dict[str, tuple[int, Any]]:
    """needs_latest equals the recomputed answer; return it."""
    latest = kept(conn)
    assert latest == recomputed(conn)
    return latest


def insert(conn: Conn, *rows: tuple[str, str]) -> list[int]:
    """Insert assessments (household, at as SQL text) in ONE statement; their ids in order."""
    values = ", ".join(["(%s, %s::timestamptz, 'hand', 1, 3, true, NULL, '{}'::jsonb)"] * len(rows))
    params = [v for row in rows for v in row]
    ids = conn.execute(
        "INSERT INTO needs_assessments (household_id, at, indicator_set_version, score_num,"
        f" score_den, identified, model_probability, details) VALUES {values} RETURNING id",
        params).fetchall()
    return [r["id"] for r in ids]


def test_scoring_runs_and_hand_inserts_keep_the_latest(conn: Conn) -> None:
    households = conn.execute("SELECT count(*) AS n FROM household_profiles").fetchone()["n"]
    assert kept(conn) == {}
    score_households(conn)
    first = assert_current(conn)
    assert len(first) == households
    conn.execute("UPDATE household_profiles SET indicators[1] = NOT indicators[1]")
    score_households(conn)  # every household's c changed: each gets a new assessment
    second = assert_current(conn)
    assert second.keys() == first.keys()
    assert all(second[h][0] > first[h][0] for h in first), "the second run is the latest"

    hid, other = sorted(second)[:2]
    insert(conn, (hid, "2001-01-01T00:00:00Z"))          # older than the latest: not latest
    assert assert_current(conn)[hid] == second[hid]
    (newer,) = insert(conn, (hid, "2999-01-01T00:00:00Z"))  # newer: becomes the latest
    assert assert_current(conn)[hid][0] == newer
    # two rows for one household in one statement: the later at wins, not the later id
    later, earlier = insert(conn, (other, "2998-06-01T00:00:00Z"),
                            (other, "2998-01-01T00:00:00Z"))
    assert assert_current(conn)[other][0] == later != earlier
    # the same at twice: the higher id wins
    tied = insert(conn, (other, "2998-06-01T00:00:00Z"))
    assert assert_current(conn)[other][0] == tied[0] > later


def test_delete_and_update_repoint_the_latest(conn: Conn) -> None:
    score_households(conn)
    # a run stores only changed results: flip an indicator so the second stores every household
    conn.execute("UPDATE household_profiles SET indicators[1] = NOT indicators[1]")
    score_households(conn)
    before = assert_current(conn)
    hid, other, third = sorted(before)[:3]
    previous = conn.execute("SELECT id FROM needs_assessments WHERE household_id = %s"
                            " AND id <> %s ORDER BY at DESC, id DESC LIMIT 1",
                            (hid, before[hid][0])).fetchone()["id"]

    conn.execute("DELETE FROM needs_assessments WHERE id = %s", (before[hid][0],))
    after = assert_current(conn)
    assert after[hid][0] == previous, "re-pointed to the next newest"
    assert {h: v for h, v in after.items() if h != hid} == {
        h: v for h, v in before.items() if h != hid}

    conn.execute("DELETE FROM needs_assessments WHERE household_id = %s", (other,))
    assert other not in assert_current(conn), "no assessment left: no latest"

    # a correction moving the latest assessment to another household: both worked out again
    conn.execute("UPDATE needs_assessments SET household_id = %s WHERE id = %s",
                 (other, after[third][0]))
    moved = assert_current(conn)
    assert moved[other][0] == after[third][0] and moved[third][0] != after[third][0]
    conn.execute("UPDATE needs_assessments SET at = at - interval '400 days' WHERE id = %s",
                 (moved[hid][0],))
    assert_current(conn)

    gone = conn.execute("SELECT h.id FROM households h JOIN needs_latest l ON l.household_id = h.id"
                        " WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.household_id = h.id)"
                        " ORDER BY h.id LIMIT 1").fetchone()["id"]
    conn.execute("DELETE FROM households WHERE id = %s", (gone,))  # cascades to its assessments
    assert gone not in assert_current(conn)
