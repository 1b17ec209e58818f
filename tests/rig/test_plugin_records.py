"""What the plugin writes for other tools, through inner pytest runs (pytester): JUnit XML and
run.json carry typed facts (infrastructure failures, firmware dependencies), and a part that
will not stop at the end of the session is a test error there, not a traceback after them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from rig.evidence.run_record import RunRecord
from tests.rig.inner_pytest import REPO, rig_args

# The ``inner`` fixture (tests/rig/conftest.py) builds on pytester.
pytest_plugins = ["pytester"]


def recorded_args(pytester: pytest.Pytester) -> list[str]:
    """The rig's arguments, and a JUnit XML file for ``junit_cases`` to read back."""
    return rig_args(pytester, f"--junitxml={pytester.path / 'junit.xml'}")


def junit_cases(pytester: pytest.Pytester) -> dict[str, ET.Element]:
    root = ET.parse(pytester.path / "junit.xml").getroot()
    return {case.attrib["name"]: case for case in root.iter("testcase")}


def properties(case: ET.Element) -> dict[str, str]:
    return {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}


def run_record(pytester: pytest.Pytester) -> RunRecord:
    return RunRecord.load(pytester.path / "artifacts" / "run.json")


# A broker whose stop fails. A process that survives SIGKILL cannot be made here, so the real
# broker is stopped (no process is left behind) and its stop then raises, as one that would not
# die does (``BrokerWouldNotStop`` is a ``BrokerError``).
REFUSING_BROKER = """
import rig.broker.managed
from rig.errors import BrokerError

pytest_plugins = ["rig.plugin"]
_real_stop = rig.broker.managed.ManagedBroker.stop


def _refusing_stop(self, timeout=5.0):
    _real_stop(self, timeout)
    raise BrokerError(f"the {self.kind} broker refused to stop (the test made it so)")


rig.broker.managed.ManagedBroker.stop = _refusing_stop
"""


def test_a_broker_that_refuses_to_stop_is_an_error_in_junit(inner: pytest.Pytester) -> None:
    inner.makeconftest(REFUSING_BROKER)
    inner.makepyfile("def test_uses_the_broker(broker):\n    assert broker.port\n")
    result = inner.runpytest_subprocess(*recorded_args(inner), timeout=120)
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-2000:]  # not INTERNALERROR
    case = junit_cases(inner)["test_uses_the_broker"]
    errors = case.findall("error")
    assert errors, ET.tostring(case, encoding="unicode")
    assert "refused to stop" in errors[0].attrib["message"] and "BrokerError" in errors[0].attrib["message"]
    assert properties(case).get("infrastructure") == "true"
    (record,) = run_record(inner).tests
    assert record.outcome == "error" and record.infrastructure
    assert "refused to stop" in record.message


def test_infrastructure_failures_carry_a_junit_property(inner: pytest.Pytester) -> None:
    """The gate tells the rig's failures from the firmware's by this property, not by reading
    class names out of messages; a firmware failure has none."""
    inner.makepyfile(
        """
        import pytest
        from rig.errors import BoardUnreachable

        def test_rig_failed():
            raise BoardUnreachable("the port vanished (the test made it so)")

        @pytest.fixture
        def unreachable():
            raise BoardUnreachable("no REPL (the test made it so)")

        def test_rig_failed_in_setup(unreachable):
            pass

        def test_firmware_failed():
            assert 1 + 1 == 3, "BoardUnreachable in a message is not an infrastructure failure"
        """
    )
    result = inner.runpytest_subprocess(*recorded_args(inner), timeout=120)
    result.assert_outcomes(failed=2, errors=1)
    cases = junit_cases(inner)
    assert properties(cases["test_rig_failed"]).get("infrastructure") == "true"
    assert properties(cases["test_rig_failed_in_setup"]).get("infrastructure") == "true"
    assert "infrastructure" not in properties(cases["test_firmware_failed"])
    # Once per test, however many phases saw it.
    names = [p.attrib["name"] for p in cases["test_rig_failed"].iter("property")]
    assert names.count("infrastructure") == 1


def test_the_locked_dependency_versions_are_in_run_json_and_junit(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        def test_echo(board, mqtt, rig_session):
            mqtt.publish(board.config.echo_topic, b"deps")
            mqtt.wait_count(board.config.echo_topic, b"deps", 2, rig_session.settings.timeout)

        def test_second(board):
            pass
        """
    )
    result = inner.runpytest_subprocess(*recorded_args(inner), timeout=180)
    result.assert_outcomes(passed=2)
    wanted = {name for name, _ in json.loads((REPO / "firmware" / "package.json").read_text())["deps"]}
    firmware = run_record(inner).firmware
    installed = {d.package: d for d in firmware.dependencies}
    assert set(installed) == wanted, firmware
    for dep in installed.values():
        assert dep.version and dep.version != "latest" and dep.source, dep
    summary = firmware.dependency_summary()
    for name, case in junit_cases(inner).items():
        assert properties(case).get("firmware_dependencies") == summary, name
    for dep in installed.values():
        assert f"{dep.package} {dep.version}" in summary
    deploy = json.loads((inner.path / "artifacts" / "session" / "deploy.json").read_text())
    assert {d["package"]: d["version"] for d in deploy["dependencies"]} == {
        d.package: d.version for d in installed.values()
    }
