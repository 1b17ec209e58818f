"""Headless Chromium driven by Selenium for the bench page's tests, and the bench they serve
the page with (a recording ``BenchActions``, a finished run's artifacts).

The browser is Debian's chromium and chromedriver by path (Selenium Manager never downloads
anything) with a private profile under the test's temporary folder; every wait is bounded and,
on a timeout, says what was awaited and what the page showed. Afterwards no process of this
browser is left: Selenium quits it, then chromedriver's process group and any stray found by the
browser's folder in its command line (Chromium's crash handler leaves the group) are killed by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from rig.bench_page.actions import ActionUnavailable
from rig.deadline import Deadline
from rig.evidence.run_record import BoardInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.evidence.timeline import Timeline
from rig.processes import is_running
from tests.rig.inner_pytest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")
# Fewer background requests: the page must work with nothing else on the network.
QUIET = ("--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync")
# How often a wait looks at the page: a status shown for a moment is still seen.
POLL = 0.05
# After quit, the crash handler exits by itself once the browser is gone; give it that long.
STRAY_GRACE = 5.0

T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (apt-get install {package}): no headless browser check"
    return None


class BenchBrowser:
    """One headless Chromium. Lifecycle: ``start()`` opens it (``driver`` is then usable),
    ``quit()`` closes it and kills whatever of it is left; both are bounded, ``quit`` is
    idempotent. ``home`` is this browser's own folder: its profile, HOME and logs go there.
    ``aliases``: names it resolves to 127.0.0.1, as a DNS rebinding attacker's DNS would."""

    def __init__(
        self, home: Path, width: int = 1280, height: int = 1000, aliases: tuple[str, ...] = ()
    ) -> None:
        self.home = home
        self.aliases = aliases
        self.size = (width, height)
        self.driver_log = home / "chromedriver.log"
        self._driver: WebDriver | None = None
        self._service: Service | None = None

    @property
    def driver(self) -> WebDriver:
        assert self._driver is not None, "the browser is not started"
        return self._driver

    def start(self) -> WebDriver:
        self.home.mkdir(parents=True, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in (*ARGS, *QUIET, f"--user-data-dir={self.home / 'profile'}"):
            options.add_argument(arg)
        options.add_argument(f"--window-size={self.size[0]},{self.size[1]}")
        # No name resolves but the local ones: the page cannot load anything from elsewhere, and
        # Debian's new-tab page (the search engine's start page, from the internet) fails at once
        # instead of holding up the first get() while it times out.
        rebound = "".join(f"MAP {alias} 127.0.0.1, " for alias in self.aliases)
        rules = f"{rebound}MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
        options.add_argument(f"--host-resolver-rules={rules}")
        # The page's JavaScript errors, read by js_errors().
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self._service = Service(
            str(CHROMEDRIVER),
            log_output=str(self.driver_log),
            # HOME here: Chromium's crash database then names this folder too (see strays()).
            env={**os.environ, "HOME": str(self.home)},
            # Its own process group, so that quit() can end the browser's processes as one.
            popen_kw={"start_new_session": True},
        )
        try:
            self._driver = webdriver.Chrome(service=self._service, options=options)
        except WebDriverException:
            self.quit()
            raise
        self._driver.set_page_load_timeout(30)
        self._driver.set_script_timeout(30)
        return self._driver

    def quit(self) -> None:
        driver, self._driver = self._driver, None
        service, self._service = self._service, None
        if driver is not None:
            with contextlib.suppress(WebDriverException, OSError):  # the group kill below ends it
                driver.quit()
        process = getattr(service, "process", None) if service is not None else None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):  # already gone with its group
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        deadline = Deadline(STRAY_GRACE)
        while self.strays() and not deadline.expired:
            time.sleep(POLL)  # nothing tells when a process we did not start exits: look again
        for pid in self.strays():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def strays(self) -> list[int]:
        """Live processes of this browser, found by its folder in their command line."""
        marker = str(self.home).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes() and is_running(int(entry.name)):
                        pids.append(int(entry.name))
        return pids

    # -- reading the page ---------------------------------------------------------------------

    def wait_for(self, awaited: str, condition: Callable[[WebDriver], T], timeout: float = 15.0) -> T:
        """``condition``'s first truthy value, or an AssertionError saying what was awaited and
        what the page showed."""
        try:
            return WebDriverWait(self.driver, timeout, POLL).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {awaited}\n{self.describe()}"
            ) from None

    def text(self, css: str) -> str:
        return "\n".join(e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css))

    def lines(self, css: str, last: int) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)][-last:]

    def plot_rows(self) -> dict[str, int]:
        """Payload -> count, per row of the echo plot."""
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#plot .lane")
        return {r.get_attribute("data-payload") or "": int(r.get_attribute("data-count") or 0) for r in rows}

    def plot_count(self, payload: str) -> int:
        return self.plot_rows().get(payload, -1)

    def describe(self) -> str:
        """What the page shows now, for a failure message."""
        try:
            parts = [
                f"  page: {self.driver.current_url}",
                f"  status: {self.text('#status')!r}, connection: {self.text('#connection')!r}",
                f"  status changes: {self.lines('#status-log li', 8)}",
                f"  plot rows (payload: count): {self.plot_rows()}",
                f"  inject result: {self.text('#inject-result')!r}",
                f"  action result: {self.text('#action-result')!r}",
                f"  actions: {self.lines('#action-log li', 5)}",
                "  console, last lines:",
                *(f"    {line}" for line in self.lines("#console .line", 15)),
                "  messages, last rows:",
                *(f"    {row}" for row in self.lines("#messages .msg:not(.head)", 10)),
                f"  javascript errors: {self.js_errors()}",
                f"  chromedriver log: {self.driver_log}",
            ]
        except WebDriverException as e:
            return f"  (the page could not be read: {e.msg})"
        return "\n".join(parts)

    def js_errors(self, *, api_refusals: bool = False) -> list[str]:
        """The page's errors so far (uncaught exceptions, failed loads), as Chromium logged them.
        Chromium logs an HTTP error answer as an error too: ``api_refusals`` leaves out those of
        the API (a test that provokes a 400 or a 502 expects them)."""
        entries: list[dict[str, object]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        errors = [str(e.get("message", "")) for e in entries if e.get("level") == "SEVERE"]
        if api_refusals:
            errors = [e for e in errors if not ("/api/" in e and "the server responded with a status" in e)]
        return errors


@contextlib.contextmanager
def bench_browser(
    home: Path, width: int = 1280, height: int = 1000, aliases: tuple[str, ...] = ()
) -> Iterator[BenchBrowser]:
    """A started browser, quit afterwards; fails the test if any of its processes is left."""
    browser = BenchBrowser(home, width, height, aliases)
    browser.start()
    try:
        yield browser
    finally:
        browser.quit()
    left = browser.strays()
    assert not left, f"browser processes left after quit: {left}"


# -- the bench behind the page: what the page's tests serve it with --------------------------------

ECHO = "rig/vtest/echo"
STATUS = "rig/vtest/status"
INFO: dict[str, object] = {
    "mode": "live",
    "board": "vtest",
    "echo_topic": ECHO,
    "status_topic": STATUS,
    "topic_prefix": "rig/vtest",
    "mqtt": "mqtt://127.0.0.1:1883",
    "websocket": "ws://127.0.0.1:8080/mqtt",
    "loop_period": 0.1,
}


@dataclass
class FakeActions:
    """``BenchActions`` that records what it was asked. ``blocked``: name -> why unavailable;
    ``failures``: name -> the exception that doing it raises (``inject`` included). With
    ``hold`` set, ``run`` says it started (``started``) and waits (bounded) for ``hold``: an
    action that takes time, like a power cut."""

    blocked: dict[str, str] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    injected: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    hold: threading.Event | None = None
    started: threading.Event = field(default_factory=threading.Event)

    def unavailable(self) -> dict[str, str]:
        return dict(self.blocked)

    def inject(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self._check("inject")
        self.injected.append((topic, payload, qos, retain))

    def run(self, action: str) -> str:
        self._check(action)
        if self.hold is not None:
            self.started.set()
            assert self.hold.wait(30), f"{action}: held for 30 s, nobody released it"
        self.ran.append(action)
        return f"did {action}"

    def _check(self, name: str) -> None:
        if name in self.blocked:
            raise ActionUnavailable(self.blocked[name])
        if name in self.failures:
            raise self.failures[name]


T0 = 1_800_000_000.0
ONE = "tests_hil_test_echo.py_test_one"
TWO = "tests_hil_test_echo.py_test_two"
BINARY = bytes([0, 255, 1, 128]) + b"bin"


def _mqtt(
    timeline: Timeline, t: float, direction: str, topic: str, payload: bytes, retain: bool = False
) -> None:
    timeline.add(
        t,
        "mqtt",
        f"rig-host {direction} {topic} {payload!r} (q0)",
        dir=direction,
        topic=topic,
        payload=payload.decode("utf-8", "replace"),
        hex=payload.hex(),
        qos=0,
        retain=retain,
    )


def write_run(root: Path) -> Path:
    """A finished run of two tests, as the plugin leaves it: run.json and a folder per test with
    its timeline (written by the rig's own Timeline)."""
    run = root / "artifacts"
    record = RunRecord(rig_version="0.1.0", started=T0, finished=T0 + 10, board=BoardInfo("vtest", "virtual"))
    one = Timeline(run / ONE)
    one.add(T0 + 0.1, "rig", "[rig] test one: firmware loop period 0.1s")
    one.add(T0 + 0.2, "serial", "boot of test one")
    _mqtt(one, T0 + 0.3, "in", STATUS, b"online", retain=True)
    _mqtt(one, T0 + 0.4, "out", ECHO, b"11 22 3311")
    for i in range(3):
        _mqtt(one, T0 + 0.5 + i * 0.1, "in", ECHO, b"11 22 3311")
        one.add(T0 + 0.45 + i * 0.1, "serial", "(b'rig/vtest/echo', b'11 22 3311')")
    _mqtt(one, T0 + 0.9, "in", ECHO, BINARY)
    one.add(T0 + 0.95, "broker", "1800000000: Received PUBLISH from rig-vtest")
    one.close()
    for name in ("serial.log", "mqtt.jsonl", "broker.log"):
        (run / ONE / name).write_text("", encoding="utf-8")
    two = Timeline(run / TWO)
    two.add(T0 + 5.0, "serial", "second test's line")
    _mqtt(two, T0 + 5.1, "in", ECHO, b"two-payload")
    _mqtt(two, T0 + 5.2, "in", STATUS, b"lost", retain=True)
    two.close()
    record.tests = [
        Record("tests/hil/test_echo.py::test_one", "test_one", "passed", 1.0, artifacts=ONE, started=T0),
        Record(
            "tests/hil/test_echo.py::test_two",
            "test_two",
            "failed",
            1.0,
            message="E   AssertionError: two went wrong",
            artifacts=TWO,
            started=T0 + 5,
        ),
    ]
    record.save(run / "run.json")
    return run


def hil_run(artifacts: Path) -> Path:
    """A real run of two HIL tests on the virtual board, in a pytest of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env["PYTHONPATH"] = str(REPO)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/hil/test_echo_loop.py",
        "-k",
        "boots_connects or keeps_circulating and tutorial",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--rig-artifacts={artifacts}",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"the HIL run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    )
    return artifacts
