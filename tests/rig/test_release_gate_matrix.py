"""The release gate's judging, without boards: the runtime matrix of the report (a column per
runtime, two builds of one version apart, the worst outcome of a runtime's boards, the bundle
named), and the gate's reading of a run the rig stopped itself (the stopping error is the reason,
said whole)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.cli import main
from rig.discovery import ports as discovery_ports
from rig.evidence import junit_properties, run_record
from rig.evidence.run_audit import VERDICT_NAME
from rig.evidence.run_record import RunRecord
from rig.gate import INFRASTRUCTURE, Attempt, classify, first_line
from rig.report.load import load_runs
from rig.report.matrix import UNKNOWN
from rig.report.page import page
from rig.runtime.identity import MpyAbi, RuntimeIdentity

BUNDLE = "ab" * 32
REPO = Path(__file__).resolve().parents[2]


def identity(build: str) -> RuntimeIdentity:
    return RuntimeIdentity(
        "micropython", "1.29.0-preview", build, "linux", "m", "standard", MpyAbi.decode(2822)
    )


def run(
    root: Path, name: str, runtime: RuntimeIdentity | None, outcomes: dict[str, str], release: str = BUNDLE
) -> Path:
    folder = root / name
    folder.mkdir()
    record = RunRecord(rig_version="0", started=1.0, finished=2.0, runtime=runtime)
    record.board.name = name
    for nodeid, outcome in outcomes.items():
        test = run_record.TestRecord(nodeid, nodeid.split("::")[-1], outcome)
        if release:
            test.properties[junit_properties.RELEASE_BUNDLE] = release
        record.tests.append(test)
    record.save(folder / "run.json")
    return folder


def test_one_column_per_runtime_with_the_worst_outcome_of_its_boards(tmp_path: Path) -> None:
    now, following = identity("9458e3a23f on 2026-07-05"), identity("49f553e4ae on 2026-07-04")
    folders = [
        run(tmp_path, "now-1", now, {"t.py::echo": "passed", "t.py::will": "passed"}),
        run(tmp_path, "next", following, {"t.py::echo": "passed"}),
        run(tmp_path, "now-2", now, {"t.py::echo": "failed", "t.py::will": "skipped"}),
        run(tmp_path, "stopped", None, {}, release=""),
    ]
    shown = page(load_runs(folders), tmp_path, "gate", 3.0)
    matrix = shown.matrix
    # Two builds of one version are two runtimes; a board that never read one has its column.
    assert [c.runtime for c in matrix.columns] == [
        "micropython 1.29.0-preview (9458e3a23f on 2026-07-05), port linux, variant standard",
        "micropython 1.29.0-preview (49f553e4ae on 2026-07-04), port linux, variant standard",
        UNKNOWN,
    ]
    assert [c.boards for c in matrix.columns] == ["now-1, now-2", "next", "stopped"]
    assert [c.release for c in matrix.columns] == [BUNDLE[:12], BUNDLE[:12], ""]
    assert matrix.columns[0].release_full == BUNDLE
    rows = {row.nodeid: row.cells for row in matrix.rows}
    assert [c.kind for c in rows["t.py::echo"]] == ["failed", "passed", "missing"]
    assert rows["t.py::echo"][0].tip == "now-1: passed, now-2: failed"
    assert [c.kind for c in rows["t.py::will"]] == ["skipped", "missing", "missing"]
    assert shown.header.release == BUNDLE
    assert ("release bundle", BUNDLE) in shown.runs[0].facts


def test_no_matrix_where_no_run_read_its_runtime(tmp_path: Path) -> None:
    shown = page(
        load_runs([run(tmp_path, "old", None, {"t.py::a": "passed"}, release="")]), tmp_path, "t", 3.0
    )
    assert shown.matrix.columns == [] and shown.matrix.rows == []
    assert shown.header.release == ""


def test_a_run_the_rig_stopped_itself_is_judged_by_the_error_that_stopped_it(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    record = RunRecord(
        rig_version="0", started=1.0, finished=2.0, runtime=identity("9458e3a23f on 2026-07-05")
    )
    message = (
        "E   rig.runtime.pin.RuntimeMismatch: old: runs another MicroPython than its pin, not testing "
        "firmware on it:\nE     version: pinned 1.19, runs 1.29.0-preview (build 9458e3a23f)\n"
        "E     pinned: version 1.19"
    )
    record.tests.append(run_record.TestRecord("t.py::a", "a", "error", infrastructure=True, message=message))
    record.tests[0].properties[junit_properties.RELEASE_BUNDLE] = BUNDLE
    record.save(folder / "run.json")
    (folder / VERDICT_NAME).write_text('{"clean": true, "searched": 1}')
    # pytest exits 2 when the plugin stops the session (``stops_run``): that is not the reason.
    attempt = Attempt("old", folder, 0, 2, 1.0)
    classify(attempt, 60.0)
    assert attempt.category == INFRASTRUCTURE
    assert attempt.infrastructure_reason == (
        "old: runs another MicroPython than its pin, not testing firmware on it: "
        "version: pinned 1.19, runs 1.29.0-preview (build 9458e3a23f)"
    )
    assert attempt.runtime.startswith("micropython 1.29.0-preview (9458e3a23f on 2026-07-05) port linux")
    assert attempt.release == BUNDLE


def test_first_line_keeps_a_line_that_says_its_reason_on_the_next() -> None:
    assert first_line("E   AssertionError: boom\nE   more") == "boom"
    assert first_line("E   X: stopped:\nE     because") == "stopped: because"
    assert first_line("") == ""


def test_a_bundle_that_is_not_one_stops_the_gate_before_any_board_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [])
    monkeypatch.chdir(REPO)
    boards = tmp_path / "boards.yaml"
    boards.write_text("boards:\n  - name: v\n    kind: virtual\n")
    bundle = tmp_path / "bundle"
    (bundle / "files").mkdir(parents=True)
    (bundle / "files" / "main.py").write_text("print('not from a manifest')\n")
    out = tmp_path / "gate"
    args = ["gate", "--inventory", str(boards), "--out", str(out), "--release"]
    assert main([*args, str(bundle)]) == 2
    assert "release.json: missing: not a release bundle" in capsys.readouterr().err
    assert not out.exists()  # refused before the output folder was touched
    assert main([*args, str(tmp_path / "nowhere")]) == 2
    assert "no such bundle folder or .tar" in capsys.readouterr().err
