"""``rig gate``: the suite on every board present, classified, retried, merged, one verdict.

The gate runs in-process (``main([...])``) so that the USB board of the inventory can be absent
through the port-listing seam; each board run is a real pytest subprocess on the virtual board.
Most cases use a tiny generated suite to stay fast; one runs the repo's HIL suite end to end.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import gate
from rig.cli import main
from rig.discovery import ports as discovery_ports
from rig.evidence.run_audit import VERDICT_NAME
from rig.processes import is_running
from tests.rig.gate_inventory import write_gate_inventory
from tests.rig.processes_left import processes_naming

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
RIG_VARIABLES = (
    "RIG_BOARD",
    "RIG_BROKER",
    "RIG_BROKER_URL",
    "RIG_FIRMWARE",
    "RIG_INVENTORY",
    "RIG_ARTIFACTS",
    "RIG_MICROPYTHON",
    "RIG_LOOP_PERIOD",
    "RIG_DEPS_CACHE",
    "RIG_OFFLINE",
)
MISSING_LINE = (
    "bench-esp: MISSING (vid:pid 10c4:ea60, serial_number 0001 not plugged in) — fails the gate (--strict)"
)
ECHO_SUITE = """\
import time


def test_echo_comes_back(board, mqtt, rig_session):
    since = time.time()
    mqtt.publish(board.config.echo_topic, b"ping")
    mqtt.wait_count(board.config.echo_topic, b"ping", 2, rig_session.settings.timeout, since=since)


def test_left_out_by_k():
    raise AssertionError("-k after -- should have deselected this")
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No settings from the caller's shell, locks of our own, the rig importable in the board
    runs, and no USB board plugged in. Afterwards, no process of this test may be left."""
    for name in RIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("RIG_TIMEOUT", "5")
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [])
    monkeypatch.chdir(REPO)
    yield
    assert leftovers(tmp_path) == []


def leftovers(tmp_path: Path) -> list[str]:
    """Processes still running whose command line names this test's folder (the virtual board,
    the broker, a hung test's children)."""
    return [f"{pid}: {cmdline}" for pid, cmdline in processes_naming(str(tmp_path)).items()]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    return write_gate_inventory(tmp_path)


def make_suite(tmp_path: Path, body: str) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (suite / "test_tiny.py").write_text(textwrap.dedent(body))
    return suite


def gate_args(inventory: Path, out: Path, *more: str, firmware: Path = FIRMWARE) -> list[str]:
    return ["gate", "--firmware", str(firmware), "--inventory", str(inventory), "--out", str(out), *more]


def suites(junit: Path) -> dict[str, ET.Element]:
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    return {s.get("name", ""): s for s in root.findall("testsuite")}


def report_module_exists() -> bool:
    try:
        from rig.report import write_html_report  # noqa: F401
    except ImportError:
        return False
    return True


# -- end to end -----------------------------------------------------------------------------------


