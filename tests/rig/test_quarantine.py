"""The quarantine file (rig.quarantine, rig.flaky): a quarantined test runs and is reported but
does not fail the run; an expired entry warns, naming it, and shields nothing; a bad file is
named with its entry and key."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.errors import ConfigError
from rig.quarantine import load

pytest_plugins = ["pytester"]

FAILING = """
def test_known_bad():
    assert 1 == 2, "the broker restart races the keepalive"


def test_fine():
    pass
"""
LATER = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
EARLIER = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()


def _quarantine(inner: pytest.Pytester, expires: str, extra: str = "") -> None:
    (inner.path / "quarantine.yaml").write_text(
        "quarantine:\n"
        "  - test: test_q.py::test_known_*\n"
        "    reason: races the keepalive (#42)\n"
        f"    expires: {expires}\n{extra}",
        encoding="utf-8",
    )


def _properties(xml: Path, name: str) -> dict[str, str]:
    case = next(c for c in ET.parse(xml).iter("testcase") if c.get("name") == name)
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_a_quarantined_failure_is_reported_but_does_not_fail_the_run(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    _quarantine(inner, LATER)
    result = inner.runpytest("-p", "no:cacheprovider", "-rx", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["XFAIL test_q.py::test_known_bad - quarantined: races the keepalive (#42)*"])
    assert _properties(inner.path / "junit.xml", "test_known_bad") == {
        "quarantined": "races the keepalive (#42)",
        "quarantined_outcome": "failed",
    }
    assert "quarantined" not in _properties(inner.path / "junit.xml", "test_fine")


def test_without_the_file_the_same_test_fails_the_run(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_an_expired_entry_warns_naming_it_and_shields_nothing(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    _quarantine(inner, EARLIER)
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            f"*rig quarantine entry expired, it no longer shields the test: *quarantine.yaml entry 1: "
            f"test_q.py::test_known_* (expired {EARLIER}: races the keepalive (#42))*"
        ]
    )


def test_an_entry_for_another_board_shields_nothing(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    _quarantine(inner, LATER, "    board: bench-9\n")
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_a_file_named_by_option_is_used_and_a_missing_one_is_a_usage_error(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    _quarantine(inner, LATER)
    (inner.path / "quarantine.yaml").rename(inner.path / "lab-q.yaml")
    result = inner.runpytest("-p", "no:cacheprovider", "--rig-quarantine=lab-q.yaml")
    result.assert_outcomes(passed=1, xfailed=1)
    missing = inner.runpytest("-p", "no:cacheprovider", "--rig-quarantine=nope.yaml")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*nope.yaml: quarantine: no such file*"])


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ("  - test: t.py::x\n    reason: r\n", "expires", "is required"),
        ("  - test: t.py::x\n    expires: 2027-01-01\n", "reason", "is required"),
        (
            "  - test: t.py::x\n    reason: r\n    expires: soon\n",
            "expires",
            "is a date YYYY-MM-DD, not 'soon'",
        ),
        (
            "  - test: t.py::x\n    reason: r\n    expires: 2027-01-01\n    owner: me\n",
            "owner",
            "unknown key",
        ),
        (
            "  - test: t.py::x\n    reason: r\n    expires: 2027-01-01\n    rerun: maybe\n",
            "rerun",
            "is true or false",
        ),
    ],
)
def test_a_bad_entry_is_named_with_file_entry_and_key(
    tmp_path: Path, entry: str, key: str, problem: str
) -> None:
    path = tmp_path / "quarantine.yaml"
    path.write_text("quarantine:\n  - test: t.py::ok\n    reason: r\n    expires: 2027-01-01\n" + entry)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path} entry 2: {key}: {problem}")


def test_a_bad_file_stops_the_run_naming_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    (inner.path / "quarantine.yaml").write_text("quarantine:\n  - test: x\n    reason: r\n")
    result = inner.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*quarantine.yaml entry 1: expires: is required*"])


def test_an_entry_for_this_board_shields_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    _quarantine(inner, LATER, "    board: virtual\n")
    result = inner.runpytest("-p", "no:cacheprovider", "--rig-board=virtual")
    result.assert_outcomes(passed=1, xfailed=1)


def test_a_rerun_that_fails_again_stays_quarantined_with_its_rerun_failure(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_q=FAILING)
    _quarantine(inner, LATER, "    rerun: true\n")
    result = inner.runpytest("-p", "no:cacheprovider", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, xfailed=1)
    case = next(
        c for c in ET.parse(inner.path / "junit.xml").iter("testcase") if c.get("name") == "test_known_bad"
    )
    assert case.find("skipped") is not None and case.find("flakyFailure") is None
    [rerun] = case.findall("rerunFailure")
    assert rerun.get("type") == "AssertionError"
    assert rerun.get("message") == "the broker restart races the keepalive"
    assert _properties(inner.path / "junit.xml", "test_known_bad")["rerun"] == "failed, and failed again"
