"""One rerun on a real inner HIL run (virtual board, real broker): the test's own fixtures are
set up again, the session's (broker, board) stay up, and run.json and JUnit say FLAKY."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.rig.inner_pytest import rig_args
from tests.rig.test_plugin import assert_all_stopped

pytest_plugins = ["pytester"]


def test_an_infrastructure_failure_on_a_board_reruns_and_is_flaky(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_hil="""
        from rig.errors import BrokerError

        runs = []


        def test_echo_after_a_hiccup(board, mqtt, rig_session):
            runs.append(mqtt)
            t = rig_session.settings.timeout
            mqtt.publish(board.config.echo_topic, b"hiccup")
            mqtt.wait_count(board.config.echo_topic, b"hiccup", 3, t)
            if len(runs) == 1:
                raise BrokerError("the broker dropped the host client")
            assert runs[0] is not runs[1], "the rerun got the first run's client"


        def test_next(board, mqtt, rig_session):
            mqtt.publish(board.config.echo_topic, b"next")
            mqtt.wait_count(board.config.echo_topic, b"next", 3, rig_session.settings.timeout)
        """
    )
    result = inner.runpytest_subprocess(*rig_args(inner), "--junitxml=junit.xml", timeout=180)
    assert result.parseoutcomes() == {"passed": 1, "flaky": 1}, result.stdout.str()
    case = next(
        c
        for c in ET.parse(inner.path / "junit.xml").iter("testcase")
        if c.get("name") == "test_echo_after_a_hiccup"
    )
    [flaky] = case.findall("flakyFailure")
    assert flaky.get("type") == "rig.errors.BrokerError"
    run = json.loads((inner.path / "artifacts" / "run.json").read_text())
    [record] = [t for t in run["tests"] if t["name"] == "test_echo_after_a_hiccup"]
    assert record["outcome"] == "passed"
    assert record["properties"]["flaky"] == "failed, then passed when run again"
    assert_all_stopped(inner)


def test_under_xdist_the_controller_writes_the_flaky_evidence(inner: pytest.Pytester) -> None:
    """The rerun happens in a worker; JUnit and the summary are the controller's: the evidence
    travels on the reports."""
    inner.makepyfile(
        test_x="""
        from rig.errors import BoardUnreachable

        runs = []


        def test_hiccup():
            runs.append(1)
            if len(runs) == 1:
                raise BoardUnreachable("port vanished")


        def test_other():
            pass
        """
    )
    result = inner.runpytest_subprocess(*rig_args(inner), "-n", "2", "--junitxml=junit.xml", timeout=120)
    assert result.parseoutcomes() == {"passed": 1, "flaky": 1}, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["FLAKY: failed, then passed: test_x.py::test_hiccup (first failure: port vanished)"]
    )
    [flaky] = ET.parse(inner.path / "junit.xml").iter("flakyFailure")
    assert flaky.get("message") == "port vanished"
