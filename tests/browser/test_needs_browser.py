"""The civil-affairs needs pages in headless Chromium at 1600 x 1000, as staff use them.

A civil-affairs user opens the ranked review list, filters it to the medium-intensity band, opens a
household from it, records a decision with a reason (refused first without one), then looks at
the second-look queue, the review tasks (closing one), the district summary, the fairness page
and imports a CSV file. Screenshots in ``tests/artifacts/``: ``needs-list.png``,
``needs-household-top.png``, ``needs-household.png`` (after the decision),
``needs-second-look.png``, ``needs-tasks.png``, ``needs-summary.png``,
``needs-fairness.png``, ``needs-import.png``. As in test_browser.py, nothing may be fetched from
outside and the browser may report no error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cityops.app.needs_scoring import score_households
from cityops.needs.data import INDICATORS
from cityops.needs.rules import run_rules
from cityops.platform import db, users
from cityops.simulation.district import DistrictSize, generate_district, load_district
from tests.browser import support as ui
from tests.integration.scenario import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SIZE = DistrictSize(streets=2, grids=3, communities=6, households_per_community=400,
                    flood_gauges=2, manhole_covers=2, cameras=2)


@pytest.fixture
def live(db_url: str, serve: Callable[..., ui.Live]) -> ui.Live:
    """The app over a scored district with review tasks and a civil-affairs user."""
    with db.connect(db_url) as conn:
        load_district(conn, generate_district(2, SIZE))
        users.create_user(conn, "civil1", "Cora Civil", "civil_affairs", PASSWORD)
        score_households(conn)
        run_rules(conn, datetime.now(UTC))
    return serve()


def _choose(driver: WebDriver, dropdown_id: str, text: str) -> None:
    """Pick the option showing ``text`` in a Dash dropdown, as a user clicks it."""
    driver.find_element(By.ID, dropdown_id).click()
    option = ui.wait(driver, f"the option {text!r}", lambda d: [
        e for e in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
        if text in e.text and e.is_displayed()])
    option[0].click()
    ui.wait(driver, f"{text!r} chosen", lambda d: text in ui.text(d, f"#{dropdown_id}"))


def _go(driver: WebDriver, label: str, path: str, ready: str) -> None:
    """Follow the menu link ``label`` and wait for the element ``ready`` of the new page."""
    link = ui.wait(driver, f"the menu link {label}",
                 lambda d: d.find_elements(By.LINK_TEXT, label))
    link[0].click()
    ui.wait(driver, f"the page {path}", lambda d: d.current_url.endswith(path)
          and d.find_elements(By.CSS_SELECTOR, ready))


def _audited_views(url: str) -> list[tuple[str, str]]:
    with db.connect(url) as conn:
        return [(r["action"], r["subject"]) for r in conn.execute(
            "SELECT action, subject FROM audit_log WHERE username = 'civil1' ORDER BY id")]


def test_civil_affairs_review_a_household_and_the_district(live: ui.Live, artifacts_dir: Path,
                                                           tmp_path: Path) -> None:
    driver = ui.browser(live, 1600, 1000)
    try:
        ui.sign_in(driver, live, "civil1")  # type: ignore[arg-type]
        ui.wait(driver, "the civil-affairs landing page",
                lambda d: d.current_url.endswith("/civil"))

        # the ranked list: the warning about past decisions, then the high band only
        _go(driver, "Needs", "/needs", "#needs-table table")
        assert "Past decisions show who was served, not who was in need" in ui.text(driver, "body")
        _choose(driver, "needs-band", "medium")
        ui.wait(driver, "the medium band only", lambda d: {
            e.text.split()[0] for e in d.find_elements(By.CSS_SELECTOR,
                                                       "#needs-table tbody td:nth-child(8)")
        } == {"medium"})
        assert driver.find_elements(By.CSS_SELECTOR, "#needs-exports a[href*='band=medium']")
        ui.shot(driver, artifacts_dir, "needs-list.png")

        # a household from the list: its indicators in plain words; a decision with a reason
        link = driver.find_element(By.CSS_SELECTOR, "#needs-table a[href^='/needs/household/']")
        household = link.get_attribute("href").rsplit("/", 1)[1]
        link.click()
        ui.wait(driver, "the household page", lambda d: d.find_elements(By.ID, "nh-indicators"))
        assert household in ui.text(driver, "#nh-summary")
        assert "income" in ui.text(driver, "#nh-indicators").lower()
        ui.shot(driver, artifacts_dir, "needs-household-top.png")
        driver.find_element(By.CSS_SELECTOR, "#nh-decision input[value='visit_scheduled']").click()
        driver.find_element(By.ID, "nh-record").click()
        ui.wait(driver, "the refusal without a reason", lambda d: "reason" in ui.text(d, "#nh-msg"))
        driver.find_element(By.ID, "nh-reason").send_keys(
            "Income well under the standard and no carer: visit on Monday")
        driver.find_element(By.ID, "nh-record").click()
        ui.wait(driver, "the decision in the history",
              lambda d: "visit on Monday" in ui.text(d, "#nh-decisions"))
        ui.shot(driver, artifacts_dir, "needs-household.png")

        _go(driver, "Second look", "/needs/second-look", "#look-content")
        ui.shot(driver, artifacts_dir, "needs-second-look.png")

        # review tasks: close one with a note
        _go(driver, "Tasks", "/needs/tasks", "#tasks-list table")
        before = ui.text(driver, "#tasks-summary")
        driver.find_element(By.ID, "tasks-close-task").click()
        option = ui.wait(driver, "a task to close", lambda d: [
            e for e in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
            if e.is_displayed()])
        option[0].click()
        driver.find_element(By.ID, "tasks-close-note").send_keys("Helped them apply today")
        driver.find_element(By.ID, "tasks-done").click()
        ui.wait(driver, "the task closed", lambda d: "done" in ui.text(d, "#tasks-close-msg")
              and ui.text(d, "#tasks-summary") != before)
        ui.shot(driver, artifacts_dir, "needs-tasks.png")

        # the district summary and the fairness report, with their charts drawn
        _go(driver, "Summary", "/needs/summary", "#needs-summary-indicator-chart .main-svg")
        assert "M0" in ui.text(driver, "#needs-summary-district")
        ui.shot(driver, artifacts_dir, "needs-summary.png")
        _go(driver, "Fairness", "/needs/fairness", "#fairness-chart .main-svg")
        assert "hukou" in ui.text(driver, "body").lower()
        ui.shot(driver, artifacts_dir, "needs-fairness.png")

        # import: one good row and one bad row
        csv_file = tmp_path / "households.csv"
        header = ("household_id,community_code,head_name,address,members,household_type,"
                  "head_sex,head_age_band,hukou,ethnicity,income_per_capita_month,"
                  "financial_assets,floor_area_per_person,medical_spending_share,"
                  "education_spending_share,months_unemployed," + ",".join(INDICATORS))
        with db.connect(live.url) as conn:
            community = conn.execute("SELECT code FROM grids WHERE level = 'community'"
                                     " ORDER BY code LIMIT 1").fetchone()["code"].strip()
        zeros = ",".join("0" for _ in INDICATORS)
        csv_file.write_text(
            f"{header}\nB1,{community},Li Mei,Room 1,2,family,F,40-59,local,han,900,0,30,0.4,"
            f"0,8,{zeros}\nB2,{community},Wu Li,Room 2,1,family,F,40-59,local,han,lots,0,30,0,0,"
            f"0,{zeros}\n", encoding="utf-8")
        _go(driver, "Import", "/needs/import", "#needs-import-upload")
        driver.find_element(By.CSS_SELECTOR, "#needs-import-upload input[type=file]").send_keys(
            str(csv_file))
        ui.wait(driver, "the import's summary", lambda d: "1 added, 0 updated, 1 refused"
              in ui.text(d, "#needs-import-summary"))
        assert "income_per_capita_month" in ui.text(driver, "#needs-import-result table")
        ui.shot(driver, artifacts_dir, "needs-import.png")
        ui.no_outside_traffic(driver, live)  # type: ignore[arg-type]
    finally:
        driver.quit()
    seen = _audited_views(live.url)
    for subject in ("needs.review_list", f"household {household}", "needs.second_look",
                    "review_tasks", "needs.summary", "needs.fairness"):
        assert ("view", subject) in seen, subject
    assert ("import", "needs.households") in seen
