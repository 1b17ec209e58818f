"""The pytest plugin, driven through pytester: options, a real inner HIL run, a wedged board."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rig.deadline import Deadline
from rig.processes import is_running
from tests.rig.inner_pytest import rig_args

# The ``inner`` fixture (tests/rig/conftest.py) builds on pytester.
pytest_plugins = ["pytester"]


def assert_all_stopped(pytester: pytest.Pytester) -> None:
    recorded = json.loads((pytester.path / "artifacts" / "session" / "pids.json").read_text())
    pids = [pid for group in recorded.values() for pid in group]
    assert pids, "the session recorded no processes"
    alive = [pid for pid in pids if is_running(pid)]
    assert not alive, f"processes left running after the session: {alive} of {recorded}"


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--rig-loop-period=fast"], {}, "--rig-loop-period: loop-period: expected a number"),
        ([], {"RIG_TIMEOUT": "-1"}, "$RIG_TIMEOUT: timeout: must be greater than 0"),
        (["--rig-broker=hivemq"], {}, "--rig-broker: broker: expected auto, mosquitto, amqtt or external"),
        (["--rig-broker=external"], {}, "external needs --rig-broker-url"),
        (["--rig-broker-url=localhost:http"], {}, "localhost:http"),
    ],
)
def test_bad_options_are_usage_errors_naming_option_and_value(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    inner.makepyfile("def test_nothing(broker): pass")
    result = inner.runpytest_subprocess(*rig_args(inner), *args)
    assert result.ret != 0
    assert named in result.stderr.str() + result.stdout.str()


def test_options_fall_back_to_the_environment(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIG_LOOP_PERIOD", "0.25")
    inner.makepyfile("def test_period(rig_session):\n    assert rig_session.settings.loop_period == 0.25\n")
    result = inner.runpytest_subprocess(*rig_args(inner))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["rig: board=auto (virtual) broker=* loop-period=0.25s*"])


def test_an_inner_hil_run_leaves_logs_and_no_process(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        def test_echo(board, mqtt, serial_log, rig_session):
            t = rig_session.settings.timeout
            mqtt.publish(board.config.echo_topic, b"inner")
            mqtt.wait_count(board.config.echo_topic, b"inner", 3, t)
            serial_log.expect_event("received", t, hex=b"inner".hex())

        def test_fails_with_artifacts(board, serial_log):
            serial_log.expect("this line never comes", 0.5)
        """
    )
    result = inner.runpytest_subprocess(*rig_args(inner), timeout=180)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*timed out after 0.5s waiting for a line matching /this line never comes/*",
            "*full log: *serial.log*",
        ]
    )
    result.stdout.fnmatch_lines(["*- rig artifacts -*"])
    folder = inner.path / "artifacts" / "test_an_inner_hil_run_leaves_logs_and_no_process.py_test_echo"
    assert "inner" in (folder / "mqtt.jsonl").read_text()
    assert '"ev": "received"' in (folder / "serial.log").read_text()
    assert_all_stopped(inner)


def test_a_wedged_board_fails_within_its_timeout_and_nothing_hangs(inner: pytest.Pytester) -> None:
    """SIGSTOP the MicroPython process: the running test fails at its bound, the next attempt to
    reset finds the board unreachable, and the board is then skipped as broken."""
    inner.makepyfile(
        """
        import os, signal

        def test_1_wedged(board, mqtt, serial_log):
            os.kill(board.transport.firmware_pid, signal.SIGSTOP)
            mqtt.publish(board.config.echo_topic, b"after-stop")
            serial_log.expect_event("received", 2, hex=b"after-stop".hex())

        def test_2_reset_fails(board):
            board.soft_reset(timeout=2)

        def test_3_needs_a_running_board(board):
            pass

        def test_4_skipped(board):
            pass
        """
    )
    result = inner.runpytest_subprocess(*rig_args(inner, "--rig-timeout=2", "-rs"), timeout=120)
    # test_1 left its payload circulating, so test_2's board is restarted first (HIL isolation):
    # the wedged board is met there, in the set-up, and the two tests after it are skipped.
    result.assert_outcomes(failed=1, errors=1, skipped=2)
    result.stdout.fnmatch_lines(["*timed out after 2.0s waiting for serial event 'received'*"])
    result.stdout.fnmatch_lines(["*no REPL prompt within 2s after Ctrl-C*"])
    result.stdout.fnmatch_lines(["*board virtual is broken, not testing firmware on it*"])
    assert_all_stopped(inner)


def test_a_board_running_other_files_than_deployed_is_a_clear_failure(inner: pytest.Pytester) -> None:
    """The firmware reports the tree hash of its manifest at boot; a board whose files changed
    behind the rig's back (here: its manifest) fails the next test that restarts it."""
    inner.makepyfile(
        """
        import json

        from rig.board_choice import flash_dir

        def test_1_tamper(board, rig_session):
            manifest = flash_dir(rig_session.dir, rig_session.spec()) / "rig_manifest.json"
            doc = json.loads(manifest.read_text())
            doc["tree"] = "0" * 64
            manifest.write_text(json.dumps(doc))
            board.interrupt()  # the next test restarts the firmware

        def test_2_restart(board):
            pass
        """
    )
    result = inner.runpytest_subprocess(*rig_args(inner), timeout=120)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*runs firmware tree 000000000000 but tree * was deployed*"])


def test_sigint_mid_test_leaves_complete_logs_and_no_process(inner: pytest.Pytester, tmp_path: Path) -> None:
    """Ctrl-C on pytest in the middle of a test: the test's serial log and MQTT trace hold
    everything up to the kill, whole lines only, and every process the run started is gone."""
    seen = tmp_path / "seen.json"
    inner.makepyfile(
        f"""
        import json, pathlib, time
        from rig.deadline import Deadline

        def test_interrupted(board, mqtt, serial_log, rig_session):
            t = rig_session.settings.timeout
            mqtt.publish(board.config.echo_topic, b"before-kill")
            mqtt.wait_count(board.config.echo_topic, b"before-kill", 4, t)
            last = serial_log.expect_event("received", t, hex=b"before-kill".hex())
            pathlib.Path({str(seen)!r}).write_text(json.dumps({{
                "messages": len(mqtt.messages()), "serial_t": last["t"],
            }}))
            deadline = Deadline(60)
            while not deadline.expired:  # until the SIGINT comes
                time.sleep(0.05)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *rig_args(inner)],
        cwd=inner.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = Deadline(60)
        while not seen.exists() and not deadline.expired and process.poll() is None:
            time.sleep(0.05)  # another process writes the file: there is no event to wait on
        assert seen.exists(), "the inner test never got going"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt" in out
    folder = (
        inner.path
        / "artifacts"
        / "test_sigint_mid_test_leaves_complete_logs_and_no_process.py_test_interrupted"
    )
    at_kill = json.loads(seen.read_text())
    trace = [json.loads(line) for line in (folder / "mqtt.jsonl").read_text().splitlines()]
    assert len([m for m in trace if m["dir"] == "in"]) >= at_kill["messages"]
    assert sum(1 for m in trace if m["payload"] == "before-kill") >= 4
    serial = (folder / "serial.log").read_text()
    assert serial.endswith("\n") and '"hex": "6265666f72652d6b696c6c"' in serial
    assert (folder / "timeline.jsonl").read_text().endswith("\n")
    assert_all_stopped(inner)


# -- a setup mistake stops the run once -------------------------------------------------------

INVENTORY = """\
boards:
  - name: virtual
    kind: virtual
  - name: needs-secret
    kind: esp32
    match: {location: 9-9}
    network: {wifi_ssid: lab, wifi_password: "${RIG_TEST_PLUGIN_UNSET}"}
"""
# Three tests that each ask for the board: today each would have failed on its own.
THREE_BOARD_TESTS = "def test_a(board): pass\ndef test_b(board, mqtt): pass\ndef test_c(serial_log): pass\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rig-board=virtul"], "boards.yaml: boards: no board named 'virtul'; did you mean 'virtual'?"),
        (["--rig-board=needs-secret"], "environment variable RIG_TEST_PLUGIN_UNSET is not set"),
        (["--rig-inventory=broken.yaml"], "broken.yaml:3: YAML syntax"),
        (["--rig-firmware=no-such-tree"], "--rig-firmware: firmware: "),
        (
            ["--rig-lock-timeout=soon"],
            "--rig-lock-timeout: lock-timeout: expected a number of seconds, got 'soon'",
        ),
    ],
)
def test_a_setup_mistake_stops_pytest_once_with_one_line(
    inner: pytest.Pytester, args: list[str], message: str
) -> None:
    (inner.path / "boards.yaml").write_text(INVENTORY)
    (inner.path / "broken.yaml").write_text("boards:\n  - name: [x\n")
    inner.makepyfile(THREE_BOARD_TESTS)
    result = inner.runpytest_subprocess(*rig_args(inner), *args, timeout=60)
    output = result.stdout.lines + result.stderr.lines
    text = "\n".join(output)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert sum(message in line for line in output) == 1, text
    assert "Traceback" not in text and "_ test_" not in text, text
    assert len([line for line in output if line.strip()]) < 10, text
    assert not (inner.path / "artifacts" / "session" / "pids.json").exists(), "something was started"


def test_a_missing_firmware_tree_does_not_stop_a_run_that_needs_no_board(inner: pytest.Pytester) -> None:
    """The plugin is loaded in every pytest of the environment: only a run that asks for the
    board checks what the board needs."""
    inner.makepyfile("def test_plain(): pass\n")
    result = inner.runpytest_subprocess(*rig_args(inner), "--rig-firmware=no-such-tree", timeout=60)
    result.assert_outcomes(passed=1)


# -- the header ----------------------------------------------------------------------------


def _mosquitto_version() -> str:
    first = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=10).stdout
    return first.split()[2]  # "mosquitto version 2.0.11"


@pytest.mark.parametrize("broker", ["auto", "amqtt", "mosquitto"])
def test_the_header_names_the_broker_that_runs_and_its_version(inner: pytest.Pytester, broker: str) -> None:
    if broker != "amqtt" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed here")
    inner.makepyfile("def test_plain(): pass\n")
    result = inner.runpytest_subprocess(*rig_args(inner), f"--rig-broker={broker}", timeout=60)
    result.assert_outcomes(passed=1)
    expected = {
        "auto": f"broker=mosquitto {_mosquitto_version()} (auto) ",
        "mosquitto": f"broker=mosquitto {_mosquitto_version()} ",
        "amqtt": f"broker=amqtt {importlib.metadata.version('amqtt')} ",
    }[broker]
    header = [line for line in result.stdout.lines if line.startswith("rig: board=")]
    assert len(header) == 1 and expected in header[0], result.stdout.str()
