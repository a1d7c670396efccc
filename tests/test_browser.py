"""The web app in headless Chromium (selenium, Debian's chromium + chromedriver).

The app is served by a real WSGI server on 127.0.0.1. The tests prove the screens load nothing
from outside (no tiles, fonts or CDN) three ways: every request the pages made (Chromium's network
log) is to the app; Chromium sends everything not loopback through a recording proxy that answers
403, and only Chromium's own services show up there; the console has no error (a request the
Content-Security-Policy refused would be one). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from test_queries import PASSWORD, Scenario, build_scenario
from werkzeug.serving import make_server

from cityops.platform import db
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.sensing.alerts import AlertSignal, raise_alert
from dashboards.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
WAIT = 15
# Chromium's own background services (clock, updater, account, password checks) still call home
# despite the flags below; no page asset can come from these hosts. Anything else is a failure.
CHROMIUM_SERVICES = frozenset({
    "accounts.google.com", "clients2.google.com", "update.googleapis.com",
    "content-autofill.googleapis.com", "passwordsleakcheck-pa.googleapis.com",
    "optimizationguide-pa.googleapis.com",
})


class _RecordingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that forwards nothing: it records each request line and answers 403."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        if line:
            assert isinstance(self.server, _RecordingProxy)
            self.server.requests.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")


@dataclass
class Live:
    """A served app, its scenario and the proxy that catches outside requests."""

    base: str
    scenario: Scenario
    proxy: _RecordingProxy


@pytest.fixture
def live(db_url: str) -> Iterator[Live]:
    scenario = build_scenario(db_url)
    database = Database.open(db_url, max_size=6, name="web-test")
    app = create_app(database, Settings(secret_key="browser-test-key-0123456789abcdef"))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = _RecordingProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", scenario, proxy)
    finally:
        server.shutdown()
        proxy.shutdown()
        proxy.server_close()
        database.close()


def _browser(live: Live, width: int, height: int, mobile: bool = False) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--no-default-browser-check", "--disable-sync",
                "--disable-client-side-phishing-detection", "--disable-domain-reliability",
                "--disable-features=AutofillServerCommunication,PasswordLeakDetection,"
                "OptimizationHints,Translate,MediaRouter,SigninInterceptBubble",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                f"--window-size={width},{height}",
                f"--proxy-server=http://127.0.0.1:{live.proxy.server_address[1]}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"credentials_enable_service": False,
                                              "profile.password_manager_enabled": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    return driver


def _wait(driver: WebDriver, what: str, check: Callable[[WebDriver], Any]) -> Any:
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(check)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what} on {driver.current_url}") from None


def _sign_in(driver: WebDriver, live: Live, username: str) -> None:
    driver.get(live.base + "/")
    _wait(driver, "the sign-in form", lambda d: d.find_elements(By.ID, "username"))
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()


def _text(driver: WebDriver, css: str) -> str:
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def _host(request_line: str) -> str:
    method, target = request_line.split()[:2]
    if method == "CONNECT":
        return target.rsplit(":", 1)[0]
    return urlsplit(target).hostname or ""


def _no_outside_traffic(driver: WebDriver, live: Live) -> None:
    """Nothing the pages did left localhost, and the browser refused nothing (CSP, errors)."""
    problems = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == [], problems
    page_requests = [
        json.loads(e["message"])["message"]["params"]["request"]["url"]
        for e in driver.get_log("performance")
        if '"Network.requestWillBeSent"' in e["message"]
    ]
    assert page_requests, "the performance log recorded no requests"
    outside = [u for u in page_requests
               if not u.startswith((live.base + "/", "data:", "blob:"))]
    assert outside == [], f"the pages requested: {outside}"
    caught = [r for r in live.proxy.requests if _host(r) not in CHROMIUM_SERVICES]
    assert caught == [], f"requests left localhost: {caught}"


def _shot(driver: WebDriver, folder: Path, name: str) -> None:
    time.sleep(0.5)  # let the map finish its last frame
    driver.save_screenshot(str(folder / name))


def test_wall_screen_and_ticket_page(live: Live, artifacts_dir: Path) -> None:
    driver = _browser(live, 1920, 1080)
    try:
        _sign_in(driver, live, "ops1")
        _wait(driver, "the vital signs", lambda d: d.find_elements(By.ID, "vital-sensors"))
        assert driver.current_url == live.base + "/"
        assert driver.find_element(By.ID, "vital-sensors").text == "5 / 10"
        assert driver.find_element(By.ID, "vital-alerts").text == "4"
        assert driver.find_element(By.ID, "vital-tickets").text == "3"
        assert driver.find_element(By.ID, "vital-readings").text == "5"
        assert "1 overdue" in _text(driver, ".tile-details")
        _wait(driver, "the map", lambda d: d.find_elements(By.CSS_SELECTOR,
                                                           "#wall-map canvas.maplibregl-canvas"))
        # the open flood alerts put the wall in its flood view (docs/web.md): flooding gauges,
        # flood cases and the other alerts instead of the alert feed and the ticket board
        _wait(driver, "the flood view", lambda d: d.find_elements(By.ID, "flood-banner"))
        # the critical gauge floods; the low alert (a river's action stage) is not a flood
        assert "1 gauge flooding" in _text(driver, "#flood-banner")
        assert "Water 40 mm deep" in _text(driver, "#flood-other")
        assert f"#{live.scenario.tickets['flood']}" in _text(driver, "#flood-cases")
        assert f"#{live.scenario.tickets['manhole']}" not in _text(driver, "#flood-cases")
        assert "Manhole cover tilted" in _text(driver, "#flood-other")  # other alerts = alerts
        manhole = live.scenario.tickets["manhole"]
        assert driver.find_elements(By.CSS_SELECTOR,
                                    f"a.flood-other-item[href='/tickets/{manhole}']")
        fits = driver.execute_script(
            "const e = document.documentElement;"
            " return [e.scrollWidth, e.scrollHeight, window.innerWidth, window.innerHeight];")
        assert fits[0] <= fits[2] and fits[1] <= fits[3], f"the wall scrolls: {fits}"
        _shot(driver, artifacts_dir, "wall.png")

        # it stays current without a click: a new alert appears within one refresh (5 s)
        with db.connect(live.scenario.url) as conn:
            dev = live.scenario.devices["MC000002"]
            raise_alert(conn, AlertSignal(
                source_id="MC000002", kind="manhole_tilt", severity="critical",
                message="Manhole cover lifted off its seat", observed_at=live.scenario.now,
                grid_code=dev["grid_code"], lon=dev["lon"], lat=dev["lat"]))
        _wait(driver, "the new alert on the wall",
              lambda d: "Manhole cover lifted" in _text(d, "#flood-other")
              and d.find_element(By.ID, "vital-alerts").text == "5")

        ticket_id = live.scenario.tickets["flood"]
        link = driver.find_element(By.CSS_SELECTOR, f"a.flood-case[href='/tickets/{ticket_id}']")
        link.click()
        _wait(driver, "the ticket timeline",
              lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tk-timeline li")) >= 5)
        assert driver.current_url == f"{live.base}/tickets/{ticket_id}"
        assert driver.find_element(By.ID, "tk-title").text.startswith("Street flooding")
        timeline = _text(driver, "#tk-timeline")
        assert "start → Reported" in timeline and "Registered → Dispatched" in timeline
        assert "system" in timeline and "assignment" in timeline.lower()
        assert "urgent: nearest available on duty in street" in timeline
        assert "handle by" in _text(driver, "#tk-body").lower()
        buttons = _text(driver, "#tk-buttons")
        assert buttons == "Sign for"  # all operations may do with a dispatched case
        _shot(driver, artifacts_dir, "ticket.png")
        driver.find_element(By.CSS_SELECTOR, "#tk-buttons button.btn-signed_for").click()
        _wait(driver, "the case signed for",
              lambda d: "now signed for" in _text(d, "#tk-msg")
              and "Dispatched → Signed for" in _text(d, "#tk-timeline"))
        assert "Postpone" not in _text(driver, "#tk-buttons")  # asked for by the worker only
        _no_outside_traffic(driver, live)
    finally:
        driver.quit()


# The grid worker's phone page (390 x 844): tests/test_worker_browser.py.
