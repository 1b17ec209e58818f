"""Judging one attempt from what it left: run.json, else pytest's JUnit XML, else its exit code;
and its folder's secrets audit, from ``secrets-audit.json`` (missing: not audited, a failure).

A failed test is an infrastructure failure when the run says so by type: run.json's
``infrastructure`` flag, or the JUnit testcase property ``infrastructure`` the rig plugin
writes for an ``InfrastructureError``. Failure messages are only ever shown, never parsed for
a verdict.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from pathlib import Path

from rig.errors import ConfigError
from rig.evidence import junit_properties
from rig.evidence.run_audit import VERDICT_NAME, FolderVerdict, read_verdict
from rig.evidence.run_record import RunRecord
from rig.gate.boards_tests import FILE as BOARDS_TESTS_FILE
from rig.gate.boards_tests import read_tests
from rig.gate.junit import junit_outcomes, load_junit
from rig.gate.results import PASS, Attempt, CaseOutcome, FailedTest
from rig.release.target import runtime_key

# pytest's own exit codes (pytest.ExitCode), by meaning.
_PYTEST_INTERRUPTED = 2
_PYTEST_INTERNAL_ERROR = 3
_PYTEST_USAGE_ERROR = 4
_PYTEST_NO_TESTS = 5


def classify(attempt: Attempt, timeout: float, unaudited: str | None = None) -> None:
    """Fill ``attempt``'s counts and failures from its run.json, else its JUnit XML, else
    pytest's exit code. A run that left no run.json is an infrastructure failure whatever else
    it shows: the rig plugin did not get to record it. Its secrets audit is what its folder's
    ``secrets-audit.json`` says, or ``unaudited`` (why the audit could not be made)."""
    code = attempt.returncode
    if attempt.timed_out:
        attempt.run_problems.append(f"timed out after {timeout:g}s, killed")
    elif code < 0:
        attempt.run_problems.append(f"pytest died of {_signal_name(-code)}")
    record = _load_run_record(attempt.folder / "run.json")
    suites = load_junit(attempt.folder / "junit.xml")
    tests: list[CaseOutcome]
    if record is not None:
        attempt.source = "run.json"
        tests = [CaseOutcome(t.nodeid, t.name, t.outcome, t.infrastructure, t.message) for t in record.tests]
        if record.finished is None and not attempt.run_problems:
            attempt.run_problems.append("the run did not finish (run.json has no end time)")
        # Which runtime and which release this result is of: the runtime matrix's coordinates.
        attempt.runtime = runtime_key(record.runtime) if record.runtime is not None else ""
        releases = (t.properties.get(junit_properties.RELEASE_BUNDLE, "") for t in record.tests)
        attempt.release = record.release or next((r for r in releases if r), "")
    elif suites is not None:
        attempt.source = "junit.xml"
        tests = list(junit_outcomes(suites))
        attempt.run_problems.append("no run.json: the rig plugin did not record the run")
    else:
        attempt.source = "exit code"
        tests = []
        if not attempt.run_problems:
            attempt.run_problems.append(f"pytest exited with code {code} and left no run.json nor junit.xml")
    # rig.flaky's verdicts: a test run again that passed is flaky, never a plain pass; a failure
    # the quarantine shields is quarantined (pytest says XFAIL), neither failed nor skipped.
    shown = {t.nodeid: _counted_as(t.outcome, t.properties) for t in record.tests} if record else {}
    attempt.counts = dict(Counter(shown.get(test.nodeid, test.outcome) for test in tests))
    for test in tests:
        if test.outcome in ("failed", "error"):
            failures = attempt.infrastructure_failures if test.infrastructure else attempt.firmware_failures
            failures.append(FailedTest(test.nodeid, test.name, first_line(test.message)))
    attempt.audit = read_verdict(attempt.folder) if unaudited is None else FolderVerdict(False, unaudited)
    if not attempt.audit.clean:
        # Never retried: another run would write the secret again, and this folder is kept
        # (uploaded) whatever a retry does. A missing verdict is "not audited", never clean.
        attempt.firmware_failures.append(FailedTest(VERDICT_NAME, "secrets audit", attempt.audit.summary))
    if attempt.timed_out or code < 0:
        return
    if code == _PYTEST_NO_TESTS and listed_tests_of_several_boards(attempt.folder):
        # Every test the run selected was a test of several boards, which the gate runs once
        # per group of boards (rig.gate.several): nothing was this board's alone.
        pass
    elif code in (_PYTEST_USAGE_ERROR, _PYTEST_NO_TESTS):
        attempt.config_problem = (
            "pytest usage error (exit 4)" if code == _PYTEST_USAGE_ERROR else "no tests collected (exit 5)"
        )
    elif code == _PYTEST_INTERRUPTED and attempt.infrastructure_failures:
        # The rig stopped the run itself on an error every later test would meet again (a
        # runtime off its pin, a release refused: ``stops_run``); that error is the reason.
        pass
    elif code == _PYTEST_INTERRUPTED:
        attempt.run_problems.append("pytest was interrupted (exit 2: a collection error or an abort)")
    elif code == _PYTEST_INTERNAL_ERROR:
        attempt.run_problems.append("pytest hit an internal error (exit 3)")
    elif code == 1 and not (attempt.firmware_failures or attempt.infrastructure_failures):
        attempt.run_problems.append("pytest failed (exit 1) but recorded no failed test")
    elif code not in (0, 1):
        attempt.run_problems.append(f"pytest exited with code {code}")
    elif attempt.category == PASS and not (attempt.counts.get("passed") or attempt.counts.get("flaky")):
        # Every test skipped (the plugin skips them all when the board cannot be had): that
        # says nothing about the firmware, and a gate must not pass on it.
        skips = [first_line(test.message) for test in tests if test.outcome == "skipped"]
        why = f": {skips[0]}" if skips and skips[0] else ""
        attempt.run_problems.append(f"no test ran ({len(skips)} skipped{why})")


def listed_tests_of_several_boards(folder: Path) -> bool:
    """Whether the run in ``folder`` left out tests of several boards (``rig.gate.boards_tests``)."""
    try:
        return bool(read_tests(folder / BOARDS_TESTS_FILE))
    except ConfigError:
        return False


def _counted_as(outcome: str, properties: dict[str, str]) -> str:
    if outcome == "passed" and junit_properties.FLAKY in properties:
        return "flaky"
    if outcome == "skipped" and properties.get(junit_properties.QUARANTINED_OUTCOME) == "failed":
        return "quarantined"
    return outcome


def _load_run_record(path: Path) -> RunRecord | None:
    try:
        return RunRecord.load(path)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        # Saved atomically, so a bad file is not a torn write but a plugin of another format:
        # the JUnit XML still tells what happened.
        return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_E_LINE = re.compile(r"^E\s+")
# pytest's JUnit message of a setup or teardown error wraps the exception in this.
_PHASE_PREFIX = re.compile(r'^failed on \w+ with "(.*)"$')
# ``rig.errors.BoardUnreachable: `` or ``AssertionError: ``: a class name, module-qualified or not.
_EXCEPTION_PREFIX = re.compile(r"^(?:[a-z_]\w*\.)*[A-Z]\w*: ")


def first_line(message: str) -> str:
    """The first meaningful line of a failure message, for display only: without pytest's ``E``
    margin and the exception's class name, ``board unreachable: port vanished``."""
    lines = [shown for line in message.splitlines() if (shown := _E_LINE.sub("", line).strip())]
    if not lines:
        return ""
    first = _EXCEPTION_PREFIX.sub("", _PHASE_PREFIX.sub(r"\1", lines[0]))
    if first.endswith(":") and len(lines) > 1:
        # "not testing firmware on it:" says its reason on the next line: the line needs both.
        return f"{first} {lines[1]}"
    return first
