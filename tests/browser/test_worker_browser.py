"""The grid worker's phone page in headless Chromium at 390 x 844 (a phone held in one hand).

A worker signs for a case, reports arrival, is refused "Handled" without a note, handles it with a
note and a photo, sees the list change; looks at a welfare case (chart, no personal data), at
their cell's cases, and files a patrol report with a tapped place and then the phone's position.
The first load's weight is measured with the Performance API and written to
``tests/artifacts/worker-weight.json``. Screenshots: ``worker.png``, ``worker-task.png``,
``worker-report.png``. As in test_browser.py, nothing may be fetched from outside.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cityops.platform import db
from tests.browser import support as ui
from tests.integration.worker_scenario import WorkerScenario, build

pytestmark = [pytest.mark.browser, pytest.mark.integration]

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"

WEIGHT_JS = """
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
return {
  document: [nav.name, nav.transferSize, nav.encodedBodySize, nav.decodedBodySize],
  resources: res.map(r => [r.name, r.initiatorType, r.transferSize, r.encodedBodySize,
                           r.decodedBodySize]),
};
"""


@pytest.fixture
def live(db_url: str, serve: Callable[..., ui.Live]) -> ui.Live:
    """The app over the worker scenario."""
    return serve(build(db_url))


def _full_shot(driver: WebDriver, path: Path) -> None:
    """A screenshot of the whole page (taller than the phone's screen), 390 px wide."""
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.4)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 390, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def _rows(driver: WebDriver, section: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, f"#{section} .case-row")


def _no_sideways_scroll(driver: WebDriver) -> None:
    width = driver.execute_script("return [document.documentElement.scrollWidth,"
                                  " window.innerWidth]")
    assert width[0] <= width[1], f"the phone page scrolls sideways: {width}"


def _button(driver: WebDriver, label: str) -> Any:
    return driver.find_element(By.XPATH, f"//*[@id='wk-act']//button[normalize-space()='{label}']")


def _open(driver: WebDriver, ticket_id: int) -> None:
    """Tap a case's row (its id is Dash's pattern id, as the page renders it)."""
    row = driver.execute_script("return document.getElementById(arguments[0])",
                                json.dumps({"ticket": ticket_id, "type": "wk-open"},
                                           separators=(",", ":")))
    assert row is not None, f"no row for case {ticket_id}"
    row.click()


def _weight(driver: WebDriver, artifacts: Path) -> dict[str, Any]:
    raw = driver.execute_script(WEIGHT_JS)
    total = raw["document"][2] + sum(r[3] for r in raw["resources"])
    decoded = raw["document"][3] + sum(r[4] for r in raw["resources"])
    scripts = sum(r[3] for r in raw["resources"] if r[0].split("?")[0].endswith(".js"))
    figure = {"requests": 1 + len(raw["resources"]), "bytes": total, "decoded_bytes": decoded,
              "script_bytes": scripts, **raw}
    (artifacts / "worker-weight.json").write_text(json.dumps(figure, indent=1))
    print(f"\nworker page first load: {figure['requests']} requests, {total / 1024:.0f} kB"
          f" over the wire ({scripts / 1024:.0f} kB scripts), {decoded / 1024:.0f} kB decoded")
    return figure


