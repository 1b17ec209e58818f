"""The bench page in headless Chromium: fed by a hub the test publishes into (no board), as a
screenshot, replaying finished runs, and end to end behind ``rig up`` with the virtual board on
each real broker (mosquitto and amqtt)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from rig.bench_page.hub import EventHub
from rig.bench_page.replay import ReplayActions, ReplaySource
from rig.bench_page.server import BenchServer
from rig.deadline import Deadline
from rig.errors import BoardUnreachable
from tests.rig.bench_browser import (
    BINARY,
    ECHO,
    INFO,
    ONE,
    STATUS,
    TWO,
    BenchBrowser,
    FakeActions,
    bench_browser,
    hil_run,
    missing,
    write_run,
)
from tests.rig.inner_pytest import REPO
from tests.rig.processes_left import processes_naming
from tests.rig.test_broker_access import skip_unless_available
from tests.rig.test_report import png_colours

TUTORIAL = "11 22 3311"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BenchBrowser]:
    why = missing()
    if why is not None:
        pytest.skip(why)
    with bench_browser(tmp_path / "browser") as started:
        yield started


@pytest.fixture
def hub() -> EventHub:
    return EventHub()


@pytest.fixture
def actions() -> FakeActions:
    return FakeActions(blocked={"power_cut": "no power switch on this bench"})


@pytest.fixture
def live(hub: EventHub, actions: FakeActions) -> Iterator[BenchServer]:
    server = BenchServer(hub, actions, dict(INFO))
    server.start(timeout=10)
    yield server
    server.stop(timeout=10)


def message(hub: EventHub, topic: str, payload: bytes, retain: bool = False, t: float | None = None) -> None:
    """What the live bench's observer publishes for a message it received."""
    try:
        text: str | None = payload.decode()
    except UnicodeDecodeError:
        text = None
    hub.publish("mqtt", t, topic=topic, payload=text, hex=payload.hex(), qos=0, retain=retain)


def attribute(driver: WebDriver, css: str, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).get_attribute(name) or "")


# -- (a) the panes, fed by a hub ------------------------------------------------------------------


def test_panes_show_console_messages_status_and_the_echo_plot(
    live: BenchServer, hub: EventHub, browser: BenchBrowser
) -> None:
    hub.publish("console", text="boot of the board")
    hub.publish("console", text="<b>not bold</b>\x07")
    hub.publish("status", value="online")
    message(hub, STATUS, b"online", retain=True)
    now = time.time()
    for ago in (3, 2, 1):
        message(hub, ECHO, b"hello", t=now - ago)
    message(hub, ECHO, BINARY)
    driver = browser.driver
    driver.get(live.page_url)

    browser.wait_for("the status badge to say online", lambda d: browser.text("#status") == "online")
    browser.wait_for("hello's plot row to count 3", lambda d: browser.plot_count("hello") == 3)
    browser.wait_for("the console's lines", lambda d: "boot of the board" in browser.text("#console"))
    # Text from the board is text: shown as written, never made markup; control characters visible.
    assert "<b>not bold</b>\\x07" in browser.text("#console")
    assert not driver.find_elements(By.CSS_SELECTOR, "#console b")
    rows = browser.lines("#messages .msg:not(.head)", 10)
    assert sum(ECHO in row and "hello" in row for row in rows) == 3, rows
    assert any(STATUS in row and "retained" in row for row in rows), rows
    binary = driver.find_element(By.CSS_SELECTOR, f'#plot .lane[data-hex="{BINARY.hex()}"]')
    assert "hex" in (binary.find_element(By.CSS_SELECTOR, ".label").get_attribute("class") or "")
    assert binary.get_attribute("data-count") == "1"
    assert len(driver.find_elements(By.CSS_SELECTOR, '#plot .lane[data-payload="hello"] svg.marks line')) == 4

    # Live, after the history: the count grows and the status follows.
    message(hub, ECHO, b"hello")
    message(hub, ECHO, b"hello")
    browser.wait_for("hello's plot row to count 5", lambda d: browser.plot_count("hello") == 5)
    hub.publish("status", value="lost")
    browser.wait_for("the status badge to say lost", lambda d: browser.text("#status") == "lost")
    assert "status-lost" in attribute(driver, "#status", "class")
    assert [
        li.get_attribute("data-status") for li in driver.find_elements(By.CSS_SELECTOR, "#status-log li")
    ] == [
        "online",
        "lost",
    ]
    assert browser.js_errors() == []


