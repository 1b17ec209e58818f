"""A check the firmware's contract gives no witness for is "not checked" in the report too
(issue 16 §3: in the skip reason and in the report), with its reason, never a bare skip."""

from __future__ import annotations

from pathlib import Path

from rig.evidence.run_record import BoardInfo, RunRecord
from rig.evidence.run_record import TestRecord as Record
from rig.fixtures.contract import NOT_CHECKED, PROPERTY
from rig.report import write_html_report

T0 = 1_800_000_000.0
REASON = "the status topic: not declared in examples/tutorial/rig-contract.yaml"
NODEID = "tests/hil/test_status.py::test_status_is_retained_after_each_change"


def test_the_report_says_not_checked_and_why(tmp_path: Path) -> None:
    run = tmp_path / "virtual"
    run.mkdir()
    board = BoardInfo("virtual", "virtual")
    record = RunRecord(rig_version="0.1.0", started=T0, finished=T0 + 5, board=board)
    # As rig.fixtures.contract leaves it: the skip's reason and the property, in run.json.
    record.tests.append(
        Record(
            NODEID,
            NODEID.rsplit("::", 1)[1],
            "skipped",
            0.1,
            message=f"{NOT_CHECKED}: {REASON}",
            properties={PROPERTY: REASON},
        )
    )
    record.save(run / "run.json")
    html = write_html_report([run], tmp_path / "report.html").read_text(encoding="utf-8")
    start = html.index(f'<details class="test skipped" id="r0-{NODEID.replace("/", "_").replace("::", "_")}"')
    test = html[start : html.index("</details>", start)]
    assert f"skipped: {NOT_CHECKED}: {REASON}" in test, test
    assert f"<td>{PROPERTY}</td><td><code>{REASON}</code></td>" in test, test
