"""The HTML report: built from hand-made run folders (two boards, every kind of outcome), checked
as parsed HTML, then rendered by a headless Chromium when one is installed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rig.broker.records import Ended, EndReason, to_json

# Renamed: pytest would try to collect a class named Test* as a test class.
from rig.evidence.run_record import BoardInfo, BrokerInfo, FirmwareInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.report import write_html_report
from rig.report.echo_plot import nice_ticks
from rig.report.text import printable
from rig.report.timeline_rows import HEAD_ROWS, TAIL_ROWS, alert_for

T0 = 1_800_000_000.0
PREFIX_A = "rig/esp32-a/abc123"
PREFIX_B = "rig/virtual/def456"
BINARY = bytes([0, 255, 1, 128, 13, 10]) + b"binary"
SCRIPT = "<script>alert('pwned')</script>"

PASSED = "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[binary]"
FAILED = "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]"
INFRA = "tests/hil/test_disconnect.py::test_power_cut_fires_the_will"
SKIPPED = "tests/hil/test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes"
LONG = "tests/hil/test_echo_loop.py::test_circulates_at_the_reference_one_second_period"


# -- building run folders -------------------------------------------------------------------------


def mqtt(t: float, direction: str, topic: str, payload: bytes) -> dict[str, Any]:
    shown = payload.decode("utf-8", "replace")
    return {
        "t": t,
        "src": "mqtt",
        "text": f"rig-host {direction} {topic} {payload!r} (q0)",
        "dir": direction,
        "topic": topic,
        "payload": shown,
        "hex": payload.hex(),
        "qos": 0,
        "retain": False,
    }


def serial(t: float, text: str, **event: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"t": t, "src": "serial", "text": text}
    if event:
        entry["event"] = event
    return entry


def write_test(
    run: Path,
    record: RunRecord,
    test: Record,
    timeline: list[dict[str, Any]] | None = None,
    files: tuple[str, ...] = ("serial.log", "mqtt.jsonl", "broker.log"),
) -> None:
    """Adds ``test`` to ``record`` and writes its artifact folder (unless it has none)."""
    record.tests.append(test)
    if not test.artifacts:
        return
    folder = run / test.artifacts
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text(f"{name} of {test.nodeid}\n", encoding="utf-8")
    if timeline is not None:
        lines = [json.dumps(e) for e in timeline]
        (folder / "timeline.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / "timeline.txt").write_text("\n".join(e["text"] for e in timeline) + "\n", encoding="utf-8")


def echo_traffic(
    start: float, prefix: str, payload: bytes, turns: int, period: float
) -> list[dict[str, Any]]:
    topic = f"{prefix}/echo"
    entries = [mqtt(start, "out", topic, payload), mqtt(start + 0.002, "in", topic, payload)]
    for i in range(1, turns + 1):
        t = start + i * period
        entries += [
            serial(t - 0.01, f'@rig {{"ev": "published", "hex": "{payload.hex()}"}}', ev="published"),
            mqtt(t, "in", topic, payload),
        ]
    return entries


def board_a(root: Path) -> Path:
    """A USB board that finished its run: passed, failed (firmware), infrastructure, skipped."""
    run = root / "runs" / "esp32-a"
    run.mkdir(parents=True)
    record = RunRecord(
        rig_version="0.1.0",
        started=T0,
        finished=T0 + 60,
        board=BoardInfo("esp32-a", "usb", "A1B2C3", "/dev/ttyUSB0"),
        firmware=FirmwareInfo("f" * 64, "1.0.0", "1.24.1", "esp32"),
        broker=BrokerInfo("mosquitto", "127.0.0.1", 40000),
    )
    props = {"board": "esp32-a", "micropython": "1.24.1", "firmware_tree_hash": "f" * 64}
    start = T0 + 1
    write_test(
        run,
        record,
        Record(PASSED, "binary", "passed", 1.2, artifacts="passed", started=start, properties=props),
        [
            serial(start + 0.001, "[rig] injecting payload"),
            *echo_traffic(start + 0.1, PREFIX_A, BINARY, 4, 0.1),
        ],
    )
    start = T0 + 5
    echo, elsewhere = f"{PREFIX_A}/echo", f"{PREFIX_A}/echo/elsewhere"
    failing = [
        serial(start + 0.01, SCRIPT),
        mqtt(start + 0.1, "out", echo, b"11 22 3311"),
        mqtt(start + 0.101, "in", echo, b"11 22 3311"),
        serial(start + 0.2, "@rig {...}", ev="published", topic=elsewhere),
        mqtt(start + 0.21, "in", elsewhere, b"11 22 3311"),
        mqtt(start + 0.31, "in", elsewhere, b"11 22 3311"),
        serial(start + 0.4, '@rig {"ev": "error", "type": "OSError"}', ev="error", type="OSError"),
        {
            "t": start + 0.5,
            "src": "broker",
            "text": "record: ENDED rig-esp32-a: closed (closed its connection) [run 1]",
            "record": to_json(Ended("rig-esp32-a", how=EndReason.CLOSED, detail="closed its connection")),
        },
        {"t": start + 0.6, "src": "rig", "text": "[rig] note: see https://example.com/docs for help"},
    ]
    message = (
        f"E   rig.errors.WaitTimeout: b'11 22 3311' on '{echo}' at least 3 time(s)\n"
        f"E     in {elsewhere} b'11 22 3311' {SCRIPT}"
    )
    write_test(
        run,
        record,
        Record(
            FAILED,
            "tutorial",
            "failed",
            3.0,
            message=message,
            artifacts="failed",
            started=start,
            properties=props,
        ),
        failing,
    )
    start = T0 + 10
    write_test(
        run,
        record,
        Record(
            INFRA,
            "power cut",
            "error",
            0.5,
            infrastructure=True,
            artifacts="infra",
            started=start,
            message="rig.errors.BoardUnreachable: esp32-a: serial port lost while waiting",
        ),
        [{"t": start + 0.2, "src": "rig", "text": "[rig] serial port lost: [Errno 5] Input/output error"}],
        files=("serial.log",),
    )
    write_test(run, record, Record(SKIPPED, "restart", "skipped", 0.0, message="needs mosquitto"))
    start = T0 + 20
    many = [serial(start + i * 0.01, f"line {i}") for i in range(HEAD_ROWS + TAIL_ROWS + 100)]
    write_test(run, record, Record(LONG, "long", "passed", 8.0, artifacts="long", started=start), many)
    record.save(run / "run.json")
    (run / "session").mkdir()
    (run / "session" / "serial-esp32-a.log").write_text("session log\n", encoding="utf-8")
    return run


def board_b(root: Path) -> Path:
    """The virtual board, killed mid-run: finished is null, one test has lost its folder."""
    run = root / "runs" / "virtual"
    run.mkdir(parents=True)
    record = RunRecord(rig_version="0.1.0", started=T0, finished=None, board=BoardInfo("virtual", "virtual"))
    start = T0 + 2
    write_test(
        run,
        record,
        Record(PASSED, "binary", "passed", 1.0, artifacts="passed", started=start),
        echo_traffic(start, PREFIX_B, BINARY, 3, 0.1),
    )
    record.tests.append(Record(FAILED, "tutorial", "failed", 2.0, message="boom", artifacts="gone"))
    record.save(run / "run.json")
    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    out = root / "site" / "report.html"
    return write_html_report([board_a(root), board_b(root)], out, title="Nightly <b>")


# -- reading the page -----------------------------------------------------------------------------


@dataclass
class Tag:
    name: str
    attrs: dict[str, str]


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[Tag] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(Tag(tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, name: str, **attrs: str) -> list[Tag]:
        return [
            t
            for t in self.tags
            if t.name == name and all(v in t.attrs.get(k.rstrip("_"), "").split() for k, v in attrs.items())
        ]


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def section(html: str, anchor: str) -> str:
    """The HTML of one test's <details> section."""
    start = html.index(f'id="{anchor}"')
    return html[start : html.index("</details>", start)]


