"""The report rendered by its templates: the firmware's locked dependencies shown where a reader
looks for them, and untrusted text (serial lines, payloads, topics, properties) escaped by the
templates' autoescape, not by each call site."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, PackageLoader

from rig.evidence.run_record import BoardInfo, DependencyInfo, FirmwareInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.report import templating, write_html_report
from rig.report.templating import environment, static

T0 = 1_800_000_000.0
DEPENDENCIES = [
    DependencyInfo("umqtt.simple", "1.6.0", "mip"),
    DependencyInfo("umqtt.robust", "1.0.2", "mip"),
]
LOCKED = "umqtt.simple 1.6.0 (mip), umqtt.robust 1.0.2 (mip)"
# Things a board or a broker may send that would be markup if they were not escaped.
HOSTILE_LINE = '<script>alert("serial")</script> & "quoted" \x07'
HOSTILE_PAYLOAD = b'<script>alert("payload")</script>"'
HOSTILE_TOPIC = 'rig/x/"echo<b>'
# Shown in attributes too (a grid cell's tooltip).
HOSTILE_BOARD = 'esp32"a<i>\x07'
# ... as the page shows it: control characters made visible.
SHOWN_BOARD = 'esp32"a<i>\\x07'


def run_folder(root: Path, dependencies: list[DependencyInfo], **properties: Any) -> Path:
    """One finished run of two tests, the second with a hostile timeline and properties."""
    run = root / "run"
    record = RunRecord(
        rig_version="0.1.0",
        started=T0,
        finished=T0 + 10,
        board=BoardInfo(HOSTILE_BOARD, "esp32", "A1B2", "/dev/ttyUSB0"),
        firmware=FirmwareInfo("f" * 64, "1.0.0", "1.24.1", "esp32", dependencies=dependencies),
    )
    record.tests.append(Record("t.py::test_quiet", "quiet", "passed", 1.0, started=T0 + 1))
    record.tests.append(
        Record(
            "t.py::test_noisy",
            "noisy",
            "failed",
            1.0,
            message=f"boom {HOSTILE_LINE}",
            artifacts="noisy",
            started=T0 + 2,
            properties=properties,
        )
    )
    timeline = [
        {"t": T0 + 2.1, "src": "serial", "text": HOSTILE_LINE},
        {
            "t": T0 + 2.2,
            "src": "mqtt",
            "text": "rig-host in ...",
            "dir": "in",
            "topic": HOSTILE_TOPIC,
            "payload": HOSTILE_PAYLOAD.decode(),
            "hex": HOSTILE_PAYLOAD.hex(),
            "qos": 0,
        },
    ]
    folder = run / "noisy"
    folder.mkdir(parents=True)
    (folder / "timeline.jsonl").write_text("".join(json.dumps(e) + "\n" for e in timeline), encoding="utf-8")
    record.save(run / "run.json")
    return run


class Text(HTMLParser):
    """The page as a browser reads it: text content and attribute values, entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attributes: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [v for _, v in attrs if v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read(html: str) -> Text:
    page = Text()
    page.feed(html)
    return page


def assert_escaped(html: str) -> None:
    """No hostile text opened a tag or left an attribute, and all of it is still readable."""
    page = read(html)
    # The report's own script element is the only one.
    assert page.tags.count("script") == 1
    assert not re.search(r"<script>alert", html)
    text = "".join(page.text)
    assert '<script>alert("serial")</script> & "quoted" \\x07' in text
    assert '<script>alert("payload")</script>"' in text
    assert HOSTILE_TOPIC in text
    assert f"{SHOWN_BOARD}: failed" in page.attributes
    assert f"Board {SHOWN_BOARD}" in text
    assert "i" not in page.tags


@pytest.fixture
def hostile(tmp_path: Path) -> str:
    run = run_folder(tmp_path, DEPENDENCIES, note=HOSTILE_LINE)
    return write_html_report([run], tmp_path / "report.html").read_text(encoding="utf-8")


def test_locked_dependencies_are_in_the_run_facts_and_every_test(tmp_path: Path) -> None:
    html = write_html_report([run_folder(tmp_path, DEPENDENCIES)], tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    assert f"<tr><td>firmware dependencies</td><td><code>{LOCKED}</code></td></tr>" in html
    # Each test's properties say which libraries it ran with, whether or not it recorded them.
    assert html.count(f"<tr><td>firmware_dependencies</td><td><code>{LOCKED}</code></td></tr>") == 2


def test_a_run_without_dependencies_shows_no_dependency_row(tmp_path: Path) -> None:
    # The check above can fail: without locked versions there is nothing to show.
    html = write_html_report([run_folder(tmp_path, [])], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "firmware dependencies" not in html and "firmware_dependencies" not in html
    assert "umqtt" not in html


def test_serial_lines_payloads_topics_and_properties_are_escaped(hostile: str) -> None:
    assert_escaped(hostile)
    assert "&lt;script&gt;alert(&#34;serial&#34;)&lt;/script&gt; &amp; &#34;quoted&#34;" in hostile
    assert "&lt;script&gt;alert(&#34;payload&#34;)&lt;/script&gt;&#34;" in hostile
    # In an attribute too: a quote in a value cannot close the attribute.
    assert 'title="esp32&#34;a&lt;i&gt;\\x07: failed"' in hostile
    assert "\x07" not in hostile


def test_the_escape_check_fails_on_a_page_rendered_without_autoescape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proof that ``assert_escaped`` would catch a template that stopped escaping."""
    run = run_folder(tmp_path, DEPENDENCIES)
    unsafe = Environment(
        loader=PackageLoader("rig.report", "templates"),
        autoescape=False,
        finalize=environment().finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    unsafe.filters.update(environment().filters)
    monkeypatch.setattr(templating, "environment", lambda: unsafe)
    html = write_html_report([run], tmp_path / "unsafe.html").read_text(encoding="utf-8")
    assert "<script>alert" in html
    with pytest.raises(AssertionError):
        assert_escaped(html)


def test_the_page_is_one_file_with_the_static_files_inlined(hostile: str) -> None:
    assert str(static("report.css")).strip()[-1] == "}" and str(static("report.css")) in hostile
    assert str(static("report.js")) in hostile
    assert "<link" not in hostile and " src=" not in hostile
