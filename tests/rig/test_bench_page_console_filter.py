"""The firmware's ``@rig`` lines, hidden from the console unless asked for: on the bench page (a
toggle, hidden by default, with a count of what is hidden) in headless Chromium, and in the
terminal of a real ``rig up`` and ``rig monitor`` (``--show-events``); serial.log keeps every
line. Also, in the same browser: the page's echo plot shows the lane facts the rig computed
(``rig.report.echo_lanes``), the same the report's plot is drawn from."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from rig.bench_page.hub import EventHub
from rig.bench_page.replay import ReplayActions, ReplaySource
from rig.bench_page.server import BenchServer
from rig.deadline import Deadline
from rig.evidence.run_record import BoardInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.evidence.timeline import Timeline
from tests.rig.bench_browser import (
    ECHO,
    INFO,
    ONE,
    T0,
    BenchBrowser,
    FakeActions,
    bench_browser,
    missing,
    write_run,
)
from tests.rig.inner_pytest import REPO
from tests.rig.processes_left import processes_naming

TUTORIAL = "11 22 3311"
# What the tutorial's firmware prints for a message, and the two @rig lines that go with it.
PRINTED = f"(b'{ECHO}', b'{TUTORIAL}')"
RECEIVED = f'@rig {{"ev": "received", "topic": "{ECHO}", "hex": "{TUTORIAL.encode().hex()}"}}'
PUBLISHED = f'@rig {{"ev": "published", "topic": "{ECHO}", "hex": "{TUTORIAL.encode().hex()}"}}'


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BenchBrowser]:
    why = missing()
    if why is not None:
        pytest.skip(why)
    with bench_browser(tmp_path / "browser") as started:
        yield started


def console_lines(browser: BenchBrowser) -> list[str]:
    """The console's lines a person sees (Selenium's text of a hidden element is empty)."""
    lines = browser.driver.find_elements(By.CSS_SELECTOR, "#console .line")
    return [line.text for line in lines if line.is_displayed()]


def hidden_count(browser: BenchBrowser) -> str:
    return browser.text("#hidden-events")


def toggle(browser: BenchBrowser) -> None:
    browser.driver.find_element(By.ID, "show-events").click()


@pytest.mark.integration
def test_the_page_hides_rig_lines_by_default_and_shows_them_on_request(browser: BenchBrowser) -> None:
    hub = EventHub()
    with BenchServer(hub, FakeActions(), dict(INFO)) as server:
        for i in range(3):
            hub.publish("console", text=RECEIVED)
            hub.publish("console", text=f"{PRINTED} turn {i}")
            hub.publish("console", text=PUBLISHED)
        browser.driver.get(server.page_url)
        browser.wait_for("the tutorial's three lines", lambda d: len(console_lines(browser)) == 3)
        assert all(PRINTED in line and "@rig" not in line for line in console_lines(browser))
        browser.wait_for("a count of 6 hidden lines", lambda d: hidden_count(browser) == "6 hidden")
        assert not browser.driver.find_element(By.ID, "show-events").is_selected()

        # Lines that arrive while hidden are counted too.
        hub.publish("console", text=RECEIVED)
        hub.publish("console", text=f"{PRINTED} turn 3")
        browser.wait_for("the fourth print", lambda d: len(console_lines(browser)) == 4)
        browser.wait_for("a count of 7", lambda d: hidden_count(browser) == "7 hidden")

        toggle(browser)
        browser.wait_for("every line shown", lambda d: len(console_lines(browser)) == 11)
        lines = console_lines(browser)
        assert sum("@rig" in line for line in lines) == 7 and hidden_count(browser) == ""
        # In the order they came: the firmware's event before its print.
        assert RECEIVED in lines[0] and PRINTED in lines[1] and PUBLISHED in lines[2]

        toggle(browser)
        browser.wait_for("hidden again", lambda d: len(console_lines(browser)) == 4)
        assert hidden_count(browser) == "7 hidden"
        assert browser.js_errors() == []


def run_with_events(root: Path) -> Path:
    """A finished run whose timeline has the firmware's @rig lines around its prints."""
    run = root / "artifacts"
    timeline = Timeline(run / ONE)
    for i in range(2):
        t = T0 + i
        timeline.add(t, "serial", RECEIVED, event={"ev": "received"})
        timeline.add(t + 0.1, "serial", PRINTED)
        timeline.add(t + 0.2, "serial", PUBLISHED, event={"ev": "published"})
    timeline.close()
    record = RunRecord(rig_version="0.1.0", started=T0, finished=T0 + 3, board=BoardInfo("vtest", "virtual"))
    record.tests = [
        Record("tests/hil/test_echo.py::test_one", "test_one", "passed", 3.0, artifacts=ONE, started=T0)
    ]
    record.save(run / "run.json")
    return run


def choose(browser: BenchBrowser, test_id: str) -> None:
    browser.wait_for(
        f"the test {test_id} among the choices",
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#replay-test option[value="{test_id}"]'),
    )
    Select(browser.driver.find_element(By.ID, "replay-speed")).select_by_value("all")
    Select(browser.driver.find_element(By.ID, "replay-test")).select_by_value(test_id)