def test_whole_hil_suite_passes_and_absent_usb_board_is_skipped(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate"
    code = main(gate_args(inventory, out, "--timeout", "300"))
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    lines = printed.out.splitlines()
    hil_tests = len(json.loads((out / "virtual" / "run.json").read_text())["tests"])
    assert hil_tests >= 10
    assert f"virtual: PASS {hil_tests} passed" in lines, printed.out
    assert "bench-esp: SKIPPED not present (vid:pid 10c4:ea60, serial_number 0001 not plugged in)" in lines
    assert any(line.startswith("GATE: PASS") and "junit.xml" in line for line in lines), printed.out
    assert "[1/1] virtual: running" in printed.out  # progress before the verdicts

    merged = suites(out / "junit.xml")
    # The tests of several boards need two boards; one runs (rig.gate.several): skipped, saying so.
    assert list(merged) == ["virtual", "bench-esp", "several-boards"]
    assert "several boards: SKIPPED needed boards a=any, b=any (2 boards)" in printed.out
    virtual = merged["virtual"]
    assert virtual.get("tests") == str(hil_tests) and virtual.get("failures") == "0"
    cases = virtual.findall("testcase")
    assert len(cases) == hil_tests
    # Each testcase keeps the properties the plugin gave it.
    assert {p.get("name") for p in cases[0].iter("property")} >= {"board", "firmware_tree_hash"}
    absent = merged["bench-esp"].findall("testcase")
    assert [c.get("name") for c in absent] == ["board-present"]
    skipped = absent[0].find("skipped")
    assert skipped is not None and "vid:pid 10c4:ea60, serial_number 0001" in skipped.get("message", "")

    assert (out / "virtual" / "run.json").is_file()
    assert not (out / "virtual-retry1").exists()
    if report_module_exists():
        assert (out / "report.html").is_file()
        assert f"report {out / 'report.html'}" in printed.out
    else:
        assert "report.html not written" in printed.err


# -- tiny suites ----------------------------------------------------------------------------------


def test_pytest_args_after_double_dash_and_board_subset(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = make_suite(tmp_path, ECHO_SUITE)
    out = tmp_path / "gate"
    code = main(gate_args(inventory, out, "--suite", str(suite), "--boards", "virtual", "--", "-k", "echo"))
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    assert "virtual: PASS 1 passed" in printed.out.splitlines()
    assert "bench-esp" not in printed.out  # not asked for: neither run nor reported missing
    assert list(suites(out / "junit.xml")) == ["virtual"]


def test_broken_firmware_fails_the_gate_and_is_not_retried(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, firmware)
    echo_client = firmware / "echo_client.py"
    original = "if not self.echo(topic, msg):"
    source = echo_client.read_text()
    assert source.count(original) == 1, "the mutant no longer applies to firmware/echo_client.py"
    echo_client.write_text(source.replace(original, "if not self.echo(topic + b'/elsewhere', msg):"))
    suite = make_suite(tmp_path, ECHO_SUITE)
    out = tmp_path / "gate"

    code = main(gate_args(inventory, out, "--suite", str(suite), "--", "-k", "echo", firmware=firmware))
    printed = capsys.readouterr()
    assert code == 1, printed.out + printed.err
    assert "virtual: FAIL firmware: 1 failed (test_echo_comes_back)" in printed.out.splitlines()
    assert any(line.startswith("GATE: FAIL (firmware)") for line in printed.out.splitlines())
    assert not (out / "virtual-retry1").exists()
    failure = suites(out / "junit.xml")["virtual"].find("testcase/failure")
    assert failure is not None


def test_infrastructure_failure_is_retried_once(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = make_suite(
        tmp_path,
        """\
        from rig.errors import BoardUnreachable


        def test_board_goes_away():
            raise BoardUnreachable("port /dev/ttyUSB9 vanished")
        """,
    )
    out = tmp_path / "gate"
    code = main(gate_args(inventory, out, "--suite", str(suite)))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    lines = printed.out.splitlines()
    verdict = next(line for line in lines if line.startswith("virtual: "))
    assert verdict.startswith("virtual: FAIL infrastructure: port /dev/ttyUSB9 vanished (retried once;")
    assert any(line.startswith("GATE: FAIL (infrastructure)") for line in lines)
    assert "[1/1] virtual: retrying" in printed.out
    # The first attempt stays as evidence; the retry's result is the one that counts.
    assert (out / "virtual" / "run.json").is_file()
    assert (out / "virtual-retry1" / "run.json").is_file()
    assert not (out / "virtual-retry2").exists()
    properties = suites(out / "junit.xml")["virtual"].find("properties")
    assert properties is not None
    props = {p.get("name"): p.get("value") for p in properties}
    assert props["attempts"] == "2" and props["run_folder"] == "virtual-retry1"
    # Without run.json, the plugin's JUnit still tells an infrastructure failure, by its type.
    (out / "virtual" / "run.json").unlink()
    from_junit = gate.Attempt("virtual", out / "virtual", 0, returncode=1, duration=1.0)
    gate.classify(from_junit, timeout=60)
    assert from_junit.source == "junit.xml"
    assert [f.reason for f in from_junit.infrastructure_failures] == ["port /dev/ttyUSB9 vanished"]
    assert from_junit.firmware_failures == []


def test_timeout_kills_the_whole_run_and_counts_as_infrastructure(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test ignores the polite SIGINT, so the group has to be killed; keep the graces short.
    monkeypatch.setattr(gate.supervise, "INTERRUPT_GRACE", 0.5)
    monkeypatch.setattr(gate.supervise, "TERM_GRACE", 0.5)
    pids = tmp_path / "pids.txt"
    monkeypatch.setenv("GATE_PIDS", str(pids))
    suite = make_suite(
        tmp_path,
        f"""\
        import os, signal, subprocess, time


        def test_hangs():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            child = subprocess.Popen(["sleep", "300", "{tmp_path}"])
            with open(os.environ["GATE_PIDS"], "a") as f:
                f.write(f"{{os.getpid()}} {{child.pid}}\\n")
            time.sleep(300)
        """,
    )
    out = tmp_path / "gate"
    code = main(gate_args(inventory, out, "--suite", str(suite), "--timeout", "2", "--boards", "virtual"))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    assert "virtual: FAIL infrastructure: timed out after 2s, killed (retried once;" in printed.out
    assert (out / "virtual-retry1" / "pytest.log").is_file()
    started = [int(pid) for line in pids.read_text().splitlines() for pid in line.split()]
    assert len(started) == 4  # pytest and its sleep child, twice
    assert [pid for pid in started if is_running(pid)] == []
    board_run = suites(out / "junit.xml")["virtual"].find("testcase[@name='board-run']/error")
    assert board_run is not None and "timed out after 2s" in board_run.get("message", "")


def test_strict_fails_the_gate_on_a_missing_board(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = make_suite(tmp_path, "def test_ok():\n    pass\n")
    out = tmp_path / "gate"
    code = main(gate_args(inventory, out, "--suite", str(suite), "--strict"))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    lines = printed.out.splitlines()
    assert "virtual: PASS 1 passed" in lines
    assert MISSING_LINE in lines
    assert any(line.startswith("GATE: FAIL (infrastructure)") for line in lines)
    failure = suites(out / "junit.xml")["bench-esp"].find("testcase[@name='board-present']/failure")
    assert failure is not None and "serial_number 0001" in failure.get("message", "")


# -- usage and configuration ---------------------------------------------------------------------


def test_usage_and_config_errors_exit_2(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate"
    with pytest.MonkeyPatch.context() as here:  # no --firmware: ./firmware, as every command
        here.chdir(tmp_path)
        assert main(["gate", "--inventory", str(inventory), "--out", str(out)]) == 2
    assert "argument --firmware: firmware is not a directory" in capsys.readouterr().err
    assert main(gate_args(inventory, out, "--boards", "virtual,nonesuch")) == 2
    assert "no board named 'nonesuch'" in capsys.readouterr().err
    assert main(gate_args(inventory, out, "--timeout", "0")) == 2
    assert main(gate_args(inventory, out, "--firmware", str(tmp_path / "nowhere"))) == 2
    assert not out.exists()


def test_out_folder_not_written_by_the_gate_is_never_emptied(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(gate_args(inventory, precious)) == 2
    assert "not written by rig gate" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"


# -- classification from what a run left -------------------------------------------------------


def audited_clean(folder: Path) -> Path:
    """A run folder the gate's secrets audit found clean (a folder without a verdict fails:
    test_gate_audit)."""
    folder.mkdir()
    (folder / VERDICT_NAME).write_text('{"clean": true, "searched": 3}')
    return folder


def test_classification_falls_back_to_junit_and_exit_code(tmp_path: Path) -> None:
    folder = audited_clean(tmp_path / "run")
    (folder / "junit.xml").write_text(
        """<testsuites><testsuite name="pytest" tests="3">
        <testcase classname="t" name="test_fw">
          <failure message="AssertionError: no echo">x</failure>
        </testcase>
        <testcase classname="t" name="test_port">
          <properties><property name="infrastructure" value="true"/></properties>
          <error message='failed on setup with "rig.errors.BoardUnreachable: gone"'>x</error>
        </testcase>
        <testcase classname="t" name="test_ok"/>
        </testsuite></testsuites>"""
    )
    attempt = gate.Attempt("virtual", folder, 0, returncode=1, duration=1.0)
    gate.classify(attempt, timeout=60)
    assert attempt.source == "junit.xml"
    assert [f.name for f in attempt.firmware_failures] == ["test_fw"]
    assert [f.reason for f in attempt.infrastructure_failures] == ["gone"]
    assert attempt.run_problems == ["no run.json: the rig plugin did not record the run"]
    assert attempt.category == gate.FIRMWARE  # both: a firmware failure is never retried

    empty = audited_clean(tmp_path / "crashed")
    crashed = gate.Attempt("virtual", empty, 0, returncode=-9, duration=1.0)
    gate.classify(crashed, timeout=60)
    assert crashed.source == "exit code"
    assert crashed.category == gate.INFRASTRUCTURE
    assert crashed.infrastructure_reason == "pytest died of SIGKILL"


def test_junit_classification_goes_by_the_property_not_the_message(tmp_path: Path) -> None:
    """A message that merely names an infrastructure class is not a verdict: only the
    ``infrastructure`` property the plugin writes (from the exception's type) is."""
    folder = audited_clean(tmp_path / "run")
    (folder / "junit.xml").write_text(
        """<testsuite name="pytest" tests="2">
        <testcase classname="t" name="test_says_unreachable">
          <failure message="AssertionError: expected rig.errors.BoardUnreachable: gone">x</failure>
        </testcase>
        <testcase classname="t" name="test_marked">
          <properties><property name="infrastructure" value="true"/></properties>
          <failure message="AssertionError: the plugin said so">x</failure>
        </testcase>
        </testsuite>"""
    )
    attempt = gate.Attempt("virtual", folder, 0, returncode=1, duration=1.0)
    gate.classify(attempt, timeout=60)
    assert [f.name for f in attempt.firmware_failures] == ["test_says_unreachable"]
    assert [f.name for f in attempt.infrastructure_failures] == ["test_marked"]
    assert attempt.infrastructure_failures[0].reason == "the plugin said so"
