"""A CI run fails on a skip nobody expected, naming it; the skips the rig expects pass
(rig.skip_policy)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPS = """
import pytest


def test_needs_mosquitto():
    pytest.skip("mosquitto is not installed")


def test_amqtt_keepalive():
    pytest.skip("the amqtt broker never drops a silent client: a missing ping cannot show")


def test_contract():
    pytest.skip("not checked: the firmware declares no status topic")


def test_mutation_case_of_the_other_broker():
    pytest.skip("this case is about mosquitto (its args say so), not the chosen amqtt")


@pytest.mark.expected_skip("only on a board with a relay")
def test_marked():
    pytest.skip("no relay on this bench")


@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False


def test_passes():
    pass
"""


def test_under_ci_an_unexpected_skip_fails_the_run_naming_it(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    inner.makepyfile(test_skips=SKIPS)
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=5, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*rig: unexpected skips fail this run*",
            "*test_needs_mosquitto: mosquitto is not installed",
            "1 unexpected skip(s)*",
        ]
    )
    expected_skips = ("test_amqtt_keepalive", "test_contract", "test_mutation_case_of_the_other_broker")
    for expected in (*expected_skips, "test_marked", "test_xfail"):
        assert f"::{expected}:" not in result.stdout.str()


def test_the_option_turns_it_on_without_ci_and_a_module_skip_counts(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_module='import pytest\npytest.skip("chromium is missing", allow_module_level=True)\n'
    )
    result = inner.runpytest("-p", "no:cacheprovider", "--rig-no-unexpected-skips")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_module.py: chromium is missing"])


@pytest.mark.parametrize(
    ("ci", "args"), [("", ()), ("0", ()), ("false", ()), ("true", ("--rig-no-unexpected-skips=0",))]
)
def test_a_developers_run_is_never_failed_by_a_skip(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CI", ci)
    inner.makepyfile(test_skips=SKIPS)
    result = inner.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.OK
    assert "unexpected skips" not in result.stdout.str()


def test_a_bad_value_is_a_usage_error_naming_the_variable(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIG_NO_UNEXPECTED_SKIPS", "maybe")
    result = inner.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*$RIG_NO_UNEXPECTED_SKIPS: no-unexpected-skips: expected 1 or 0, got 'maybe'*"]
    )


def test_only_expected_skips_pass_under_ci(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    inner.makepyfile(test_skips=SKIPS.replace('pytest.skip("mosquitto is not installed")', "pass"))
    result = inner.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
