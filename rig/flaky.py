"""Quarantine, one rerun, and ``--rig-repeat``: the rig's evidence of flaky tests (pytest plugin).

- A test the quarantine file (``rig.quarantine``) covers still runs; its JUnit testcase carries
  the property ``quarantined`` (the reason). A failure of its test body is shown as ``XFAIL
  quarantined: REASON`` and does not fail the run, nor the gate that reads run.json or JUnit.
- A failed test runs once more, and only once, when the failure is the rig's own
  (``rig.errors.InfrastructureError``, the class the plugin already marks ``infrastructure``) or
  its quarantine entry says ``rerun: true``. A firmware failure is never rerun: running it until
  it passes would hide the bug. A test that failed and then passed is FLAKY, never a plain pass:
  its JUnit testcase gets Maven Surefire's ``<flakyFailure>`` (``message``, ``type``, nested
  ``stackTrace``, ``system-out``, ``system-err``), which CI servers show; when the rerun failed
  too, the first failure is a ``<rerunFailure>`` beside pytest's ``<failure>``.
- ``--rig-repeat N`` runs each selected test N times and reports each test's pass rate (terminal
  summary and the JUnit property ``pass_rate`` of its last run).

Why our own hook and not pytest-rerunfailures: it decides to rerun by marker (a ``condition``
evaluated before the test runs) or by regexes over the error's text (``--only-rerun``); the rig
decides after the failure, by the exception's class and the test's quarantine entry, and tells
errors apart by type, never by text. It writes no Surefire elements either. pytest-repeat
parametrizes each test (new nodeids, ``test_x[2-3]``) and pytest-flakefinder duplicates items;
neither reports a pass rate, and both would put N unrelated nodeids into run.json and the
quarantine's matching. The repeat here is the same loop as the rerun, so it costs ~no code.

Like pytest-rerunfailures, the loop runs the phases with ``_pytest.runner.call_and_report`` (as
pytest's own ``runtestprotocol`` does); between two runs of one item only the item's own
fixtures are torn down (the module's and the session's, the broker and the board, stay up).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from _pytest.runner import call_and_report

from rig import quarantine as quarantine_file
from rig import settings as rig_settings
from rig.errors import ConfigError, InfrastructureError
from rig.evidence.junit_properties import FLAKY, PASS_RATE, QUARANTINED, QUARANTINED_OUTCOME, RERUN
from rig.quarantine import Entry, Quarantine

# Report attributes: a FLAKY result (the terminal's status letter); the failures of the run
# before (on the teardown report); a pass rate under --rig-repeat ([passed, runs]).
_FLAKY_ATTRIBUTE = "rig_flaky"
_RERUNS_ATTRIBUTE = "rig_reruns"
_RATE_ATTRIBUTE = "rig_pass_rate"
# Set by the plugin: the board this run tests and its tags, for entries scoped to a board or tag.
BOARD_KEY = pytest.StashKey[Callable[[], tuple[str, frozenset[str]]]]()
_STATE_KEY = pytest.StashKey["_State"]()
# Set by the plugin: why a rerun would say nothing (the board is broken: a rerun is skipped).
NO_RERUN_KEY = pytest.StashKey[Callable[[], str | None]]()
# A report of an attempt that is run again: not logged, not recorded in run.json (rig.plugin).
RERUN_ATTRIBUTE = "rig_rerun"
# An item that was run again once: never a second time.
_RERUN_DONE = pytest.StashKey[bool]()


@dataclass
class _Failure:
    """One failed attempt, as Surefire's rerun elements carry it."""

    message: str
    type: str
    trace: str
    out: str
    err: str


@dataclass
class _State:
    quarantine: Quarantine
    repeat: int
    today: datetime.date
    # nodeid -> the failures of attempts that were run again
    reruns: dict[str, list[_Failure]] = field(default_factory=dict)
    # nodeid -> (runs passed, runs)
    rates: dict[str, tuple[int, int]] = field(default_factory=dict)
    flaky: list[str] = field(default_factory=list)


def _option(config: pytest.Config, name: str) -> rig_settings.Given:
    return rig_settings.given_values(lambda dest: cast("str | None", config.getoption(dest, None)))[name]


def pytest_configure(config: pytest.Config) -> None:
    given = _option(config, "quarantine")
    named = given.origin is not rig_settings.Origin.DEFAULT
    if given.value:
        path = config.rootpath / given.value
    else:
        # Beside the inventory: the lab's folder.
        path = (
            config.rootpath / (_option(config, "inventory").value or "boards.yaml")
        ).parent / "quarantine.yaml"
    repeat_given = _option(config, "repeat")
    try:
        quarantine = quarantine_file.load(path, named=named)
        repeat = int(repeat_given.value or "1")
        if repeat < 1:
            raise ValueError
    except ValueError as e:
        raise pytest.UsageError(
            str(
                ConfigError(
                    repeat_given.label, "repeat", f"is a count of runs, 1 or more, not {repeat_given.value!r}"
                )
            )
        ) from e
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    state = _State(quarantine, repeat, datetime.date.today())
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(_Collector(state), "rig-flaky-collector")
    for entry in quarantine.expired(state.today):
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"rig quarantine entry expired, it no longer shields the test: {entry.describe()}"
            ),
            stacklevel=2,
        )


