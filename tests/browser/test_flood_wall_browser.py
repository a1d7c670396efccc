"""The wall switches to the flood view, in headless Chromium."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cityops.cases import assignment, opening
from cityops.cases.clock import CaseClock
from cityops.cases.tickets import Actor, NewCase, create_case, transition
from cityops.org.grids import GridIndex
from cityops.platform import db, users
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from cityops.sensing.alerts import AlertSignal, raise_alert
from cityops.simulation.district import generate_district, load_district
from tests.browser import support as ui


def _flood_scenario(url: str) -> dict[str, Any]:
    """The demo district with a flood going on: three gauges flooding, one drained, their cases
    dispatched, one signed for; a citizen's report of waterlogging."""
    now = datetime.now(UTC).replace(microsecond=0)
    settings = Settings()
    clock = CaseClock.from_settings(settings)
    with db.connect(url, autocommit=True) as conn:
        load_district(conn, generate_district(1))
        index = GridIndex.from_rows(conn.execute(
            "SELECT code, level, name, parent_code, geometry FROM grids").fetchall())
        conn.execute("UPDATE devices SET online = true, last_seen = %s WHERE kind <> 'water_meter'",
                     (now - timedelta(minutes=1),))
        # the gauges with the most cameras within 300 m, in two streets
        gauges = conn.execute(
            "SELECT d.id, d.grid_code, d.lon, d.lat, d.label, (SELECT count(*) FROM cameras c"
            "  WHERE abs(c.lon - d.lon) < 0.003 AND abs(c.lat - d.lat) < 0.0027) AS cams"
            " FROM devices d WHERE d.kind = 'flood_gauge' ORDER BY cams DESC, d.id LIMIT 4"
        ).fetchall()
        plan = [(gauges[0], 520, "critical", 45, 4.0), (gauges[1], 310, "high", 38, 2.0),
                (gauges[2], 180, "medium", 20, 0.0), (gauges[3], 160, "medium", 50, 0.0)]
        alerts = []
        for g, depth, severity, minutes, rise in plan:
            for m in range(minutes, -1, -5):
                conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                             " (%s, 'depth_mm', %s, %s)",
                             (g["id"], now - timedelta(minutes=m),
                              max(0.0, depth - m * rise)))
            level = sum(depth >= x for x in (150, 270, 500))
            alert_id = raise_alert(conn, AlertSignal(
                source_id=g["id"], kind="flood_depth", severity=severity,
                message=f"Water {depth} mm deep at {g['label']}",
                observed_at=now - timedelta(minutes=minutes), grid_code=g["grid_code"],
                lon=g["lon"], lat=g["lat"],
                details={"depth_mm": depth, "levels_mm": [150, 270, 500],
                         "level": f"level {level}", "rise_mm_per_min": rise})).alert_id
            alerts.append(alert_id)
        # the fourth gauge has drained already
        conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = now(), details ="
                     " details || jsonb_build_object('cleared_at', %s::timestamptz)"
                     " WHERE id = %s", (now - timedelta(minutes=12), alerts[3]))
        cases = []
        for alert_id in alerts[:3]:
            ticket_id = opening.create_for_alert(conn, alert_id)
            assert ticket_id is not None
            assignment.assign_ticket(conn, ticket_id, index, clock, Topics(), now)
            cases.append(ticket_id)
        worker = conn.execute("SELECT worker_id FROM tickets WHERE id = %s",
                              (cases[0],)).fetchone()["worker_id"]
        transition(conn, cases[0], "signed_for", Actor("gw", "grid_worker", worker_id=worker))
        ops = Actor("ops1", "operations")
        g = gauges[1]
        citizen = create_case(conn, NewCase(
            source="citizen", category="E0401", title="Water over the kerb",
            description="The road is under water", lon=g["lon"] + 0.0004, lat=g["lat"]), ops)
        transition(conn, citizen, "accepted", ops)
        transition(conn, citizen, "registered", ops)
        mc = conn.execute("SELECT * FROM devices WHERE id = 'MC000001'").fetchone()
        raise_alert(conn, AlertSignal(
            source_id="MC000001", kind="manhole_tilt", severity="critical",
            message="Manhole cover lifted off its seat", observed_at=now - timedelta(minutes=3),
            grid_code=mc["grid_code"], lon=mc["lon"], lat=mc["lat"]))
        users.create_user(conn, "ops1", "Olga Ops", "operations", "correct horse battery")
    return {"now": now, "alerts": alerts, "cases": [*cases, citizen], "gauges": gauges}


