"""The grid worker's phone page's read model: their lists, one case with its map and the water
meter's day, and the map to report a problem on. What a worker may see is decided by
:mod:`cityops.cases.worker` (their own cases and their cell's)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from cityops.cases.worker import case_for_worker, cell_cases, my_tasks
from cityops.org.grids import cell_shapes
from cityops.platform.database import Database
from cityops.views.water import water_day_chart


def read_lists(db: Database, worker_id: str, now: datetime,
               open_id: int | None = None) -> tuple[list[dict[str, Any]],
                                                    list[dict[str, Any]],
                                                    dict[str, Any] | None]:
    """The worker's tasks, their cell's other open cases, and the case open on the phone (None
    when none is, or it is no longer the worker's to see)."""
    with db.transaction() as conn:
        opened = (case_for_worker(conn, worker_id, open_id, now)
                  if open_id is not None else None)
        return my_tasks(conn, worker_id, now), cell_cases(conn, worker_id, now), opened


def read_case(db: Database, worker_id: str, ticket_id: int, now: datetime,
              tz: tzinfo) -> dict[str, Any] | None:
    """One case as the phone shows it (:func:`cityops.cases.worker.case_for_worker`) with the
    community ``cells`` for its map and the ``water_chart`` of a water meter's case; None when
    it is not the worker's to see."""
    with db.transaction() as conn:
        case = case_for_worker(conn, worker_id, ticket_id, now)
        if case is None:
            return None
        case["cells"] = cell_shapes(conn) if case["grid_code"] or case["lon"] is not None else []
        meter = case["device_kind"] == "water_meter" and case["device_id"]
        case["water_chart"] = water_day_chart(conn, case["device_id"], now, tz) if meter else None
    return case


def read_map(db: Database) -> list[dict[str, Any]]:
    """The community cells, for the map a problem is reported on."""
    with db.transaction() as conn:
        return cell_shapes(conn)
