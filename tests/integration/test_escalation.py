"""Escalation chain (cityops.cases.escalation) against the real PostgreSQL, with a fixed ``now``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from cityops.app.jobs import make_scheduler
from cityops.cases import escalation, tickets
from cityops.cases.tickets import Actor
from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import NotifySettings, Settings
from cityops.platform.topics import Topics

pytestmark = pytest.mark.integration

DISTRICT, STREET = "310101000000000", "310101001000000"
GRID, COMMUNITY = "310101001000001", "310101001001000"
OTHER_STREET = "310101002000000"
T = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # Friday 10:00 in Shanghai
TOPICS = Topics("test/v1")
SETTINGS = Settings()
SQUARE = '{"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1],[0,0]]]}'


def load_hierarchy(conn) -> None:
    """1 district, 2 streets, a grid, a community, two workers, staff at each centre."""
    for code, level, name, parent in [
        (DISTRICT, "district", "District centre", None),
        (STREET, "street", "North Street", DISTRICT),
        (OTHER_STREET, "street", "South Street", DISTRICT),
        (GRID, "grid", "Grid 1", STREET),
        (COMMUNITY, "community", "Elm Community", GRID),
    ]:
        conn.execute("INSERT INTO grids (code, level, name, parent_code, geometry, centroid_lon,"
                     " centroid_lat) VALUES (%s, %s, %s, %s, %s, 0.5, 0.5)",
                     (code, level, name, parent, SQUARE))
    for user, role, cell in [("gw1", "grid_worker", None), ("gw2", "grid_worker", None),
                             ("ops-north", "operations", STREET),
                             ("ops-south", "operations", OTHER_STREET),
                             ("ops-district", "operations", None)]:
        conn.execute("INSERT INTO users (username, display_name, role, password_hash, cell_code)"
                     " VALUES (%s, %s, %s, 'x', %s)", (user, user, role, cell))
    for wid, user in [("W1", "gw1"), ("W2", "gw2")]:
        conn.execute("INSERT INTO workers (id, name, cell_code, username) VALUES (%s, %s, %s, %s)",
                     (wid, wid, COMMUNITY, user))


def new_case(conn, status: str = "dispatched", worker: str | None = "W1", *,
             dispatch_due: datetime | None = None, ack_due: datetime | None = None,
             due: datetime | None = None, grid: str | None = COMMUNITY) -> int:
    """A case put straight into ``status`` with its deadlines (the setup, not the workflow)."""
    tid = tickets.create_case(conn, tickets.NewCase(
        source="patrol", category="E0401", title="Water on the road", description="20 cm",
        grid_code=grid), Actor.system())
    conn.execute("UPDATE tickets SET status = %s, worker_id = %s, dispatch_due_at = %s,"
                 " ack_due_at = %s, due_at = %s WHERE id = %s",
                 (status, worker, dispatch_due, ack_due, due, tid))
    return tid


@pytest.fixture
def conn(db_url: str):
    with db.connect(db_url) as c:
        load_hierarchy(c)
        c.commit()
        yield c


def run(conn, at: datetime, settings: Settings = SETTINGS) -> list[tuple[str, int, str | None]]:
    with conn.transaction():
        steps = escalation.escalate(conn, at, settings, TOPICS)
    return [(s.stage, s.level, s.told) for s in steps]


def events(conn, tid: int) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT kind, note FROM ticket_events WHERE ticket_id = %s"
                        " AND kind IN ('reminder', 'escalation') ORDER BY id", (tid,)).fetchall()
    return [(r["kind"], r["note"]) for r in rows]


def test_a_case_not_signed_for_walks_worker_street_district_once_each(conn) -> None:
    tid = new_case(conn, ack_due=T)
    conn.commit()
    assert run(conn, T - timedelta(minutes=1)) == []
    assert run(conn, T) == [("sign", 1, "W1")]
    assert run(conn, T + timedelta(minutes=29)) == []
    assert run(conn, T + timedelta(minutes=30)) == [("sign", 2, STREET)]
    assert run(conn, T + timedelta(minutes=59)) == []
    assert run(conn, T + timedelta(minutes=60)) == [("sign", 3, DISTRICT)]
    assert run(conn, T + timedelta(hours=5)) == []

    (k1, n1), (k2, n2), (k3, n3) = events(conn, tid)
    assert k1 == "reminder" and n1.startswith("reminder to worker W1: not signed for")
    assert "10:00" in n1  # the deadline in local time
    assert k2 == "escalation" and "street centre North Street" in n2 and "ops-north" in n2
    assert "30 min late" in n2 and "ops-south" not in n2
    assert k3 == "escalation" and "district centre" in n3 and "ops-district" in n3
    rows = conn.execute("SELECT level, cell_code, at FROM case_escalations ORDER BY level")
    assert [(r["level"], r["cell_code"]) for r in rows] == [(1, None), (2, STREET),
                                                             (3, DISTRICT)]
    outbox = conn.execute("SELECT channel, topic, worker_id, payload FROM dispatches"
                          " ORDER BY id").fetchall()
    assert [(o["channel"], o["topic"]) for o in outbox] == [
        ("mqtt", "test/v1/dispatch/W1"), ("mqtt", f"test/v1/centre/{STREET}"),
        ("mqtt", f"test/v1/centre/{DISTRICT}")]
    assert outbox[0]["payload"]["event"] == {"type": "reminder", "ticket_id": tid}
    street = outbox[1]["payload"]
    assert street["type"] == "escalation" and street["stage"] == "sign" and street["level"] == 2
    assert street["to"] == {"kind": "street", "id": STREET, "name": "North Street",
                            "staff": ["ops-north"]}
    assert street["minutes_late"] == 30 and street["worker_id"] == "W1"
    assert outbox[1]["worker_id"] is None  # a centre message is not a worker's task list


def test_a_scheduler_that_was_down_takes_every_step_due_at_once(conn) -> None:
    new_case(conn, ack_due=T)
    conn.commit()
    assert run(conn, T + timedelta(hours=2)) == [("sign", 1, "W1"), ("sign", 2, STREET),
                                                 ("sign", 3, DISTRICT)]
    assert run(conn, T + timedelta(hours=3)) == []


def test_signing_for_stops_the_sign_chain_and_handling_the_handle_chain(conn) -> None:
    tid = new_case(conn, ack_due=T, due=T + timedelta(hours=2))
    conn.commit()
    assert run(conn, T) == [("sign", 1, "W1")]
    with conn.transaction():
        tickets.transition(conn, tid, "signed_for", Actor("gw1", "grid_worker", "W1"))
    assert run(conn, T + timedelta(minutes=30)) == []
    assert run(conn, T + timedelta(minutes=90)) == []
    # the handling limit is a chain of its own
    assert run(conn, T + timedelta(hours=2)) == [("handle", 1, "W1")]
    with conn.transaction():
        tickets.transition(conn, tid, "in_progress", Actor("gw1", "grid_worker", "W1"))
    assert run(conn, T + timedelta(hours=2, minutes=30)) == [("handle", 2, STREET)]
    with conn.transaction():
        tickets.transition(conn, tid, "handled", Actor("gw1", "grid_worker", "W1"), "drained")
    assert run(conn, T + timedelta(hours=9)) == []
    stages = conn.execute("SELECT stage, level FROM case_escalations ORDER BY stage, level")
    assert [(r["stage"], r["level"]) for r in stages] == [("handle", 1), ("handle", 2),
                                                          ("sign", 1)]


def test_a_late_dispatch_goes_to_the_street_centre_then_the_district(conn) -> None:
    tid = new_case(conn, "registered", worker=None, dispatch_due=T)
    conn.commit()
    assert run(conn, T - timedelta(seconds=1)) == []
    assert run(conn, T) == [("dispatch", 2, STREET)]  # no worker yet: no level 1
    assert run(conn, T + timedelta(minutes=59)) == []
    assert run(conn, T + timedelta(minutes=60)) == [("dispatch", 3, DISTRICT)]
    assert "not dispatched by 2026-11-20 10:00" in events(conn, tid)[0][1]


def test_a_case_without_a_cell_goes_to_the_district_centre(conn) -> None:
    tid = new_case(conn, "registered", worker=None, dispatch_due=T, grid=None)
    conn.commit()
    assert run(conn, T) == [("dispatch", 2, DISTRICT)]
    assert "(the case has no street)" in events(conn, tid)[0][1]


def test_a_new_deadline_starts_a_new_chain(conn) -> None:
    """Returned and dispatched again: the new sign-for limit is chased again."""
    tid = new_case(conn, ack_due=T)
    conn.commit()
    assert run(conn, T) == [("sign", 1, "W1")]
    conn.execute("UPDATE tickets SET ack_due_at = %s WHERE id = %s", (T + timedelta(hours=3), tid))
    conn.commit()
    assert run(conn, T + timedelta(hours=1)) == []
    assert run(conn, T + timedelta(hours=3)) == [("sign", 1, "W1")]
    assert run(conn, T + timedelta(hours=3, minutes=1)) == []


def test_with_a_webhook_every_step_is_also_a_webhook_row(conn) -> None:
    settings = Settings(notify=NotifySettings(webhook_url="http://127.0.0.1:9/hook"))
    new_case(conn, ack_due=T)
    conn.commit()
    assert len(run(conn, T + timedelta(hours=1), settings)) == 3
    rows = conn.execute("SELECT channel, topic, payload FROM dispatches ORDER BY id").fetchall()
    hooks = [r for r in rows if r["channel"] == "webhook"]
    assert [h["topic"] for h in hooks] == ["test/v1/dispatch/W1", f"test/v1/centre/{STREET}",
                                           f"test/v1/centre/{DISTRICT}"]
    assert [h["payload"]["level"] for h in hooks] == [1, 2, 3]
    assert hooks[0]["payload"]["type"] == "reminder" and "note" in hooks[0]["payload"]


def test_two_schedulers_at_once_take_each_step_once(db_url: str, conn) -> None:
    ids = [new_case(conn, ack_due=T) for _ in range(10)]
    conn.commit()
    barrier = threading.Barrier(2)
    taken: list[list[escalation.Escalation]] = []

    def worker() -> None:
        with db.connect(db_url) as mine:
            barrier.wait()
            with mine.transaction():
                taken.append(escalation.escalate(mine, T + timedelta(hours=1), SETTINGS, TOPICS))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    steps = sorted((s.ticket_id, s.level) for run_ in taken for s in run_)
    assert steps == [(tid, level) for tid in ids for level in (1, 2, 3)]
    n = conn.execute("SELECT count(*) AS n FROM ticket_events WHERE kind IN"
                     " ('reminder', 'escalation')").fetchone()["n"]
    assert n == 30


def test_the_scheduler_job_runs_once_per_minute_cluster_wide(db_url: str, conn) -> None:
    tid = new_case(conn, ack_due=datetime.now(UTC) - timedelta(hours=2))
    conn.commit()
    database = Database.open(db_url, max_size=4)
    try:
        schedulers = [make_scheduler(database, SETTINGS, TOPICS, send_outbox=lambda: 0)
                      for _ in range(2)]
        jobs = [s.job("escalation") for s in schedulers]
        assert all(j is not None for j in jobs)
        assert schedulers[0].job("overdue-reminders") is None
        barrier = threading.Barrier(2)

        def tick(job) -> None:
            barrier.wait()
            job.func()

        threads = [threading.Thread(target=tick, args=(j,)) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        database.close()
    assert len(events(conn, tid)) == 3
    claims = conn.execute("SELECT count(*) AS n FROM job_claims WHERE job = 'escalation'")
    assert claims.fetchone()["n"] in (1, 2)  # two only if the runs straddled a minute