def test_worker_handles_a_case_and_files_a_patrol_report(live: ui.Live, artifacts_dir: Path,
                                                          tmp_path: Path) -> None:
    sc: WorkerScenario = live.scenario  # type: ignore[assignment]
    driver = ui.browser(live, 390, 844, mobile=True)
    try:
        ui.sign_in(driver, live, "gw1")
        ui.wait(driver, "the worker's tasks", lambda d: len(_rows(d, "wk-list")) == 3)
        assert driver.current_url == live.base + "/worker"
        rows = _rows(driver, "wk-list")
        assert "Manhole cover" in rows[0].text and "overdue 2" in rows[0].text  # ~25 min
        assert "is-overdue" in rows[0].get_attribute("class")
        assert "Street flooding" in rows[1].text and "Sign for:" in rows[1].text
        assert "left" in rows[1].text
        _no_sideways_scroll(driver)
        time.sleep(1.0)  # let the first callbacks finish before weighing
        weight = _weight(driver, artifacts_dir)
        assert weight["bytes"] < 500_000, "the phone page's first load is too heavy"
        assert not [r for r in weight["resources"] if "plotly" in r[0]], "plotly.js loaded"
        driver.save_screenshot(str(artifacts_dir / "worker.png"))

        # open the flood case: map, explanation, the moves it allows
        flood = sc.cases["flood"]
        _open(driver, flood)
        ui.wait(driver, "the case", lambda d: "Water 230 mm deep" in ui.text(d, "#wk-task"))
        assert driver.find_element(By.CSS_SELECTOR, "#wk-task img.place-map").is_displayed()
        assert _button(driver, "Sign for").size["height"] >= 56
        assert _button(driver, "Return")
        _no_sideways_scroll(driver)
        _button(driver, "Sign for").click()
        ui.wait(driver, "signed for",
                lambda d: f"Case #{flood}: signed for" in ui.text(d, "#wk-msg")
                and d.find_elements(By.XPATH, "//*[@id='wk-act']//button[.='Arrived']"))
        _button(driver, "Arrived").click()
        ui.wait(driver, "on site", lambda d: d.find_elements(
            By.XPATH, "//*[@id='wk-act']//button[.='Handled']"))
        _button(driver, "Handled").click()
        ui.wait(driver, "the refusal", lambda d: "Not done" in ui.text(d, "#wk-msg"))
        assert "say what was done" in ui.text(driver, "#wk-msg")
        note = driver.find_element(By.CSS_SELECTOR, "#wk-act textarea")
        note.send_keys("Pumped out, drain cleared")
        photo = tmp_path / "site.jpg"
        photo.write_bytes(JPEG)
        driver.find_element(By.CSS_SELECTOR, "#wk-act input[type=file]").send_keys(str(photo))
        ui.wait(driver, "the photo check", lambda d: "Photo ready" in ui.text(d, "#wk-act"))
        _no_sideways_scroll(driver)
        _full_shot(driver, artifacts_dir / "worker-task.png")
        _button(driver, "Handled").click()
        ui.wait(driver, "handled", lambda d: "handled" in ui.text(d, "#wk-msg")
              and "Photo stored" in ui.text(d, "#wk-msg"))
        ui.wait(driver, "the back button",
                lambda d: d.find_element(By.ID, "wk-back").is_displayed())
        driver.find_element(By.ID, "wk-back").click()
        ui.wait(driver, "the list without the handled case",
                lambda d: len(_rows(d, "wk-list")) == 2)
        assert "Street flooding" not in ui.text(driver, "#wk-list")

        # a welfare case: the chart, and nothing about the household
        water = sc.cases["water"]
        _open(driver, water)
        ui.wait(driver, "the water chart", lambda d: d.find_elements(By.ID, "wk-water-chart"))
        page = driver.page_source
        assert not [p for p in sc.personal if p and p in page]
        driver.find_element(By.ID, "wk-back").click()

        # my cell: the colleague's case, read-only
        driver.find_element(By.ID, "wk-tab-cell").click()
        ui.wait(driver, "the cell's cases", lambda d: len(_rows(d, "wk-cell-list")) == 1)
        assert "Street light out" in ui.text(driver, "#wk-cell-list")
        assert "other cell" not in ui.text(driver, "#wk-cell-list")

        # report a problem: category, tap on the map, then the phone's position
        driver.find_element(By.ID, "wk-tab-report").click()
        ui.wait(driver, "the report form", lambda d: d.find_element(By.ID, "wk-rep-map")
              .is_displayed())
        dropdown = driver.find_element(By.ID, "wk-rep-cat")
        dropdown.click()
        search = ui.wait(driver, "the category search", lambda d: [
            e for e in d.find_elements(By.CSS_SELECTOR, "input.dash-dropdown-search")
            if e.is_displayed()])
        search[0].send_keys("Pothole")
        option = ui.wait(driver, "the category option", lambda d: [
            e for e in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
            if "Pothole" in e.text and e.is_displayed()])
        option[0].click()
        ui.wait(driver, "the chosen category", lambda d: "Pothole" in ui.text(d, "#wk-rep-cat"))
        driver.find_element(By.ID, "wk-rep-map").click()  # the middle: inside the own cell
        ui.wait(driver, "the tapped place", lambda d: "Tapped:" in ui.text(d, "#wk-rep-where"))
        assert driver.find_element(By.ID, "wk-rep-dot").is_displayed()
        lon, lat = sc.centroid_x
        driver.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": live.base, "permissions": ["geolocation"]})
        driver.execute_cdp_cmd("Emulation.setGeolocationOverride", {
            "latitude": lat, "longitude": lon, "accuracy": 12})
        driver.find_element(By.ID, "wk-rep-gps").click()
        ui.wait(driver, "the position", lambda d: "Your position:" in ui.text(d, "#wk-rep-where"))
        assert "± 12 m" in ui.text(driver, "#wk-rep-where")
        driver.find_element(By.ID, "wk-rep-note").send_keys("Deep pothole in the bus lane")
        driver.find_element(By.CSS_SELECTOR, "#wk-report input[type=file]").send_keys(str(photo))
        ui.wait(driver, "the photo check", lambda d: "Photo ready" in ui.text(d, "#wk-report"))
        _no_sideways_scroll(driver)
        driver.find_element(By.ID, "wk-rep-send").click()
        ui.wait(driver, "the filed case", lambda d: "filed" in ui.text(d, "#wk-rep-msg"))
        _full_shot(driver, artifacts_dir / "worker-report.png")

        with db.connect(sc.url) as conn:
            events = [(e["actor"], e["to_status"], len(e["photos"])) for e in conn.execute(
                "SELECT actor, to_status, photos FROM ticket_events WHERE ticket_id = %s"
                " AND kind = 'transition' ORDER BY id", (flood,))]
            patrol = conn.execute(
                "SELECT id, source, category, grid_code, reported_by, status FROM tickets"
                " WHERE source = 'patrol' AND reported_by = 'gw1'").fetchone()
            position = conn.execute("SELECT last_lon, last_lat, position_at FROM workers"
                                    " WHERE id = %s", (sc.workers["gw1"],)).fetchone()
            photos = conn.execute("SELECT count(*) AS n FROM case_photos WHERE ticket_id = %s",
                                  (patrol["id"] if patrol else 0,)).fetchone()
        assert events[-3:] == [("gw1", "signed_for", 0), ("gw1", "in_progress", 0),
                               ("gw1", "handled", 1)]
        assert patrol is not None and patrol["category"] == "C0201"
        assert patrol["grid_code"] == sc.cell_x
        assert f"Case #{patrol['id']} filed" in ui.text(driver, "#wk-rep-msg")
        assert photos is not None and photos["n"] == 1
        assert position is not None and position["last_lon"] == pytest.approx(lon, abs=1e-5)
        assert position["position_at"] is not None
        ui.no_outside_traffic(driver, live)
    finally:
        driver.quit()
