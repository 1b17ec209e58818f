"""--rig-repeat N (rig.flaky): each selected test runs N times and its pass rate is reported, in
the terminal summary and as a JUnit property."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

# One test fails every second run: the flake a single nightly run may or may not show.
TESTS = """
runs = {"n": 0}


def test_sometimes():
    runs["n"] += 1
    assert runs["n"] % 2, "echo lost"


def test_steady():
    pass
"""


def test_repeat_reports_each_tests_pass_rate(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_r=TESTS)
    result = inner.runpytest("-p", "no:cacheprovider", "--rig-repeat=3", "--junitxml=junit.xml")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*rig repeat: pass rates*",
            "2/3 (66%) test_r.py::test_sometimes",
            "3/3 (100%) test_r.py::test_steady",
        ]
    )
    cases = list(ET.parse(inner.path / "junit.xml").iter("testcase"))
    assert [c.get("name") for c in cases] == ["test_sometimes"] * 3 + ["test_steady"] * 3
    rates = {
        c.get("name"): p.get("value")
        for c in cases
        for p in c.iter("property")
        if p.get("name") == "pass_rate"
    }
    assert rates == {"test_sometimes": "2/3", "test_steady": "3/3"}


def test_repeat_is_a_count(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_r=TESTS)
    result = inner.runpytest("-p", "no:cacheprovider", "--rig-repeat=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rig-repeat: repeat: is a count of runs, 1 or more, not '0'*"])