def _entry(item: pytest.Item) -> Entry | None:
    state = item.config.stash.get(_STATE_KEY, None)
    if state is None or not state.quarantine.entries:
        return None
    board, tags = "", frozenset[str]()
    if state.quarantine.needs_board():
        board, tags = item.config.stash.get(BOARD_KEY, lambda: ("", frozenset[str]()))()
    live, _ = state.quarantine.match(item.nodeid, board, tags, state.today)
    return live


def _add_property(item: pytest.Item, report: pytest.TestReport, name: str, value: str) -> None:
    # JUnit writes the teardown report's properties, which pytest copies from the item.
    for properties in (item.user_properties, report.user_properties):
        properties[:] = [(k, v) for k, v in properties if k != name] + [(name, value)]


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Any:  # Generator[None, TestReport, TestReport]: pluggy's wrapper protocol
    report: pytest.TestReport = yield
    entry = _entry(item)
    if entry is not None:
        _add_property(item, report, QUARANTINED, entry.reason)
    if item.stash.get(_RERUN_DONE, False) and report.when == "call":
        # Now, so that run.json (recorded by rig.plugin's wrapper, around this one) has it too.
        _add_property(item, report, *_verdict(report.passed))
    if report.failed and report.when in ("setup", "call") and not item.stash.get(_RERUN_DONE, False):
        state = item.config.stash.get(_STATE_KEY, None)
        infrastructure = call.excinfo is not None and call.excinfo.errisinstance(InfrastructureError)
        asked = (
            state is not None
            and state.repeat == 1
            and (infrastructure or (entry is not None and entry.rerun))
        )
        # A strategy that failed marks its board broken and the board's later tests are skipped
        # (labgrid's way): a rerun would be a skip, hiding the failure.
        broken = item.config.stash.get(NO_RERUN_KEY, lambda: None)() if asked else None
        # An error that ends the run (``stops_run``: a board off its runtime pin, a broker out of
        # reach) has closed the testbed: a rerun would only report the closed testbed instead.
        stops = call.excinfo is not None and getattr(call.excinfo.value, "stops_run", False)
        if broken is not None:
            report.sections.append(("rig", f"not run again: the board is broken ({broken})"))
        elif asked and stops:
            report.sections.append(("rig", "not run again: the error ends the run"))
        elif asked:
            setattr(report, RERUN_ATTRIBUTE, "infrastructure" if infrastructure else "quarantine entry")
            return report
    if report.failed and report.when == "call" and entry is not None:
        # pytest's own "expected failure": shown and counted, not a failure of the run.
        report.outcome = "skipped"
        _add_property(item, report, QUARANTINED_OUTCOME, "failed")
        report.wasxfail = f"quarantined: {entry.reason} ({entry.where}, until {entry.expires.isoformat()})"
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    state = item.config.stash[_STATE_KEY]
    if item.config.getoption("setuponly", False) or item.config.getoption("setupplan", False):
        return None  # pytest's own protocol: these run no test, so nothing to run again
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    failures: list[_Failure] = []
    passed = 0
    run = 0
    while run < state.repeat:
        run += 1
        reports = _run_once(item, nextitem, last=run == state.repeat)
        rerun = next((r for r in reports if getattr(r, RERUN_ATTRIBUTE, None)), None)
        if rerun is not None:
            # Not logged: the attempt after it is the test's result, this one its evidence.
            item.stash[_RERUN_DONE] = True
            # Its teardown's error too, if any: nothing of the first run is lost.
            failures += [
                _failure(r) for r in [rerun, *(t for t in reports if t.when == "teardown" and t.failed)]
            ]
            run -= 1
            continue
        ok = all(not r.failed for r in reports) and any(r.when == "call" and r.passed for r in reports)
        passed += ok
        if failures:
            _mark_rerun(item, reports, failures, ok)
        if state.repeat > 1 and run == state.repeat:
            _add_property(item, reports[-1], PASS_RATE, f"{passed}/{state.repeat}")
            setattr(reports[-1], _RATE_ATTRIBUTE, [passed, state.repeat])
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


