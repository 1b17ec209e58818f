"""The gate: the whole HIL suite on every board of the bench that is present, one verdict each.

``plan_boards`` decides which boards run (present now) and which are missing. ``run_gate`` runs
the suite on each present board in a pytest subprocess of its own (the plugin deploys the
firmware), one board after the other, classifies the run from its ``run.json``, retries an
infrastructure failure once, merges the boards' JUnit files and writes the HTML report.

Nothing here prints: progress goes to a callback and the verdicts come back as data, so that
the ``rig gate`` command decides how they read and which exit code they give.

One module per job:

- ``plan``: which boards, and which of them are present now;
- ``config``: the options of a gate run, checked;
- ``results``: categories, attempts, board and gate results, progress events (data only);
- ``supervise``: one command bounded in time, nothing of its process group left after;
- ``board``: one attempt on one board (pytest command, run, classification);
- ``classify``: judging an attempt from run.json, JUnit XML or exit code, by type;
- ``junit``: reading pytest's JUnit XML and merging every board's into one file;
- ``report``: the HTML report, as a best effort;
- ``layout``: the output folder (who may empty it, where each attempt goes);
- ``run``: the loop over the boards, the only module that knows they run one after the other.

Layout of the output folder::

    .rig-gate              marks the folder as the gate's own, so that it may be emptied
    NAME/                  the board's run folder (--rig-artifacts): run.json, junit.xml, pytest.log
    NAME-retry1/           the retry after an infrastructure failure; the first attempt stays
    junit.xml              every board's JUnit, one <testsuite name="NAME"> per board
    report.html            the HTML report over the final run folder of every board
"""

from rig.gate import supervise
from rig.gate.board import pytest_command, run_board
from rig.gate.classify import classify, first_line
from rig.gate.config import DEFAULT_OUT, DEFAULT_SUITE, DEFAULT_TIMEOUT, GateConfig
from rig.gate.junit import junit_outcomes, load_junit, write_junit
from rig.gate.layout import MARKER, prepare_out
from rig.gate.plan import PlannedBoard, PortLister, plan_boards
from rig.gate.results import (
    CONFIG,
    FIRMWARE,
    INFRASTRUCTURE,
    PASS,
    SEVERITY,
    SKIPPED,
    Attempt,
    BoardFinished,
    BoardResult,
    BoardStarted,
    CaseOutcome,
    Category,
    FailedTest,
    GateEvent,
    GateResult,
    Progress,
)
from rig.gate.run import RETRIES, run_gate
from rig.gate.supervise import run_bounded

__all__ = [
    "CONFIG",
    "DEFAULT_OUT",
    "DEFAULT_SUITE",
    "DEFAULT_TIMEOUT",
    "FIRMWARE",
    "INFRASTRUCTURE",
    "MARKER",
    "PASS",
    "RETRIES",
    "SEVERITY",
    "SKIPPED",
    "Attempt",
    "BoardFinished",
    "BoardResult",
    "BoardStarted",
    "CaseOutcome",
    "Category",
    "FailedTest",
    "GateConfig",
    "GateEvent",
    "GateResult",
    "PlannedBoard",
    "PortLister",
    "Progress",
    "classify",
    "first_line",
    "junit_outcomes",
    "load_junit",
    "plan_boards",
    "prepare_out",
    "pytest_command",
    "run_board",
    "run_bounded",
    "run_gate",
    "supervise",
    "write_junit",
]