def test_inject_box_posts_what_was_typed(
    live: BenchServer, actions: FakeActions, browser: BenchBrowser
) -> None:
    driver = browser.driver
    driver.get(live.page_url)
    browser.wait_for(
        "the topic field to default to the echo topic",
        lambda d: attribute(d, "#inject-topic", "value") == ECHO,
    )
    payload = driver.find_element(By.ID, "inject-payload")
    payload.clear()
    payload.send_keys(TUTORIAL)
    Select(driver.find_element(By.ID, "inject-qos")).select_by_value("1")
    driver.find_element(By.ID, "inject-retain").click()
    driver.find_element(By.ID, "inject-button").click()

    browser.wait_for("the bench to be asked to inject", lambda d: actions.injected)
    assert actions.injected == [(ECHO, TUTORIAL.encode(), 1, True)]
    browser.wait_for(
        "the inject box to say it published", lambda d: "published" in browser.text("#inject-result")
    )
    browser.wait_for(
        "the action log to show the injection", lambda d: "inject" in browser.text("#action-log")
    )
    # The injection is marked on the payload's row of the plot, before any echo came back.
    browser.wait_for(
        "an injection mark on the plot",
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#plot .lane[data-payload="{TUTORIAL}"] line.injection'),
    )

    topic = driver.find_element(By.ID, "inject-topic")
    topic.clear()
    driver.find_element(By.ID, "inject-button").click()
    browser.wait_for(
        "the inject box to name the bad field", lambda d: browser.text("#inject-result").startswith("topic:")
    )
    assert "failed" in attribute(driver, "#inject-result", "class")
    assert len(actions.injected) == 1
    assert browser.js_errors(api_refusals=True) == []


def test_buttons_do_the_actions_and_unavailable_ones_say_why(
    live: BenchServer, actions: FakeActions, browser: BenchBrowser
) -> None:
    actions.failures["interrupt"] = BoardUnreachable("vtest: the port vanished")
    driver = browser.driver
    driver.get(live.page_url)
    power = driver.find_element(By.ID, "action-power_cut")
    browser.wait_for("the power-cut button to be disabled", lambda d: not power.is_enabled())
    assert "no power switch on this bench" in (power.get_attribute("title") or "")
    reset = driver.find_element(By.ID, "action-soft_reset")
    assert reset.is_enabled() and "soft reset" in (reset.get_attribute("title") or "")

    reset.click()
    browser.wait_for("the soft reset to be done", lambda d: actions.ran == ["soft_reset"])
    browser.wait_for(
        "the result of the soft reset", lambda d: browser.text("#action-result") == "did soft_reset"
    )
    driver.find_element(By.ID, "action-interrupt").click()
    browser.wait_for(
        "the failed Ctrl-C to be reported",
        lambda d: "BoardUnreachable: vtest: the port vanished" in browser.text("#action-result"),
    )
    assert "failed" in attribute(driver, "#action-result", "class")
    browser.wait_for(
        "both actions in the log", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#action-log li")) == 2
    )
    assert browser.js_errors(api_refusals=True) == []


# -- (b) a screenshot -----------------------------------------------------------------------------


def close_to(colours: set[bytes], rgb: tuple[int, int, int], slack: int = 6) -> bool:
    return any(all(abs(c - want) <= slack for c, want in zip(colour, rgb, strict=True)) for colour in colours)


