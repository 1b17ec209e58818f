"""The trends page in headless Chromium (integration tier: it starts a browser): the outcome
grid, the plots and "what changed" show the five nights of tests/rig/trends_runs.py, a test
name with HTML in it is text, and the page loads nothing from the network and runs no script."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from rig.history.store import open_store
from rig.history.trends import trends
from rig.report.trends_page import write_trends
from tests.rig.bench_browser import BenchBrowser, bench_browser, missing
from tests.rig.trends_runs import BREAK_MESSAGE, BREAKS, HOSTILE, MENDS, NIGHTS, STEADY, WOBBLY, write_nights

pytestmark = pytest.mark.integration


@pytest.fixture
def page(tmp_path: Path) -> Path:
    with open_store(f"sqlite:///{tmp_path / 'rig-history.sqlite'}") as store:
        write_nights(store)
        return write_trends(trends(store, NIGHTS), tmp_path / "trends.html")


@pytest.fixture
def browser(tmp_path: Path, page: Path) -> Iterator[BenchBrowser]:
    why = missing()
    if why is not None:
        pytest.skip(why)
    with bench_browser(tmp_path / "browser") as started:
        started.driver.get(page.as_uri())
        started.wait_for("the outcome grid", lambda d: d.find_elements(By.ID, "outcome-grid"))
        yield started


def grid(browser: BenchBrowser) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for tr in browser.driver.find_elements(By.CSS_SELECTOR, "#outcome-grid tbody tr"):
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_grid_changes_and_plots_in_chromium(browser: BenchBrowser) -> None:
    rows = grid(browser)
    assert rows[("virtual", BREAKS)] == ["PASS"] * 4 + ["FAIL"]
    assert rows[("virtual", MENDS)] == ["FAIL"] * 4 + ["PASS"]
    assert rows[("virtual", WOBBLY)] == ["PASS"] * 4 + ["FLAKY"]
    # An infrastructure error is told apart by its word, not only its colour.
    assert rows[("usb-1", STEADY)] == ["PASS", "PASS", "INFRA", "PASS", "PASS"]

    changes = [
        (
            li.find_element(By.CLASS_NAME, "change-kind").text,
            li.find_element(By.CLASS_NAME, "subject").text,
            li.text,
        )
        for li in browser.driver.find_elements(By.CSS_SELECTOR, "li.change")
    ]
    kinds = {(kind, subject) for kind, subject, _ in changes}
    assert ("new failure", f"virtual: {BREAKS}") in kinds
    assert ("fixed", f"virtual: {MENDS}") in kinds
    assert ("newly flaky", f"virtual: {WOBBLY}") in kinds
    assert ("figure moved", "virtual: boot_to_connected_s") in kinds
    assert ("figure moved", "virtual: fault.wifi.detect_s") not in kinds
    assert any(BREAK_MESSAGE in text for _, subject, text in changes if subject.endswith(BREAKS))
    assert "median absolute deviation" in browser.text("p.rule")

    plots = {
        fig.get_attribute("data-title"): len(fig.find_elements(By.CSS_SELECTOR, "circle.point"))
        for fig in browser.driver.find_elements(By.CSS_SELECTOR, "figure.plot")
    }
    assert plots["suite duration"] == NIGHTS
    assert plots["virtual: boot_to_connected_s"] == NIGHTS
    assert plots["virtual: fault.wifi.detect_s"] == NIGHTS
    assert browser.js_errors() == []


def test_a_test_name_with_html_is_text_in_chromium(browser: BenchBrowser) -> None:
    assert rows_named(browser, HOSTILE) == 1
    subjects = [e.text for e in browser.driver.find_elements(By.CSS_SELECTOR, "li.change .subject")]
    assert f"virtual: {HOSTILE}" in subjects
    # Had the name been markup, the page would hold a script and a <b> element.
    assert browser.driver.find_elements(By.TAG_NAME, "script") == []
    assert browser.driver.find_elements(By.CSS_SELECTOR, "td.test b, li.change code b") == []


def rows_named(browser: BenchBrowser, nodeid: str) -> int:
    return sum(1 for (_, test) in grid(browser) if test == nodeid)