@pytest.mark.integration
def test_a_replay_hides_rig_lines_the_same_way(browser: BenchBrowser, tmp_path: Path) -> None:
    source = ReplaySource(run_with_events(tmp_path))
    with BenchServer(EventHub(), ReplayActions(), source.info(), replay=source) as server:
        browser.driver.get(server.page_url)
        choose(browser, ONE)
        browser.wait_for("the two prints", lambda d: len(console_lines(browser)) == 2)
        assert all(PRINTED in line for line in console_lines(browser))
        browser.wait_for("4 hidden", lambda d: hidden_count(browser) == "4 hidden")
        toggle(browser)
        browser.wait_for("all six lines", lambda d: len(console_lines(browser)) == 6)
        assert browser.js_errors() == []


@pytest.mark.integration
def test_a_replay_says_what_it_could_not_read(browser: BenchBrowser, tmp_path: Path) -> None:
    run = run_with_events(tmp_path)
    doc = json.loads((run / "run.json").read_text(encoding="utf-8"))
    del doc["tests"][0]["outcome"]
    (run / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    source = ReplaySource(run)
    with BenchServer(EventHub(), ReplayActions(), source.info(), replay=source) as server:
        browser.driver.get(server.page_url)
        said = f"could not read: {run / 'run.json'}: tests[0]: missing key(s) outcome"
        browser.wait_for("the problem in the replay's note", lambda d: browser.text("#replay-note") == said)
        # Its timeline is still there to replay, without its outcome.
        choose(browser, ONE)
        browser.wait_for("the two prints", lambda d: len(console_lines(browser)) == 2)


@pytest.mark.integration
def test_the_pages_plot_shows_the_rigs_lane_facts(browser: BenchBrowser, tmp_path: Path) -> None:
    source = ReplaySource(write_run(tmp_path))
    _, events = source.test_events(ONE)
    facts = {e["echo"]["lane"]: e["echo"] for e in events if e.get("echo", {}).get("role") == "arrival"}
    with BenchServer(EventHub(), ReplayActions(), source.info(), replay=source) as server:
        browser.driver.get(server.page_url)
        choose(browser, ONE)
        browser.wait_for("two lanes", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plot .lane")) == 2)
        rows = browser.driver.find_elements(By.CSS_SELECTOR, "#plot .lane")
        for row, lane in zip(rows, sorted(facts), strict=True):
            fact = facts[lane]
            assert row.get_attribute("data-count") == str(fact["count"])
            fill = row.find_element(By.CSS_SELECTOR, ".swatch rect").get_attribute("fill")
            assert fill == fact["colour"], (fill, fact)
        stats = rows[0].find_element(By.CSS_SELECTOR, ".stats").text
        assert stats.startswith(f"every {facts[0]['period']:.2f} s · {facts[0]['rate']:.2f}/s"), stats
        assert browser.js_errors() == []


# -- the terminal ---------------------------------------------------------------------------------


def rig_command(
    *argv: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *argv],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.integration
def test_rig_monitor_hides_rig_lines_unless_shown(tmp_path: Path) -> None:
    typed = 'print("hi")\nprint("@rig " + "{\\"ev\\": \\"idle\\"}")\n'
    hidden = rig_command("monitor", "virtual", "--workdir", str(tmp_path / "a"), stdin=typed)
    shown = rig_command("monitor", "virtual", "--show-events", "--workdir", str(tmp_path / "b"), stdin=typed)
    assert hidden.returncode == shown.returncode == 0, hidden.stderr + shown.stderr
    event = re.compile(r'^\S+ @rig \{"ev": "idle"\}$', re.M)
    assert re.search(r"^\S+ hi$", hidden.stdout, re.M) and not event.search(hidden.stdout), hidden.stdout
    assert "--show-events shows them" in hidden.stderr
    assert re.search(r"^\S+ hi$", shown.stdout, re.M) and event.search(shown.stdout), shown.stdout
    # The log keeps every line, whatever the terminal showed.
    assert '@rig {"ev": "idle"}' in (tmp_path / "a" / "serial-virtual.log").read_text(encoding="utf-8")


class Output:
    """A process's stdout, read line by line on a thread of its own; waits are bounded."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(str(line).rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, deadline: Deadline) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for line in self.lines if (m := re.search(pattern, line))][:1]
            return bool(found)

        with self._changed:
            if not self._changed.wait_for(seen, deadline.remaining()):
                tail = "\n".join(f"    {line}" for line in self.lines[-15:])
                raise AssertionError(
                    f"no line matching {pattern!r} within {deadline.timeout:g}s; last lines:\n{tail}"
                )
        return found[0]


@pytest.mark.integration
def test_rig_up_shows_the_tutorials_print_without_rig_lines(tmp_path: Path) -> None:
    workdir = tmp_path / "up"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "up", "virtual", "--workdir", str(workdir), "--page-port", "0"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        output = Output(process)
        deadline = Deadline(90)
        page = output.wait_for(r"^page: (http://\S+/)\?token=([\w-]+)$", deadline)
        echo = output.wait_for(r"echo topic (\S+),", deadline).group(1)
        body = json.dumps({"topic": echo, "payload": TUTORIAL}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {page.group(2)}"}
        request = urllib.request.Request(page.group(1) + "api/inject", body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=15) as answer:
            assert json.loads(answer.read())["ok"]
        # The tutorial's print of the message, several times round the loop.
        printed = re.escape(f"(b'{echo}', b'{TUTORIAL}')")
        output.wait_for(printed, deadline)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        _, err = process.communicate(timeout=30)
        assert "--show-events shows them" in err
        assert not [line for line in output.lines if "@rig" in line], output.lines[-20:]
        log = (workdir / "serial-virtual.log").read_text(encoding="utf-8")
        assert '@rig {"ev": "received"' in log and re.search(printed, log), log[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
        left = processes_naming(str(workdir))
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left after rig up: {left}"