def test_screenshot_has_content_in_the_expected_colours(
    live: BenchServer, hub: EventHub, browser: BenchBrowser, tmp_path: Path
) -> None:
    now = time.time()
    hub.publish("status", now - 20, value="online")
    for i in range(40):
        hub.publish("console", now - 20 + i * 0.5, text=f"(b'{ECHO}', b'hello') turn {i}")
        message(hub, ECHO, b"hello", t=now - 20 + i * 0.5)
    browser.driver.get(live.page_url)
    browser.wait_for("hello's plot row to count 40", lambda d: browser.plot_count("hello") == 40)
    browser.wait_for("the status badge to say online", lambda d: browser.text("#status") == "online")
    shot = tmp_path / "bench.png"
    assert browser.driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    colours = png_colours(shot, rows=1000)
    assert len(colours) > 20
    expected = {
        "the online badge's green": (0x2E, 0x7D, 0x32),
        "the console's dark background": (0x14, 0x18, 0x1C),
        "the header's slate": (0x26, 0x32, 0x38),
        "hello's colour in the plot (the report's first)": (0x1F, 0x77, 0xB4),
    }
    absent = [name for name, rgb in expected.items() if not close_to(colours, rgb)]
    assert not absent, f"not on the screenshot {shot}: {absent}"
    assert not close_to(colours, (0xC6, 0x28, 0x28), 2), "the lost red is on the page, yet nothing is lost"


# -- (c) replay -----------------------------------------------------------------------------------


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[BenchServer]:
    source = ReplaySource(write_run(tmp_path))
    server = BenchServer(EventHub(), ReplayActions(), source.info(), replay=source)
    server.start(timeout=10)
    yield server
    server.stop(timeout=10)


def choose(browser: BenchBrowser, test_id: str, speed: str = "all") -> None:
    driver = browser.driver
    browser.wait_for(
        f"the test {test_id} among the choices",
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#replay-test option[value="{test_id}"]'),
    )
    Select(driver.find_element(By.ID, "replay-speed")).select_by_value(speed)
    Select(driver.find_element(By.ID, "replay-test")).select_by_value(test_id)


def test_replay_shows_the_chosen_tests_console_and_messages(
    replay: BenchServer, browser: BenchBrowser
) -> None:
    driver = browser.driver
    driver.get(replay.page_url)
    browser.wait_for("the page to be in replay mode", lambda d: browser.text("#mode") == "replay")
    assert driver.find_element(By.ID, "replay-bar").is_displayed()
    for button in ("action-soft_reset", "action-interrupt", "action-power_cut", "inject-button"):
        element = driver.find_element(By.ID, button)
        assert not element.is_enabled() and "a finished run" in (element.get_attribute("title") or ""), button

    choose(browser, TWO)
    browser.wait_for("the second test's console", lambda d: "second test's line" in browser.text("#console"))
    browser.wait_for("the second test's message", lambda d: "two-payload" in browser.text("#messages"))
    assert browser.text("#status") == "lost"
    assert "two went wrong" in browser.text("#replay-note")

    choose(browser, ONE)
    browser.wait_for("the first test's console", lambda d: "boot of test one" in browser.text("#console"))
    assert "second test's line" not in browser.text("#console"), "the panes were not cleared"
    browser.wait_for("the tutorial payload's row to count 3", lambda d: browser.plot_count(TUTORIAL) == 3)
    assert driver.find_elements(By.CSS_SELECTOR, f'#plot .lane[data-payload="{TUTORIAL}"] line.injection')
    assert driver.find_elements(By.CSS_SELECTOR, f'#plot .lane[data-hex="{BINARY.hex()}"]')
    assert "two-payload" not in browser.text("#messages")
    assert browser.text("#status") == "online"

    # Played, rather than shown at once: it ends with the same panes.
    Select(driver.find_element(By.ID, "replay-speed")).select_by_value("10")
    driver.find_element(By.ID, "replay-play").click()
    browser.wait_for(
        "the replay to play to its end",
        lambda d: attribute(d, "#replay-bar", "data-state") == "ended" and browser.plot_count(TUTORIAL) == 3,
    )
    assert browser.js_errors() == []


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hil_run(tmp_path_factory.mktemp("hil") / "artifacts")