@pytest.mark.browser
@pytest.mark.integration
def test_wall_switches_to_the_flood_view(db_url: str, serve: Callable[..., ui.Live],
                                         artifacts_dir: Path) -> None:
    sc = _flood_scenario(db_url)
    live = serve(sc)
    driver = ui.browser(live, 1920, 1080)

    def text(css: str) -> str:  # read at once: the wall redraws its panels every 5 s
        return str(driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(e => e.innerText).join(' ');", css))

    try:
        driver.get(live.base + "/")
        ui.wait(driver, "the sign-in form", lambda d: d.find_elements(By.ID, "username"))
        driver.find_element(By.ID, "username").send_keys("ops1")
        driver.find_element(By.ID, "password").send_keys("correct horse battery")
        driver.find_element(By.ID, "login-button").click()
        ui.wait(driver, "the flood banner", lambda d: d.find_elements(By.ID, "flood-banner"))
        ui.wait(driver, "the map", lambda d: d.find_elements(
            By.CSS_SELECTOR, "#wall-map canvas.maplibregl-canvas"))
        banner = text("#flood-banner")
        assert "FLOOD" in banner and "3 gauges flooding, 1 drained" in banner
        assert "peak 520 mm" in banner
        assert "Manhole cover lifted off its seat" in text("#flood-other")  # not a flood
        gauges = text("#flood-gauges")
        assert "520 mm" in gauges and "level 3 of 3 (500 mm)" in gauges
        assert "within 300 m" in gauges and "rising 4 mm/min" in gauges
        cases = text("#flood-cases")
        for ticket_id in sc["cases"]:
            assert f"#{ticket_id}" in cases
        assert "signed for" in cases and "not dispatched" in cases
        assert "Water over the kerb" in cases
        crews = text("#flood-crews")
        assert "1 in hand" in crews and "free" in crews
        assert not driver.find_element(By.ID, "wall-side").is_displayed()
        assert "Shelter" in text("#wall-map-title")
        fits = driver.execute_script(
            "const e = document.documentElement;"
            " return [e.scrollWidth, e.scrollHeight, window.innerWidth, window.innerHeight];")
        assert fits[0] <= fits[2] and fits[1] <= fits[3], f"the wall scrolls: {fits}"
        ui.shot(driver, artifacts_dir, "wall-flood.png")

        # the flood drains: the wall goes back to normal by itself within a refresh
        with db.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = now()"
                         " WHERE kind = 'flood_depth' AND status <> 'resolved'")
        ui.wait(driver, "the normal wall", lambda d: d.find_element(By.ID, "wall-side")
                 .is_displayed() and not d.find_element(By.ID, "flood-side").is_displayed())
        ui.wait(driver, "the ticket board", lambda d: f"#{sc['cases'][0]}" in text("#wall-board"))
        time.sleep(1)
        ui.shot(driver, artifacts_dir, "wall-after-flood.png")

        driver.get(f"{live.base}/flood/{sc['alerts'][0]}")
        ui.wait(driver, "the report", lambda d: d.find_elements(By.ID, "fl-timeline"))
        timeline = text("#fl-timeline")
        assert "First alert" in timeline and "Last alert resolved" in timeline
        assert f"Case #{sc['cases'][0]} signed for" in timeline
        assert "median of 1" in text("#fl-figures")
        ui.shot(driver, artifacts_dir, "flood-report.png")
        driver.get(f"{live.base}/flood")
        ui.wait(driver, "the list", lambda d: d.find_elements(By.CSS_SELECTOR,
                                                               "table.flood-events a"))
        ui.no_outside_traffic(driver, live)
    finally:
        driver.quit()