# -- the page -------------------------------------------------------------------------------------


def test_grid_has_a_row_per_test_and_a_column_per_board(report: Path) -> None:
    page = parse(report)
    html = report.read_text(encoding="utf-8")
    assert html.count('<td class="test">') == 5
    assert ">esp32-a</a></th>" in html and ">virtual</a></th>" in html
    assert len(page.find("td", class_="o-passed")) == 3
    assert len(page.find("td", class_="o-failed")) == 2
    assert len(page.find("td", class_="o-infra")) == 1
    assert len(page.find("td", class_="o-skipped")) == 1
    # virtual never ran three of the tests.
    assert len(page.find("td", class_="o-missing")) == 3
    assert re.search(r'class="cell o-infra"[^>]*><a href="#[^"]+">INFRA</a>', html)
    assert re.search(r'class="cell o-failed"[^>]*><a href="#[^"]+">FAIL</a>', html)


def test_every_cell_links_to_a_section(report: Path) -> None:
    page = parse(report)
    ids = {t.attrs["id"] for t in page.tags if "id" in t.attrs}
    targets = [t.attrs["href"][1:] for t in page.find("a") if t.attrs.get("href", "").startswith("#")]
    assert targets and all(target in ids for target in targets)
    assert all(page.find("details", id=target) or target.startswith("run-") for target in targets)