def test_replay_of_a_real_run_shows_the_tutorial_circulating(real_run: Path, browser: BenchBrowser) -> None:
    source = ReplaySource(real_run)
    (tutorial,) = [t for t in source.tests() if t.nodeid.endswith("[tutorial]")]
    with BenchServer(EventHub(), ReplayActions(), source.info(), replay=source) as server:
        browser.driver.get(server.page_url)
        choose(browser, tutorial.id)
        browser.wait_for("the tutorial payload circulating", lambda d: browser.plot_count(TUTORIAL) >= 3)
        browser.wait_for("the payload in the console", lambda d: TUTORIAL in browser.text("#console"))
        assert TUTORIAL in browser.text("#messages")
        assert browser.text("#status") == "online"
        assert browser.js_errors() == []


# -- (d) end to end, behind `rig up` ---------------------------------------------------------------

# Broker, deploy (only what changed) and the board's boot; generous for a first deploy.
UP_START = 180.0
# A few loop turns at rig up's default period (1 s).
CIRCULATE = 30.0
# The power cut (or soft reset), the board's boot and its reconnection.
POWER_CYCLE = 60.0
# Echoes of hello the page must show after the board is back online, the badge online all along:
# several seconds at rig up's period (1 s). A board that got its status topic's retained message
# on reconnecting (amqtt 0.12.1 sent it) echoes it back within its first turn.
ECHO_TURNS = 5
# Ctrl-C: the firmware's goodbye, then the page, the broker and the board.
STOP = 60.0


class Output:
    """A child's output, read line by line on a thread, kept in a file and waited on."""

    def __init__(self, process: subprocess.Popen[str], path: Path) -> None:
        assert process.stdout is not None
        self.process = process
        self.path = path
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._file.write(line)
            self._file.flush()
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = Deadline(timeout)
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    found = re.search(pattern, line)
                    if found:
                        return found
                seen = len(self.lines)
                if deadline.expired or (self.process.poll() is not None and not self._thread.is_alive()):
                    break
                self._cond.wait(deadline.remaining_or(0.5))
        raise AssertionError(
            f"timed out after {timeout:g}s waiting for a line matching {pattern!r} from rig up "
            f"(exit code {self.process.poll()})\n{self.tail()}"
        )

    def tail(self, count: int = 30) -> str:
        shown = "\n".join(f"    {line}" for line in self.lines[-count:]) or "    (nothing)"
        return f"  rig up's last lines:\n{shown}\n  all of it: {self.path}"

    def close(self) -> None:
        self._thread.join(timeout=10)
        self._file.close()


def statuses(driver: WebDriver) -> list[str]:
    return [
        str(li.get_attribute("data-status")) for li in driver.find_elements(By.CSS_SELECTOR, "#status-log li")
    ]


def back_online(values: list[str], via: str) -> list[str] | None:
    """The statuses up to the first ``online`` after ``via`` (the board went away, then came
    back), or None while it has not come back."""
    if via not in values:
        return None
    gone = values.index(via)
    if "online" not in values[gone + 1 :]:
        return None
    return values[: values.index("online", gone + 1) + 1]


