"""The report's conformance table (rig.report.conformance), rendered from a run folder whose
tests carry the broker scenarios' properties, as tests/rig/test_broker_scenarios.py writes them."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from rig.evidence import junit_properties as jp
from rig.evidence.run_record import BoardInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.report import write_html_report

T0 = 1_800_000_000.0
# Three scenarios (one failed) exercising two numbered statements, and a test that is no scenario.
SCENARIOS = [
    ("connack-refused-1", "MQTT-3.2.2-5", "CONNACK 1, then the broker closes", "passed"),
    ("publish-qos2-dup", "MQTT-4.4.0-1 / MQTT-3.2.2-5", "PUBREC again, delivered <once>", "failed"),
    ("connack-late", "3.1.4 (no number)", "CONNACK only after the board's connect timeout", "passed"),
]


def run_folder(root: Path) -> Path:
    run = root / "run"
    run.mkdir()
    record = RunRecord(rig_version="0.1.0", started=T0, finished=T0 + 10, board=BoardInfo("virtual-1"))
    record.tests.append(Record("t.py::test_quiet", "quiet", "passed", 1.0, started=T0))
    for i, (name, statement, expected, outcome) in enumerate(SCENARIOS):
        record.tests.append(
            Record(
                f"tests/rig/test_broker_scenarios.py::test_broker_scenario[{name}]",
                f"test_broker_scenario[{name}]",
                outcome,
                1.0,
                started=T0 + 1 + i,
                properties={jp.MQTT_SCENARIO: name, jp.MQTT_STATEMENT: statement, jp.MQTT_EXPECTED: expected},
            )
        )
    record.save(run / "run.json")
    return run


def table_text(html: str) -> list[list[str]]:
    """The conformance table's rows, each cell's text."""
    body = html.split('<table class="grid conformance">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in rows]
    return [[unescape(re.sub(r"<[^>]+>", "", c)) for c in row] for row in cells]


def test_conformance_table_has_summary_and_a_row_per_scenario(tmp_path: Path) -> None:
    html = write_html_report([run_folder(tmp_path)], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "MQTT conformance on virtual-1" in html
    assert "2 of 3 scenarios passed, 2 statements exercised" in html
    assert table_text(html) == [
        ["scenario", "MQTT 3.1.1", "expected", "result"],
        ["connack-refused-1", "MQTT-3.2.2-5", "CONNACK 1, then the broker closes", "PASS"],
        ["publish-qos2-dup", "MQTT-4.4.0-1 / MQTT-3.2.2-5", "PUBREC again, delivered <once>", "FAIL"],
        ["connack-late", "3.1.4 (no number)", "CONNACK only after the board's connect timeout", "PASS"],
    ]
    # Each result links to the test's section, which the page has.
    for anchor in re.findall(r'<td class="cell o-\w+"><a href="#([^"]+)">', html):
        assert f'id="{anchor}"' in html


def test_no_conformance_table_without_scenarios(tmp_path: Path) -> None:
    run = run_folder(tmp_path)
    record = RunRecord.load(run / "run.json")
    record.tests = record.tests[:1]
    record.save(run / "run.json")
    html = write_html_report([run], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "MQTT conformance" not in html
