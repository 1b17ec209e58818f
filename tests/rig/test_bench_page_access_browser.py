"""The bench page's token and Host checks in headless Chromium: the printed URL lets the browser
in (an HttpOnly, SameSite=Strict cookie, the address bar left without the token, the API and the
event stream working on the cookie alone); without the token, with a wrong one, or under a name
that re-resolves to 127.0.0.1 (DNS rebinding), the page is refused."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.bench_page.hub import EventHub
from rig.bench_page.server import BenchServer
from tests.rig.bench_browser import INFO, BenchBrowser, FakeActions, bench_browser, missing

pytestmark = pytest.mark.integration

# A name the browser resolves to 127.0.0.1, as an attacker's DNS would once the page loaded.
REBIND = "rebind.example"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BenchBrowser]:
    why = missing()
    if why is not None:
        pytest.skip(why)
    with bench_browser(tmp_path / "browser", aliases=(REBIND,)) as started:
        yield started


@pytest.fixture
def hub() -> EventHub:
    return EventHub()


@pytest.fixture
def actions() -> FakeActions:
    return FakeActions()


@pytest.fixture
def server(hub: EventHub, actions: FakeActions) -> Iterator[BenchServer]:
    running = BenchServer(hub, actions, dict(INFO))
    running.start(timeout=10)
    yield running
    running.stop(timeout=10)


def body(browser: BenchBrowser) -> str:
    return str(browser.driver.execute_script("return document.body.innerText"))


def test_the_printed_url_lets_the_browser_in_on_a_strict_cookie(
    server: BenchServer, hub: EventHub, actions: FakeActions, browser: BenchBrowser
) -> None:
    driver = browser.driver
    driver.get(server.page_url)
    browser.wait_for("the board's name from /api/info", lambda d: browser.text("#board") == "vtest")
    assert driver.current_url == server.url, "the token stays in the address bar"
    port = urllib.parse.urlsplit(server.url).port
    (cookie,) = [c for c in driver.get_cookies() if c["name"] == f"rig_bench_{port}"]
    assert cookie["value"] == server.token
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/", cookie
    assert server.token not in str(driver.execute_script("return document.cookie")), "a script can read it"
    # The event stream and the posts work on the cookie alone.
    browser.wait_for("the live stream", lambda d: browser.text("#connection") == "live")
    hub.publish("console", text="a line after the cookie")
    browser.wait_for(
        "the line in the console", lambda d: "a line after the cookie" in browser.text("#console")
    )
    driver.find_element("id", "action-soft_reset").click()
    browser.wait_for("the soft reset done", lambda d: browser.text("#action-result") == "did soft_reset")
    assert actions.ran == ["soft_reset"]
    assert browser.js_errors() == []


def test_a_page_without_the_token_is_refused(
    server: BenchServer, actions: FakeActions, browser: BenchBrowser
) -> None:
    driver = browser.driver
    driver.get(server.url)
    browser.wait_for("the refusal", lambda d: "needs this run's token" in body(browser))
    assert "?token=" in body(browser), "the refusal says how to get in"
    assert browser.text("#board") == "", "the page itself was served"
    driver.get(f"{server.url}?token=not-{server.token}")
    browser.wait_for("the refusal of a wrong token", lambda d: "wrong token" in body(browser))
    assert not driver.get_cookies(), "a wrong token set a cookie"
    assert actions.ran == []


def test_a_name_rebound_to_this_machine_is_refused_even_with_the_token(
    server: BenchServer, actions: FakeActions, browser: BenchBrowser
) -> None:
    port = urllib.parse.urlsplit(server.url).port
    driver = browser.driver
    driver.get(f"http://{REBIND}:{port}/?token={server.token}")
    browser.wait_for("the refusal of a foreign Host", lambda d: "DNS rebinding" in body(browser))
    assert not driver.get_cookies(), "a rebound name got the token's cookie"
    assert actions.ran == []
