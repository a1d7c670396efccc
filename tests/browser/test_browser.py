"""The web app in headless Chromium (selenium, Debian's chromium + chromedriver).

The app is served by a real WSGI server on 127.0.0.1. The tests prove the screens load nothing
from outside (no tiles, fonts or CDN) three ways: every request the pages made (Chromium's network
log) is to the app; Chromium sends everything not loopback through a recording proxy that answers
403, and only Chromium's own services show up there; the console has no error (a request the
Content-Security-Policy refused would be one). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from cityops.platform import db
from cityops.sensing.alerts import AlertSignal, raise_alert
from tests.browser import support as ui
from tests.integration.scenario import build_scenario

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def live(db_url: str, serve: Callable[..., ui.Live]) -> ui.Live:
    """The app over the shared scenario."""
    return serve(build_scenario(db_url))


def test_wall_screen_and_ticket_page(live: ui.Live, artifacts_dir: Path) -> None:
    driver = ui.browser(live, 1920, 1080)
    try:
        ui.sign_in(driver, live, "ops1")
        ui.wait(driver, "the vital signs", lambda d: d.find_elements(By.ID, "vital-sensors"))
        assert driver.current_url == live.base + "/"
        assert driver.find_element(By.ID, "vital-sensors").text == "5 / 10"
        assert driver.find_element(By.ID, "vital-alerts").text == "4"
        assert driver.find_element(By.ID, "vital-tickets").text == "3"
        assert driver.find_element(By.ID, "vital-readings").text == "5"
        assert "1 overdue" in ui.text(driver, ".tile-details")
        ui.wait(driver, "the map", lambda d: d.find_elements(By.CSS_SELECTOR,
                                                           "#wall-map canvas.maplibregl-canvas"))
        # the open flood alerts put the wall in its flood view (docs/web.md): flooding gauges,
        # flood cases and the other alerts instead of the alert feed and the ticket board
        ui.wait(driver, "the flood view", lambda d: d.find_elements(By.ID, "flood-banner"))
        # the critical gauge floods; the low alert (a river's action stage) is not a flood
        assert "1 gauge flooding" in ui.text(driver, "#flood-banner")
        assert "Water 40 mm deep" in ui.text(driver, "#flood-other")
        assert f"#{live.scenario.tickets['flood']}" in ui.text(driver, "#flood-cases")
        assert f"#{live.scenario.tickets['manhole']}" not in ui.text(driver, "#flood-cases")
        assert "Manhole cover tilted" in ui.text(driver, "#flood-other")  # other alerts = alerts
        manhole = live.scenario.tickets["manhole"]
        assert driver.find_elements(By.CSS_SELECTOR,
                                    f"a.flood-other-item[href='/tickets/{manhole}']")
        fits = driver.execute_script(
            "const e = document.documentElement;"
            " return [e.scrollWidth, e.scrollHeight, window.innerWidth, window.innerHeight];")
        assert fits[0] <= fits[2] and fits[1] <= fits[3], f"the wall scrolls: {fits}"
        ui.shot(driver, artifacts_dir, "wall.png")

        # it stays current without a click: a new alert appears within one refresh (5 s)
        with db.connect(live.scenario.url) as conn:
            dev = live.scenario.devices["MC000002"]
            raise_alert(conn, AlertSignal(
                source_id="MC000002", kind="manhole_tilt", severity="critical",
                message="Manhole cover lifted off its seat", observed_at=live.scenario.now,
                grid_code=dev["grid_code"], lon=dev["lon"], lat=dev["lat"]))
        ui.wait(driver, "the new alert on the wall",
              lambda d: "Manhole cover lifted" in ui.text(d, "#flood-other")
              and d.find_element(By.ID, "vital-alerts").text == "5")

        ticket_id = live.scenario.tickets["flood"]
        link = driver.find_element(By.CSS_SELECTOR, f"a.flood-case[href='/tickets/{ticket_id}']")
        link.click()
        ui.wait(driver, "the ticket timeline",
              lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tk-timeline li")) >= 5)
        assert driver.current_url == f"{live.base}/tickets/{ticket_id}"
        assert driver.find_element(By.ID, "tk-title").text.startswith("Street flooding")
        timeline = ui.text(driver, "#tk-timeline")
        assert "start → Reported" in timeline and "Registered → Dispatched" in timeline
        assert "system" in timeline and "assignment" in timeline.lower()
        assert "urgent: nearest available on duty in street" in timeline
        assert "handle by" in ui.text(driver, "#tk-body").lower()
        buttons = ui.text(driver, "#tk-buttons")
        assert buttons == "Sign for"  # all operations may do with a dispatched case
        ui.shot(driver, artifacts_dir, "ticket.png")
        driver.find_element(By.CSS_SELECTOR, "#tk-buttons button.btn-signed_for").click()
        ui.wait(driver, "the case signed for",
              lambda d: "now signed for" in ui.text(d, "#tk-msg")
              and "Dispatched → Signed for" in ui.text(d, "#tk-timeline"))
        assert "Postpone" not in ui.text(driver, "#tk-buttons")  # asked for by the worker only
        ui.no_outside_traffic(driver, live)
    finally:
        driver.quit()


# The grid worker's phone page (390 x 844): tests/test_worker_browser.py.
