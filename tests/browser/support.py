"""What the browser tests share: headless Chromium with a recording proxy that catches anything
leaving localhost, the served app (:class:`Live`, from the ``serve`` fixture), waiting, signing in,
reading text, screenshots, and the check that nothing left localhost."""

from __future__ import annotations

import json
import os
import socketserver
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.scenario import PASSWORD

CHROMIUM = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
WAIT = 15
# Chromium's own background services (clock, updater, account, password checks) still call home
# despite the flags below; no page asset can come from these hosts. Anything else is a failure.
CHROMIUM_SERVICES = frozenset({
    "accounts.google.com", "clients2.google.com", "update.googleapis.com",
    "content-autofill.googleapis.com", "passwordsleakcheck-pa.googleapis.com",
    "optimizationguide-pa.googleapis.com",
})


class RecordingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that forwards nothing: it records each request line and answers 403."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        if line:
            assert isinstance(self.server, RecordingProxy)
            self.server.requests.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")


def browser(live: Live, width: int, height: int, mobile: bool = False) -> WebDriver:
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


def wait(driver: WebDriver, what: str, check: Callable[[WebDriver], Any]) -> Any:
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(check)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what} on {driver.current_url}") from None


def sign_in(driver: WebDriver, live: Live, username: str, password: str = PASSWORD) -> None:
    driver.get(live.base + "/")
    wait(driver, "the sign-in form", lambda d: d.find_elements(By.ID, "username"))
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()


def text(driver: WebDriver, css: str) -> str:
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def host(request_line: str) -> str:
    method, target = request_line.split()[:2]
    if method == "CONNECT":
        return target.rsplit(":", 1)[0]
    return urlsplit(target).hostname or ""


def no_outside_traffic(driver: WebDriver, live: Live) -> None:
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
    caught = [r for r in live.proxy.requests if host(r) not in CHROMIUM_SERVICES]
    assert caught == [], f"requests left localhost: {caught}"


def shot(driver: WebDriver, folder: Path, name: str) -> None:
    time.sleep(0.5)  # let the map finish its last frame
    driver.save_screenshot(str(folder / name))


@dataclass
class Live:
    """A served app: its address, its database URL, the proxy that catches outside requests and
    what the test put in the database (``scenario``)."""

    base: str
    url: str
    proxy: RecordingProxy
    scenario: Any = None
