"""HIL tests are isolated from each other: what one test left circulating is gone before the
next test that uses the board (rig.plugin's ``board`` fixture restarts the firmware), and a test
that injected nothing costs the next one no restart."""

from __future__ import annotations

import pytest

from tests.rig.inner_pytest import rig_args

pytest_plugins = ["pytester"]

SUITE = """
import time


def test_leaves_a_payload_circulating(board, mqtt, rig_session):
    mqtt.publish(board.config.echo_topic, b"left behind")
    mqtt.wait_count(board.config.echo_topic, b"left behind", 3, rig_session.settings.timeout)


def test_starts_from_the_firmwares_hello_only(board, mqtt, rig_session):
    since = time.time()
    # Three hellos: two whole loop turns, in each of which a leftover would come back too.
    mqtt.wait_count(board.config.echo_topic, b"hello", 3, rig_session.settings.timeout, since=since)
    left = {m.payload for m in mqtt.messages(board.config.echo_topic)} - {b"hello"}
    assert not left, f"an earlier test's payloads still circulate: {left}"


def test_after_a_clean_test_the_firmware_runs_on(board, serial_log):
    serial_log.note("checked: no restart")
"""


def test_a_payload_left_circulating_is_gone_before_the_next_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_isolation=SUITE)
    result = inner.runpytest_subprocess(*rig_args(inner), timeout=180)
    result.assert_outcomes(passed=3)
    artifacts = inner.path / "artifacts"
    left = (artifacts / "test_isolation.py_test_leaves_a_payload_circulating" / "serial.log").read_text()
    assert "left circulating [b'left behind']: the next test restarts the firmware first" in left
    restarted = (
        artifacts / "test_isolation.py_test_starts_from_the_firmwares_hello_only" / "serial.log"
    ).read_text()
    assert "soft reboot" in restarted
    untouched = (
        artifacts / "test_isolation.py_test_after_a_clean_test_the_firmware_runs_on" / "serial.log"
    ).read_text()
    assert "soft reboot" not in untouched