class _Collector:
    """Gathers the evidence from the reports, where pytest-xdist's controller sees it too (the
    reports' attributes travel from the workers; the controller writes JUnit and the summary)."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        failures = getattr(report, _RERUNS_ATTRIBUTE, None)
        if failures:
            self.state.reruns[report.nodeid] = [_Failure(**f) for f in failures]
            if getattr(report, _FLAKY_ATTRIBUTE, False):
                self.state.flaky.append(report.nodeid)
        rate = getattr(report, _RATE_ATTRIBUTE, None)
        if rate:
            self.state.rates[report.nodeid] = (int(rate[0]), int(rate[1]))


def _run_once(item: pytest.Item, nextitem: pytest.Item | None, *, last: bool) -> list[pytest.TestReport]:
    """One setup/call/teardown of ``item``, as ``_pytest.runner.runtestprotocol`` runs it, but
    deciding how far to tear down after the call: an attempt to be run again, or a repeat that
    is not the last, tears down the item's own fixtures only."""
    if hasattr(item, "_request") and not item._request:
        item._initrequest()  # type: ignore[attr-defined]  # a fresh FixtureRequest for a rerun
    try:
        reports = [call_and_report(item, "setup", log=False)]
        if reports[0].passed:
            reports.append(call_and_report(item, "call", log=False))
        again = not last or any(getattr(r, RERUN_ATTRIBUTE, None) for r in reports)
        stop = item.session.shouldfail or item.session.shouldstop
        # SetupState tears down every node that is not an ancestor of "next": the item's parent
        # as "next" ends the item's own fixtures and keeps the module's and the session's.
        upto = None if stop else cast("pytest.Item", item.parent) if again else nextitem
        reports.append(call_and_report(item, "teardown", log=False, nextitem=upto))
    finally:
        if hasattr(item, "_request"):
            item._request = False
            item.funcargs = None  # type: ignore[attr-defined]
    return reports


def _failure(report: pytest.TestReport) -> _Failure:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    first = str(getattr(crash, "message", "") or "").split("\n", 1)[0]
    # pytest's crash line is "module.Class: message" (a bare assert: "AssertionError: ..." or
    # "assert ..."): Surefire keeps the class in type and the text in message.
    kind, colon, text = first.partition(": ")
    if not colon or " " in kind:
        kind, text = "failure", first
    return _Failure(message=text, type=kind, trace=str(longrepr), out=report.capstdout, err=report.capstderr)


def _mark_rerun(
    item: pytest.Item, reports: list[pytest.TestReport], failures: list[_Failure], ok: bool
) -> None:
    """The attempt after a rerun: FLAKY when it passed (never a plain pass); the first run's
    failures ride on its teardown report (plain data: pytest-xdist sends it to the controller)."""
    if ok:
        for report in reports:
            setattr(report, _FLAKY_ATTRIBUTE, True)
    setattr(reports[-1], _RERUNS_ATTRIBUTE, [dataclasses.asdict(f) for f in failures])
    _add_property(item, reports[-1], *_verdict(ok))


def _verdict(passed: bool) -> tuple[str, str]:
    """The JUnit (and run.json) property of a test that was run again."""
    return (FLAKY, "failed, then passed when run again") if passed else (RERUN, "failed, and failed again")


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    if getattr(report, _FLAKY_ATTRIBUTE, False) and report.when == "call" and report.passed:
        return "flaky", "f", ("FLAKY", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is None:
        return
    if state.reruns:
        terminalreporter.section("rig reruns", yellow=True)
        for nodeid, failures in state.reruns.items():
            verdict = "FLAKY: failed, then passed" if nodeid in state.flaky else "failed again"
            terminalreporter.write_line(f"{verdict}: {nodeid} (first failure: {failures[0].message})")
    if state.rates:
        terminalreporter.section("rig repeat: pass rates")
        for nodeid, (passed, runs) in sorted(state.rates.items(), key=lambda kv: kv[1][0] / kv[1][1]):
            terminalreporter.write_line(f"{passed}/{runs} ({100 * passed // runs}%) {nodeid}")


# What XML 1.0 cannot carry (a serial log's control bytes): shown as pytest's JUnit shows it, #xNN.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", text)


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a nodeid in pytest's JUnit XML (its ``mangle_test_address``)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    module = names[0].replace("/", ".")
    names[0] = module[: -len(".py")] if module.endswith(".py") else module
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def write_rerun_elements(config: pytest.Config) -> None:
    """Add Surefire's rerun elements to pytest's JUnit XML, once pytest has written it (called
    by the rig plugin's sessionfinish, before the secrets audit reads the file)."""
    state = config.stash.get(_STATE_KEY, None)
    xml = getattr(config.option, "xmlpath", None)
    if state is None or not state.reruns or not xml or not Path(xml).is_file():
        return
    prefix = getattr(config.option, "junitprefix", None)
    wanted: dict[tuple[str, str], tuple[str, list[_Failure]]] = {}
    for nodeid, failures in state.reruns.items():
        classname, name = junit_address(nodeid)
        # Passed when run again: flaky. Failed again (shown as a failure, or as a quarantined
        # XFAIL): the first failure is a rerun's.
        tag = "flakyFailure" if nodeid in state.flaky else "rerunFailure"
        wanted[(f"{prefix}.{classname}" if prefix else classname, name)] = (tag, failures)
    tree = ET.parse(xml)
    for case in tree.iter("testcase"):
        found = wanted.get((case.get("classname", ""), case.get("name", "")))
        if found is None:
            continue
        tag, failures = found
        for failure in failures:
            element = ET.SubElement(case, tag, {"message": failure.message, "type": failure.type})
            for child, text in (
                ("stackTrace", failure.trace),
                ("system-out", failure.out),
                ("system-err", failure.err),
            ):
                if text or child == "stackTrace":
                    ET.SubElement(element, child).text = _xml_text(text)
    tree.write(xml, encoding="utf-8", xml_declaration=True)
