"""A pytest session reads the board's runtime once, records it (run.json, JUnit properties, the
report) and refuses a board that does not meet its pin: on the virtual board, real MicroPython."""

from __future__ import annotations

import json
import stat
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.evidence import junit_properties, run_record
from rig.evidence.run_record import RunRecord
from rig.report.load import load_runs
from rig.report.page import page
from rig.runtime.identity import MpyAbi, RuntimeIdentity
from tests.rig.inner_pytest import rig_args

# The ``inner`` fixture (tests/rig/conftest.py) builds on pytester.
pytest_plugins = ["pytester"]

ECHO_TEST = """
def test_echo(board, mqtt, rig_session):
    t = rig_session.settings.timeout
    mqtt.publish(board.config.echo_topic, b"rt")
    mqtt.wait_count(board.config.echo_topic, b"rt", 1, t)

def test_second(board):
    pass
"""


def bench(inner: pytest.Pytester, runtime: str) -> Path:
    path = inner.path / "boards.yaml"
    path.write_text(f"boards:\n  - name: vrt\n    kind: virtual\n    runtime: {runtime}\n", encoding="utf-8")
    return path


def recorded(inner: pytest.Pytester) -> RunRecord:
    return RunRecord.load(inner.path / "artifacts" / "run.json")


@pytest.mark.integration
def test_a_board_that_does_not_meet_its_pin_is_not_tested_and_both_versions_are_named(
    inner: pytest.Pytester,
) -> None:
    bench(inner, '{version: "0.9"}')
    inner.makepyfile(ECHO_TEST)
    result = inner.runpytest_subprocess(
        *rig_args(inner, "--rig-board=vrt", "--rig-inventory=boards.yaml"), timeout=120
    )
    # The first test stops the run as an infrastructure error; the second never runs.
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "vrt: runs another MicroPython than its pin" in out
    assert "boards.yaml:4 (boards[0].runtime)" in out
    assert "version: pinned 0.9, runs 1." in out
    assert "infrastructure failure: the rig, not the firmware, failed here" in out
    record = recorded(inner)
    # What it found is recorded even so, and the test says it was the rig's failure.
    assert record.runtime is not None and record.runtime.port == "linux"
    assert record.runtime_pin.startswith("version 0.9 (")
    assert [(t.name, t.outcome, t.infrastructure) for t in record.tests] == [("test_echo", "error", True)]
    assert f"runs {record.runtime.version}" in out
    # No firmware was put on a board on the wrong runtime.
    assert not (inner.path / "artifacts" / "session" / "deploy.json").exists()


@pytest.mark.integration
def test_the_runtime_is_read_once_and_recorded_everywhere_and_a_pinned_micropython_runs(
    inner: pytest.Pytester,
) -> None:
    """The pin's micropython: a wrapper that leaves a mark, then runs the installed unix port: the
    virtual board runs what the pin names, not the one found next to the rig."""
    real = Path(sys.executable).parent  # where the rig finds the installed unix port
    mark = inner.path / "wrapper-ran"
    wrapper = inner.path / "mp-next"
    wrapper.write_text(
        f'#!/bin/sh\necho "$$" >> {mark}\nexec {real / "micropython"} "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    bench(inner, "{version: '1', port: linux, variant: standard, micropython: ./mp-next}")
    inner.makepyfile(ECHO_TEST)
    junit = inner.path / "junit.xml"
    args = rig_args(inner, "--rig-board=vrt", "--rig-inventory=boards.yaml", f"--junitxml={junit}")
    result = inner.runpytest_subprocess(*args, timeout=180)
    result.assert_outcomes(passed=2)
    assert mark.exists(), "the pinned micropython never ran"
    record = recorded(inner)
    found = record.runtime
    assert found is not None and found.implementation == "micropython" and found.variant == "standard"
    assert record.runtime_pin.startswith("version 1, port linux, variant standard, micropython ")
    # Every test's record and JUnit testcase says which runtime it ran on.
    for test in record.tests:
        assert test.properties[junit_properties.RUNTIME_VERSION] == found.version
        assert test.properties[junit_properties.RUNTIME] == found.describe()
    cases = ET.parse(junit).getroot().iter("testcase")
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props[junit_properties.RUNTIME_PORT] == "linux"
        assert props[junit_properties.RUNTIME_PIN] == record.runtime_pin
    # The report's header and column say it too.
    shown = page(load_runs([inner.path / "artifacts"]), inner.path, "t", time.time())
    assert f"{found.version} (linux, standard) on vrt" == shown.header.runtimes
    assert json.loads((inner.path / "artifacts" / "run.json").read_text())["runtime"]["port"] == "linux"


def test_the_report_shows_a_column_per_runtime(tmp_path: Path) -> None:
    def run(name: str, version: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        identity = RuntimeIdentity("micropython", version, "", "linux", "m", "standard", MpyAbi.decode(2822))
        record = RunRecord(rig_version="0", started=1.0, finished=2.0, runtime=identity)
        record.board.name = name
        record.tests.append(run_record.TestRecord("t.py::t", "t", "passed"))
        record.save(folder / "run.json")
        return folder

    runs = load_runs([run("now", "1.24.0"), run("next", "1.25.0")])
    shown = page(runs, tmp_path, "t", 3.0)
    assert shown.column_runtimes == ["1.24.0 (linux, standard)", "1.25.0 (linux, standard)"]
    assert shown.header.runtimes == "1.24.0 (linux, standard) on now; 1.25.0 (linux, standard) on next"
    facts = dict(shown.runs[0].facts)
    assert "micropython 1.24.0, port linux, variant standard" in str(facts["runtime"])
    # A record from before the rig read runtimes still loads, and says it does not know.
    old = tmp_path / "old"
    old.mkdir()
    doc = json.loads((tmp_path / "now" / "run.json").read_text())
    del doc["runtime"], doc["runtime_pin"]
    (old / "run.json").write_text(json.dumps(doc))
    assert page(load_runs([old]), tmp_path, "t", 3.0).header.runtimes == "unknown"
