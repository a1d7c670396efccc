"""A small district for the grid worker's phone page tests (tests/test_worker_*.py).

Cell X holds the cases of worker A (gw1): a flood (urgent), a manhole cover not signed for in
time (overdue) and a welfare check on a water meter (whose household's address is on the case
row, and must never reach the phone), and one case of worker B (gw2), A's colleague in X. Cell Y
holds a case of worker C (gw3). Cases are made with the real functions (alerts, create_case, the
state machine); the workers are set by hand so the test does not depend on the roster's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cityops.cases import opening, tickets
from cityops.cases.tickets import Actor, NewCase
from cityops.platform import db, users
from cityops.sensing.alerts import AlertSignal, raise_alert
from cityops.simulation.district import DistrictSize, generate_district, load_district

SIZE = DistrictSize(streets=2, grids=3, communities=6, households_per_community=4,
                    flood_gauges=3, manhole_covers=3, cameras=2)
PASSWORD = "correct-horse-1"


@dataclass
class WorkerScenario:
    url: str
    now: datetime
    cell_x: str
    cell_y: str
    workers: dict[str, str] = field(default_factory=dict)   # username -> worker id
    cases: dict[str, int] = field(default_factory=dict)
    personal: list[str] = field(default_factory=list)        # residents' names, phones, addresses
    centroid_x: tuple[float, float] = (0.0, 0.0)


def _dispatch(conn: Any, ticket_id: int, worker: str, now: datetime, ack_min: int,
              due_h: float) -> None:
    conn.execute("UPDATE tickets SET worker_id = %s, ack_due_at = %s, due_at = %s,"
                 " assigned_reason = 'test' WHERE id = %s",
                 (worker, now + timedelta(minutes=ack_min), now + timedelta(hours=due_h),
                  ticket_id))
    tickets.transition(conn, ticket_id, "dispatched", Actor.system(), "test dispatch")


def build(url: str) -> WorkerScenario:
    district = generate_district(1, SIZE)
    now = datetime.now(UTC).replace(microsecond=0)
    with db.connect(url) as conn:
        load_district(conn, district)
        meter = conn.execute("SELECT * FROM devices WHERE kind = 'water_meter' ORDER BY id"
                             " LIMIT 1").fetchone()
        assert meter is not None
        cell_x = meter["grid_code"]
        cell = conn.execute("SELECT centroid_lon, centroid_lat FROM grids WHERE code = %s",
                            (cell_x,)).fetchone()
        assert cell is not None
        lon, lat = cell["centroid_lon"], cell["centroid_lat"]
        in_x = [r["id"] for r in conn.execute(
            "SELECT id FROM workers WHERE cell_code = %s ORDER BY id", (cell_x,))]
        other = conn.execute(
            "SELECT w.id, w.cell_code, g.centroid_lon, g.centroid_lat FROM workers w"
            " JOIN grids g ON g.code = w.cell_code WHERE w.cell_code <> %s ORDER BY w.id LIMIT 1",
            (cell_x,)).fetchone()
        assert len(in_x) >= 2 and other is not None
        sc = WorkerScenario(url=url, now=now, cell_x=cell_x, cell_y=other["cell_code"],
                            centroid_x=(lon, lat))
        sc.workers = {"gw1": in_x[0], "gw2": in_x[1], "gw3": other["id"]}
        sc.personal = [h[k] for h in district.households
                       for k in ("head_name", "phone", "address")]
        for username, worker in sc.workers.items():
            users.create_user(conn, username, f"Worker {username}", "grid_worker", PASSWORD,
                              worker_id=worker)

        def alert_case(name: str, source: str, kind: str, severity: str, message: str,
                       at: tuple[float, float], grid: str) -> int:
            outcome = raise_alert(conn, AlertSignal(
                source_id=source, kind=kind, severity=severity, message=message,
                observed_at=now - timedelta(minutes=5), grid_code=grid, lon=at[0], lat=at[1]))
            ticket_id = opening.create_for_alert(conn, outcome.alert_id)
            assert ticket_id is not None
            sc.cases[name] = ticket_id
            return ticket_id

        def patrol_case(name: str, at: tuple[float, float], grid: str, title: str) -> int:
            system = Actor.system()
            ticket_id = tickets.create_case(conn, NewCase(
                source="patrol", category="C0103", title=title, description="Lamp is dark",
                lon=at[0], lat=at[1], grid_code=grid, address="Corner of Park Road"), system)
            tickets.transition(conn, ticket_id, "accepted", system)
            tickets.transition(conn, ticket_id, "registered", system)
            sc.cases[name] = ticket_id
            return ticket_id

        a, b, c = sc.workers["gw1"], sc.workers["gw2"], sc.workers["gw3"]
        _dispatch(conn, alert_case("flood", "FG000001", "flood_depth", "critical",
                                   "Water 230 mm deep at the flood gauge (alert at 150 mm)",
                                   (lon + 0.0003, lat + 0.0002), cell_x), a, now, 15, 2)
        _dispatch(conn, alert_case("manhole", "MC000001", "manhole_tilt", "high",
                                   "Manhole cover tilted 32 degrees: it may be open",
                                   (lon - 0.0004, lat), cell_x), a, now, -25, 1.5)
        water = alert_case("water", meter["id"], "water_silence", "medium",
                           f"No water used for 11 hours at water meter {meter['id']}",
                           (meter["lon"], meter["lat"]), cell_x)
        # a careless import put the household's address on the case: it must not reach a phone
        conn.execute("UPDATE tickets SET address = %s WHERE id = %s",
                     (district.households[0]["address"], water))
        _dispatch(conn, water, a, now, 60, 24)
        _dispatch(conn, patrol_case("colleague", (lon, lat - 0.0003), cell_x,
                                    "Street light out"), b, now, 60, 16)
        _dispatch(conn, patrol_case("elsewhere", (other["centroid_lon"], other["centroid_lat"]),
                                    other["cell_code"], "Street light out (other cell)"),
                  c, now, 60, 16)
        for hours_ago in (5, 4, 3, 2, 1):
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES (%s, 'volume_l', %s, %s)",
                         (meter["id"], now - timedelta(hours=hours_ago), 0.0))
    return sc
