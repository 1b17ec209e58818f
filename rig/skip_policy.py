"""A skip nobody expected fails a CI run: a check that needs mosquitto and skips because
mosquitto is missing must not pass unseen.

Where it applies: with ``--rig-no-unexpected-skips`` (or ``$RIG_NO_UNEXPECTED_SKIPS=1``), else
whenever ``$CI`` is set (as CI services set it; blank, ``0``, ``false`` or ``no`` leave it off);
``--rig-no-unexpected-skips=0`` turns it off even there. Both are in rig/settings.py's table. A
developer's own run is never failed by it.

A skip is expected when
- its reason starts with ``not checked:`` (a check the firmware's declared contract gives no
  witness for: it says so, and does not fail for a missing extra);
- the test is marked ``expected_skip("why")`` (the test's own word that skipping is normal);
- or its reason contains one of ``EXPECTED_SKIPS``: what a broker or an external broker cannot
  show, whichever the run was given.
Every other skip of the run is named, with its reason, in a summary section, and the run's exit
status is "tests failed". An xfail is no skip here: it expects a failure, not an absence.

pytest's own ``-ra`` lists skips but cannot fail on them, and pytest-skip plugins that fail on
skips know no allow-list; hence this small module (registered by ``rig.plugin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from rig import settings as rig_settings
from rig.errors import ConfigError

NOT_CHECKED = "not checked:"
MARKER = "expected_skip"
SETTING = rig_settings.option("no-unexpected-skips")


@dataclass(frozen=True)
class ExpectedSkip:
    """A fragment of a skip reason, and why such a skip is no gap in the run."""

    fragment: str
    why: str


EXPECTED_SKIPS = (
    ExpectedSkip(
        "never drops a silent client",
        "amqtt keeps a client that stopped pinging: the keepalive check needs mosquitto, which "
        "CI runs as well",
    ),
    ExpectedSkip(
        "does not drop silent clients in a log the rig reads",
        "the rig's keepalive check on amqtt, as above",
    ),
    ExpectedSkip("an external broker cannot be restarted by the rig", "an external broker is not ours"),
    ExpectedSkip("is not the rig's to lock down", "an external broker's accounts are not the rig's"),
    ExpectedSkip("the rig makes certificates for its own brokers only", "an external broker's TLS"),
    ExpectedSkip(
        "the broker that hangs up speaks plain MQTT",
        "the session test's scripted broker has no TLS listener: the combinations without TLS run it",
    ),
    ExpectedSkip(
        "pytest-embedded-serial is not installed",
        "the peer benchmark's package is installed in tox -e bench only, where it runs",
    ),
    ExpectedSkip(
        "(its args say so), not the chosen",
        "a mutation case about one broker, in a tier run on the other (tox -e mutation-amqtt): "
        "the default tier runs it on its own broker",
    ),
)

# The JUnit property of a test marked ``expected_skip``: its reports carry it to xdist's
# controller, which sees reports but not items.
MARKED = (MARKER, "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(why): a skip of this test is normal, for the reason given (never fails CI)"
    )
    try:
        on = enabled(config)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    # xdist's workers report to the controller, which judges the whole run once.
    if on and not hasattr(config, "workerinput"):
        config.pluginmanager.register(SkipPolicy(), "rig-skip-policy")


def enabled(config: pytest.Config) -> bool:
    """The option (flag, else its variable) when given, else whether ``$CI`` is set."""
    given, source = config.getoption(SETTING.dest, None), SETTING.flag
    if given is None:
        given, source = SETTING.from_environment(), f"${SETTING.env}"
    if given is not None:
        return rig_settings.parse_flag(str(given), source, SETTING.name)
    return (rig_settings.CI.read() or "").strip().lower() not in ("", "0", "false", "no")


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skipped report gives, without pytest's "Skipped: " prefix."""
    longrepr: Any = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(reason).removeprefix("Skipped: ")


def is_expected(reason: str, marked: bool) -> bool:
    if marked or reason.startswith(NOT_CHECKED):
        return True
    return any(expected.fragment in reason for expected in EXPECTED_SKIPS)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(MARKER) is not None and MARKED not in item.user_properties:
        item.user_properties.append(MARKED)


class SkipPolicy:
    """The run's unexpected skips, gathered from its reports; registered for one run only when
    the policy applies (a plugin object of its own, so that a pytest run inside a test, as
    pytester makes, keeps its own)."""

    def __init__(self) -> None:
        self.unexpected: list[tuple[str, str]] = []

    def _note(self, report: pytest.TestReport | pytest.CollectReport, marked: bool) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = skip_reason(report)
        if not is_expected(reason, marked):
            self.unexpected.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report, MARKED in report.user_properties)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report, False)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unexpected and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.unexpected:
            return
        terminalreporter.section("rig: unexpected skips fail this run", red=True)
        for nodeid, reason in self.unexpected:
            terminalreporter.write_line(f"{nodeid}: {reason}")
        terminalreporter.write_line(
            f"{len(self.unexpected)} unexpected skip(s). A skip is expected when its reason starts "
            f"with {NOT_CHECKED!r}, the test is marked {MARKER}, or its reason is in "
            f"rig.skip_policy.EXPECTED_SKIPS; else install or start what it names (this run has $CI "
            f"set, or {SETTING.flag})."
        )
