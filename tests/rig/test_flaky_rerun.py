"""One rerun (rig.flaky): a failure of the rig's own (an InfrastructureError) runs once more,
and a test that fails then passes is FLAKY, with Surefire's <flakyFailure> in JUnit; a firmware
failure is never rerun."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Each test fails on its first run only (a file marks that the first run happened), the way an
# unplugged-and-replugged port or a broker that came up late does.
FLAKY = """
from pathlib import Path

import pytest

from rig.errors import BoardUnreachable

runs = {"infra": 0, "firmware": 0, "always": 0}


@pytest.fixture
def counted(request):
    yield
    Path(f"torn-{request.node.name}").write_text("x")


def test_infra(counted):
    runs["infra"] += 1
    print(f"run {runs['infra']}")
    if runs["infra"] == 1:
        raise BoardUnreachable("port /dev/ttyACM0 vanished")


def test_firmware():
    runs["firmware"] += 1
    assert runs["firmware"] > 1, "echo never came back"


def test_always():
    runs["always"] += 1
    raise BoardUnreachable(f"port vanished (run {runs['always']})")
"""


def _case(xml: Path, name: str) -> ET.Element:
    return next(c for c in ET.parse(xml).iter("testcase") if c.get("name") == name)


def test_an_infrastructure_failure_reruns_once_and_shows_as_flaky_in_junit(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_f=FLAKY)
    result = inner.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml", "-v")
    # test_infra: flaky (not a pass); test_firmware: failed, not rerun; test_always: failed twice.
    assert result.parseoutcomes() == {"failed": 2, "flaky": 1}
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_f.py::test_infra FLAKY*",
            "*rig reruns*",
            "FLAKY: failed, then passed: test_f.py::test_infra (first failure: port /dev/ttyACM0 vanished)",
            "failed again: test_f.py::test_always (first failure: port vanished (run 1))",
        ]
    )
    xml = inner.path / "junit.xml"
    infra = _case(xml, "test_infra")
    assert infra.find("failure") is None and infra.find("error") is None
    [flaky] = infra.findall("flakyFailure")
    assert flaky.get("type") == "rig.errors.BoardUnreachable"
    assert flaky.get("message") == "port /dev/ttyACM0 vanished"
    assert "raise BoardUnreachable" in (flaky.findtext("stackTrace") or "")
    assert flaky.findtext("system-out") == "run 1\n"
    properties = {p.get("name"): p.get("value") for p in infra.iter("property")}
    assert properties["flaky"] == "failed, then passed when run again"
    # The rerun set the test's own fixtures up again, after tearing them down.
    assert (inner.path / "torn-test_infra").exists()

    firmware = _case(xml, "test_firmware")
    assert firmware.find("failure") is not None
    assert firmware.find("flakyFailure") is None and firmware.find("rerunFailure") is None

    always = _case(xml, "test_always")
    assert always.find("failure") is not None
    [rerun] = always.findall("rerunFailure")
    assert "run 1" in (rerun.get("message") or "")
    assert "run 2" in (always.find("failure").get("message") or "")  # type: ignore[union-attr]


def test_a_quarantine_entry_may_ask_for_the_rerun_of_a_firmware_failure(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_f=FLAKY)
    later = (datetime.date.today() + datetime.timedelta(days=9)).isoformat()
    (inner.path / "quarantine.yaml").write_text(
        f"quarantine:\n  - test: test_f.py::test_firmware\n    reason: slow echo\n    expires: {later}\n"
        "    rerun: true\n"
    )
    result = inner.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml", "-k", "firmware")
    assert result.parseoutcomes() == {"flaky": 1, "deselected": 2}
    assert result.ret == pytest.ExitCode.OK
    assert _case(inner.path / "junit.xml", "test_firmware").find("flakyFailure") is not None


def test_no_rerun_on_a_broken_board(inner: pytest.Pytester) -> None:
    """A strategy that failed marks its board broken and later tests are skipped: a rerun there
    would turn the failure into a skip. The plugin says when (rig.plugin._broken_board)."""
    inner.makepyfile(
        test_b="""
        import pytest

        from rig.errors import BoardUnreachable
        from rig.flaky import NO_RERUN_KEY

        runs = []


        def test_broken(request):
            request.config.stash[NO_RERUN_KEY] = lambda: "port vanished"
            runs.append(1)
            if len(runs) == 1:
                raise BoardUnreachable("port vanished")
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not run again: the board is broken (port vanished)*"])


def test_control_bytes_of_a_serial_log_stay_valid_xml(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_c="""
        from rig.errors import BoardUnreachable

        runs = []


        def test_raw_repl():
            runs.append(1)
            if len(runs) == 1:
                print("raw REPL; CTRL-B to exit\\x04\\x01>")
                raise BoardUnreachable("no answer")
        """
    )
    inner.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml")
    [flaky] = ET.parse(inner.path / "junit.xml").iter("flakyFailure")
    assert flaky.findtext("system-out") == "raw REPL; CTRL-B to exit#x04#x01>\n"


def test_the_first_runs_teardown_error_is_kept_with_its_failure(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_t="""
        import pytest

        from rig.errors import BrokerError

        runs = []


        @pytest.fixture
        def client():
            yield
            if len(runs) == 1:
                raise RuntimeError("client would not close")


        def test_hiccup(client):
            runs.append(1)
            if len(runs) == 1:
                raise BrokerError("broker dropped")
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml")
    assert result.parseoutcomes() == {"flaky": 1}
    messages = [f.get("message") for f in ET.parse(inner.path / "junit.xml").iter("flakyFailure")]
    assert messages == ["broker dropped", "client would not close"]