def stays_online(browser: BenchBrowser, before: int, via: str, failed: Callable[[str], str]) -> None:
    """The status log (from entry ``before`` on) goes ``via``, then ``online``; then, while the
    page shows ECHO_TURNS more echoes of hello, the badge says online at every look and the log
    gets no other status. Only then is the board back, not merely at the moment the badge turns."""
    driver = browser.driver
    browser.wait_for(
        failed(f"the status to go {via}, then online"),
        lambda d: back_online(statuses(d)[before:], via) is not None,
        POWER_CYCLE,
    )
    start = browser.plot_count("hello")
    badges: list[str] = []

    def echoed(_: WebDriver) -> bool:
        badge = browser.text("#status")
        if not badges or badges[-1] != badge:
            badges.append(badge)
        return browser.plot_count("hello") >= start + ECHO_TURNS

    browser.wait_for(failed(f"{ECHO_TURNS} echoes of hello after the board came back"), echoed, CIRCULATE)
    seen = statuses(driver)[before:]
    settled = back_online(seen, via)
    assert settled == seen and badges == ["online"], failed(
        f"the board came back online ({settled}), then over {ECHO_TURNS} echoes of hello the "
        f"status log went on to {seen[len(settled or []) :]} and the badge showed {badges}: the "
        "board echoed its own status back (did the broker send it the status topic's retained "
        "message without a SUBSCRIBE?)"
    )


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_rig_up_end_to_end(tmp_path: Path, browser: BenchBrowser, kind: str) -> None:
    skip_unless_available(kind)
    workdir = tmp_path / "bench"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        "-m",
        "rig.cli",
        "up",
        "virtual",
        "--workdir",
        str(workdir),
        "--page-port",
        "0",
        "--broker",
        kind,
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(process, tmp_path / "rig-up.log")
    try:
        url = output.wait_for(r"^page: (http://\S+)$", UP_START).group(1)
        driver = browser.driver
        driver.get(url)

        def failed(what: str) -> str:
            return f"{what}\n{output.tail(15)}"

        browser.wait_for(failed("hello on the plot"), lambda d: browser.plot_count("hello") >= 1, CIRCULATE)
        first = browser.plot_count("hello")
        browser.wait_for(
            failed(f"hello circulating: its count past {first}"),
            lambda d: browser.plot_count("hello") > first,
            CIRCULATE,
        )
        browser.wait_for(
            failed("hello in the messages pane"),
            lambda d: any(
                e.text == "hello" for e in d.find_elements(By.CSS_SELECTOR, "#messages .msg.echo .payload")
            ),
        )

        payload = driver.find_element(By.ID, "inject-payload")
        payload.clear()
        payload.send_keys(TUTORIAL)
        driver.find_element(By.ID, "inject-button").click()
        browser.wait_for(
            failed("the injection to be published"), lambda d: "published" in browser.text("#inject-result")
        )
        browser.wait_for(
            failed(f"{TUTORIAL} circulating: its plot row at 3 or more"),
            lambda d: browser.plot_count(TUTORIAL) >= 3,
            CIRCULATE,
        )
        browser.wait_for(
            failed(f"{TUTORIAL} in the console pane"), lambda d: TUTORIAL in browser.text("#console")
        )

        before = len(statuses(driver))
        power = driver.find_element(By.ID, "action-power_cut")
        assert power.is_enabled(), f"power cut unavailable: {power.get_attribute('title')}"
        power.click()
        stays_online(browser, before, "lost", lambda what: failed(f"after the power cut: {what}"))

        before = len(statuses(driver))
        reset = driver.find_element(By.ID, "action-soft_reset")
        assert reset.is_enabled(), f"soft reset unavailable: {reset.get_attribute('title')}"
        reset.click()
        # Ctrl-C first: the firmware says goodbye ("offline", retained) before it restarts.
        stays_online(browser, before, "offline", lambda what: failed(f"after the soft reset: {what}"))

        # Ctrl-C at a terminal reaches the foreground process group: rig up's.
        os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=STOP)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"rig up did not stop within {STOP:g}s of Ctrl-C\n{output.tail()}") from None
        assert code == 0, f"rig up exited with {code} after Ctrl-C\n{output.tail()}"
        left = processes_naming(str(workdir))
        assert not left, f"processes left after rig up stopped: {left}\n{output.tail()}"
        browser.wait_for(
            "the page to say the bench stopped",
            lambda d: attribute(d, "#connection", "data-state") == "ended",
            10,
        )
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        output.close()
        for pid in processes_naming(str(workdir)):  # a failed run's leftovers, by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