def test_header_has_verdict_counts_boards_and_incomplete_run(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert '<span class="verdict FAIL">FAIL</span>' in html
    assert "<b>3</b> passed" in html and "<b>2</b> failed (firmware)" in html
    assert "<b>1</b> infrastructure" in html and "<b>1</b> skipped" in html
    assert "<title>Nightly &lt;b&gt;</title>" in html
    assert "incomplete: the run did not finish" in html
    assert "Rig:</b> 0.1.0" in html


def test_failed_sections_are_open_and_passed_closed(report: Path) -> None:
    page = parse(report)
    details = page.find("details", class_="test")
    assert len(details) == 7
    for d in details:
        assert ("open" in d.attrs) == any(k in d.attrs["class"] for k in ("failed", "infra", "error"))
    assert len(page.find("details", class_="failed")) == 2


def test_failing_section_shows_message_properties_topics_and_timeline(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    failed = section(html, "r0-tests_hil_test_echo_loop.py_test_injected_message_keeps_circulating_tutorial")
    assert '<pre class="failure">E   rig.errors.WaitTimeout' in failed
    assert "A1B2C3" in failed and "f" * 64 in failed and "1.24.1" in failed
    # The wrong topic is in the topic table and in the timeline, twice received, never published.
    assert re.search(r"abc123/echo/elsewhere</code></td><td class=\"n\">0</td><td class=\"n\">2</td>", failed)
    assert failed.count('<span class="topic">rig/esp32-a/abc123/echo/elsewhere</span>') == 2
    # Highlighted: the firmware's error event, the broker's unclean close, and the failure last.
    assert re.search(r'<tr class="src-serial alert">.*?firmware error', failed)
    assert re.search(r'<tr class="src-broker alert">.*?closed its connection.*?unclean close', failed)
    rows = re.findall(r"<tr class=\"([^\"]+)\">", failed.split('class="timeline"')[1])
    assert rows[-1] == "src-verdict alert"
    assert re.search(r'<td class="t">0\.100</td>', failed)


def test_infrastructure_failure_is_marked_and_lost_port_highlighted(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    infra = section(html, "r0-tests_hil_test_disconnect.py_test_power_cut_fires_the_will")
    assert "Infrastructure failure" in infra
    assert re.search(r'<tr class="src-rig alert">.*?serial port lost.*?port lost', infra)


def test_user_text_is_escaped(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "<script>alert" not in html
    # Jinja2's autoescape (markupsafe) writes a quote as &#39;, as html.escape wrote &#x27;.
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the report's own script


def test_binary_payload_shows_printable_and_hex(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "\\x00\\xff\\x01\\x80\\x0d\\x0abinary" in html
    assert BINARY.hex() in html
    assert "\x00" not in html


def test_artifact_links_are_relative_and_exist(report: Path) -> None:
    page = parse(report)
    hrefs = [t.attrs["href"] for t in page.find("a") if not t.attrs.get("href", "#").startswith("#")]
    assert hrefs
    names = {Path(urllib.parse.unquote(h)).name for h in hrefs}
    expected = {"serial.log", "mqtt.jsonl", "broker.log", "timeline.txt", "run.json", "serial-esp32-a.log"}
    assert expected <= names
    assert "junit.xml" not in names  # only artifacts that exist
    for href in hrefs:
        assert not href.startswith(("/", "file:")), href
        assert (report.parent / urllib.parse.unquote(href)).is_file(), href
    infra = [h for h in hrefs if "/infra/" in h]
    assert [Path(h).name for h in infra] == ["timeline.txt", "serial.log"]


def test_no_external_resources(report: Path) -> None:
    page = parse(report)
    for tag in page.tags:
        for attr in ("src", "href", "xlink:href", "action", "data"):
            value = tag.attrs.get(attr, "")
            assert not re.match(r"\s*(https?:)?//", value), (tag, attr)
    html = report.read_text(encoding="utf-8")
    assert "<link" not in html and "<img" not in html and "@import" not in html and "url(" not in html
    # A URL in a test's own text stays plain text.
    assert "https://example.com/docs" in "".join(page.text)


def test_echo_plot_for_tests_with_echo_traffic_only(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    passed = section(html, "r0-tests_hil_test_echo_loop.py_test_injected_message_keeps_circulating_binary")
    assert '<svg class="echo-plot"' in passed
    assert "median 0.100 s" in passed
    assert "seconds since the test started" in passed
    infra = section(html, "r0-tests_hil_test_disconnect.py_test_power_cut_fires_the_will")
    assert '<svg class="echo-plot"' not in infra
    assert html.count('<svg class="echo-plot"') == 3
    # The failing firmware's answers on the wrong topic: hollow markers and a note naming the topic.
    failed = section(html, "r0-tests_hil_test_echo_loop.py_test_injected_message_keeps_circulating_tutorial")
    assert failed.count('fill="#fff"') == 2
    assert "○ arrived on rig/esp32-a/abc123/echo/elsewhere: below the echo topic" in failed


def test_long_timeline_is_cut_with_a_link_to_the_whole(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    long = section(html, "r0-tests_hil_test_echo_loop.py_test_circulates_at_the_reference_one_second_period")
    assert "100 rows hidden" in long
    assert 'href="../runs/esp32-a/long/timeline.txt"' in long
    assert long.count('<tr class="src-serial">') == HEAD_ROWS + TAIL_ROWS
    assert ">line 0<" in long and f">line {HEAD_ROWS + TAIL_ROWS + 99}<" in long and ">line 350<" not in long


def test_filters_are_hidden_without_script(report: Path) -> None:
    page = parse(report)
    bars = page.find("div", class_="tl-filter")
    assert bars and all("hidden" in b.attrs for b in bars)
    assert not page.find("tr", class_="hidden")


def test_missing_inputs_do_not_break_the_report(tmp_path: Path) -> None:
    empty = write_html_report([], tmp_path / "empty.html")
    assert "No test results" in empty.read_text(encoding="utf-8")
    (tmp_path / "no-record").mkdir()
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "run.json").write_text('{"rig_version": "0.1.0", "started": 1', encoding="utf-8")
    newer = tmp_path / "newer"
    newer.mkdir()
    # From a newer rig: unknown fields, a duration that is not a number.
    test = {
        "nodeid": "t::a",
        "name": "a",
        "outcome": "failed",
        "future": True,
        "duration": "?",
        "artifacts": "a",
    }
    doc = {"rig_version": "9", "started": T0, "finished": None, "shiny": 1, "tests": [test]}
    (newer / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    (newer / "a").mkdir()
    cut_short = '{"t": 1, "src": "serial", "text": "x"}\n{"t": 2, "sr'
    (newer / "a" / "timeline.jsonl").write_text(cut_short, encoding="utf-8")
    out = write_html_report([tmp_path / "no-record", garbled, newer], tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    # Each problem names the file (or folder) and, for a record that is not one, the key.
    assert f"{tmp_path / 'no-record'}: no run.json in it" in html
    assert f"{garbled / 'run.json'}: not JSON: Expecting" in html
    assert '<span class="verdict FAIL">' in html and "incomplete" in html
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_mqtt_trace_stands_in_for_a_missing_timeline(tmp_path: Path) -> None:
    run = tmp_path / "run"
    record = RunRecord(rig_version="0.1.0", started=T0, finished=T0 + 1, board=BoardInfo("b"))
    write_test(run, record, Record("t::echo", "echo", "passed", 1.0, artifacts="t", started=T0))
    trace = [mqtt(T0 + 0.1 * i, "in", f"{PREFIX_B}/echo", b"x") for i in range(3)]
    (run / "t" / "mqtt.jsonl").write_text("".join(json.dumps(e) + "\n" for e in trace), encoding="utf-8")
    record.save(run / "run.json")
    html = write_html_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "showing the MQTT trace only" in html and '<svg class="echo-plot"' in html


def test_alerts() -> None:
    def broker(record: Ended) -> dict[str, Any]:
        # As rig.evidence.broker_tap puts a record into the timeline.
        return {"src": "broker", "text": f"record: {record.describe()}", "record": to_json(record)}

    timeout = Ended("x", how=EndReason.KEEPALIVE_TIMEOUT, detail="has exceeded timeout")
    assert alert_for(broker(timeout)) == "unclean close: keepalive_timeout (has exceeded timeout)"
    assert alert_for(broker(Ended("x", how=EndReason.CLOSED, detail="closed its connection")))
    assert not alert_for(broker(Ended("x", how=EndReason.DISCONNECT, detail="disconnected")))
    # The broker's log lines are for people; its records decide.
    assert not alert_for({"src": "broker", "text": "2026-01-01T00:00:00: Client x closed its connection."})
    assert alert_for({"src": "serial", "text": "Traceback (most recent call last):"})
    assert not alert_for({"src": "serial", "text": "@rig {}", "event": {"ev": "idle"}})
    assert not alert_for({"src": "rig", "text": "[rig] injecting b'x' on t"})


def test_small_helpers() -> None:
    assert nice_ticks(0, 3.4) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert nice_ticks(0, 0.04, 4) == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert printable(b"a\\b\x00\xff") == "a\\\\b\\x00\\xff"
    assert printable(b"abcdef", limit=4) == "abc…"


# -- in a real browser ----------------------------------------------------------------------------


def chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@dataclass
class Browser:
    args: list[str]
    # Chromium's crash handlers leave its process group (they call setsid); every process of
    # this browser has this folder in its command line, which is how leftovers are found.
    home: Path

    def run(self, *extra: str) -> str:
        """Runs Chromium in its own process group and kills the group afterwards, even on a
        timeout, so that no zygote, GPU or renderer process outlives the test."""
        env = {**os.environ, "HOME": str(self.home)}  # its crash database goes there, not in ~
        proc = subprocess.Popen(
            [*self.args, *extra],
            cwd=self.home,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
            return out
        finally:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self._end_strays()

    def strays(self) -> list[int]:
        """Live processes of this browser, found by the folder in their command line."""
        marker = str(self.home).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
        return pids

    def _end_strays(self) -> None:
        # Crash handlers exit by themselves once the browser is gone; give them that chance.
        deadline = time.monotonic() + 5
        while self.strays() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.strays():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium): no headless rendering check")
    home = tmp_path / "browser"
    home.mkdir()
    args = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={home / 'profile'}",
    ]
    return Browser(args, home)


def png_colours(path: Path, rows: int = 700) -> set[bytes]:
    """The distinct pixel colours of the first ``rows`` rows of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), width * bpp
    colours: set[bytes] = set()
    prev = bytearray(stride)
    for y in range(min(rows, height)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp * 4))
        prev = line
    return colours


def test_chromium_renders_a_screenshot(report: Path, browser: Browser, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    browser.run(f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert not browser.strays()
    assert shot.exists() and shot.stat().st_size > 20_000
    colours = png_colours(shot)
    assert len(colours) > 20
    # The red of a FAIL cell made it to the screen.
    assert any(r > 180 and g < 80 and b < 80 for r, g, b in colours)


def test_chromium_dom_has_grid_open_failure_timeline_and_plot(report: Path, browser: Browser) -> None:
    dom = browser.run("--dump-dom", report.as_uri())
    assert not browser.strays()
    assert '<table class="grid">' in dom
    failed = "r0-tests_hil_test_echo_loop.py_test_injected_message_keeps_circulating_tutorial"
    assert re.search(rf'<details class="test failed" id="{re.escape(failed)}" open="">', dom)
    assert '<tr class="src-mqtt">' in dom and '<tr class="src-verdict alert">' in dom
    assert '<svg class="echo-plot"' in dom and "<circle" in dom
    # The script ran: it reveals the filters that would do nothing without it.
    assert '<div class="tl-filter" data-table=' in dom
    assert not re.search(r'<div class="tl-filter"[^>]*hidden', dom)
    assert "<script>alert" not in dom
