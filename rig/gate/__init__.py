"""The gate: the whole HIL suite on every board of the bench that is present, one verdict each.

``plan_boards`` decides which boards run (present now) and which are missing. ``run_gate`` runs
the suite on each present board in a pytest subprocess of its own (the plugin deploys the
firmware), the boards at once (at most ``jobs`` at a time), classifies each run from its
``run.json``, retries an infrastructure failure once, merges the boards' JUnit files and writes
the HTML report.

Nothing here decides what to print: progress goes to a callback and the verdicts come back as
data, so that the ``rig gate`` command decides how they read and which exit code they give.
``StatusDisplay`` writes the live status lines to the stream the command gives it.

One module per job:

- ``plan``: which boards, and which of them are present now;
- ``config``: the options of a gate run, checked;
- ``results``: categories, attempts, board and gate results, progress events (data only);
- ``supervise``: one command bounded in time, nothing of its process group left after;
- ``board``: one attempt on one board (``--flash`` first, pytest command, run, secrets audit,
  classification); ``--release`` hands each run the bundle to deploy instead of the tree;
- ``classify``: judging an attempt from run.json, JUnit XML or exit code, by type;
- ``junit``: reading pytest's JUnit XML and merging every board's into one file;
- ``report``: the HTML report, as a best effort;
- ``layout``: the output folder (who may empty it, where each attempt goes);
- ``run``: the jobs over the boards, the only module that knows how they are scheduled;
- ``several``: the tests of several boards, once per group of boards (``groups``: the rule that
  forms the groups; ``boards_tests``: the plugin that takes them out of the board runs and lists
  them; ``group_inventory``: the inventory a group's run is given, its boards alone);
- ``progress``: a pytest plugin each board run loads, keeping ``progress.json`` (test now, counts);
- ``status``: the live status, one line per board, from the events and the progress files.

Layout of the output folder::

    .rig-gate              marks the folder as the gate's own, so that it may be emptied
    NAME/                  the board's run folder (--rig-artifacts): run.json, junit.xml, pytest.log,
                           progress.json, and secrets-audit.json: the gate's audit of the folder,
                           with the secrets the runs handed over (killed runs too); with
                           --flash, flash.json: what flashing the board to its pin did
    NAME-retry1/           the retry after an infrastructure failure; the first attempt stays,
                           audited like it
    boards-A+B/            the run of the tests of several boards on the group of boards A and
                           B (rig.gate.several), a run folder like a board's, with the
                           group's inventory (group-inventory.yaml); -retry1 as for a board
    junit.xml              every board's JUnit, one <testsuite name="NAME"> per board
    report.html            the HTML report over the final run folder of every board
"""

from rig.gate import supervise
from rig.gate.board import pytest_command, run_board
from rig.gate.classify import classify, first_line
from rig.gate.config import DEFAULT_OUT, DEFAULT_SUITE, DEFAULT_TIMEOUT, RETRIES, GateConfig
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
    GroupResult,
    Progress,
)
from rig.gate.run import run_gate
from rig.gate.status import LiveStatus, StatusDisplay, counts_text, outcome_text, show_path
from rig.gate.supervise import RunCancelled, run_bounded

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
    "GroupResult",
    "LiveStatus",
    "PlannedBoard",
    "PortLister",
    "Progress",
    "RunCancelled",
    "StatusDisplay",
    "classify",
    "counts_text",
    "first_line",
    "junit_outcomes",
    "load_junit",
    "outcome_text",
    "plan_boards",
    "prepare_out",
    "pytest_command",
    "run_board",
    "run_bounded",
    "run_gate",
    "show_path",
    "supervise",
    "write_junit",
]
