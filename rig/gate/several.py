"""The gate's step for the tests of several boards: once per group of boards that can play them.

The board runs leave these tests out and list them (``rig.gate.boards_tests``). Once every board
run has ended, this step reads the list, forms the groups of the boards the gate ran
(``rig.gate.groups``: the rule) and runs each group's tests in a pytest of its own, one group
after the other: groups share boards, and a board is one run's at a time. A group's run is
bounded, retried once after an infrastructure failure, audited for every secret the runs
handed over and classified as a board's run is; its folder is ``OUT/boards-vb-1+vb-2`` and its
inventory lists the group's boards alone (``rig.gate.group_inventory``), so the tests can claim
no other.

Tests no group can play are not run, and the step says what they needed (``Unmet``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rig.errors import ConfigError, InfrastructureError
from rig.evidence.run_audit import HANDOFF_ENV
from rig.gate.board import audit_attempt, flash_before_run, run_options, stopped_before_run, subprocess_env
from rig.gate.boards_tests import FILE as TESTS_FILE
from rig.gate.boards_tests import read_tests
from rig.gate.classify import classify
from rig.gate.config import RETRIES, GateConfig
from rig.gate.group_inventory import FILE as INVENTORY_FILE
from rig.gate.group_inventory import write_group_inventory
from rig.gate.groups import BoardsGroup, BoardsTest, form_groups
from rig.gate.layout import run_folder
from rig.gate.results import (
    INFRASTRUCTURE,
    Attempt,
    BoardFinished,
    BoardResult,
    BoardStarted,
    GroupResult,
    Progress,
)
from rig.gate.supervise import run_bounded
from rig.inventory import BoardSpec, load_inventory


@dataclass
class SeveralOutcome:
    """What the step did: a result per group run, and a line per kind of test it could not run."""

    groups: list[GroupResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_several(
    config: GateConfig, boards: Sequence[BoardResult], notify: Progress, secrets_file: Path
) -> SeveralOutcome:
    """Run the tests of several boards the board runs listed, once per group of the boards the
    gate ran (see the module). ``config`` is absolute and checked."""
    outcome = SeveralOutcome()
    ran = [board for board in boards if board.attempts]
    if not ran:
        return outcome
    listed = _listed_tests(ran)
    if listed is None:
        outcome.skipped.append("not run: no board run got as far as listing its tests (see their logs)")
        return outcome
    try:
        tests = read_tests(listed)
    except ConfigError as e:
        outcome.skipped.append(f"not run: {e}")
        return outcome
    if not tests:
        return outcome
    running = [board.name for board in boards if board.planned.present]
    left_out = {board.name: f"({board.planned.absence})" for board in boards if not board.planned.present}
    inventory = load_inventory(config.inventory)
    plan = form_groups(tests, inventory, running, left_out)
    outcome.skipped += [unmet.line() for unmet in plan.unmet]
    for position, group in enumerate(plan.groups, 1):
        result = GroupResult(group)
        outcome.groups.append(result)
        for retry in range(RETRIES + 1):
            folder = run_folder(config.out, group.name, retry)
            notify(BoardStarted(group.name, folder, retry, position, len(plan.groups)))
            specs = [inventory.select(name) for name in group.boards]
            attempt = run_group(config, group, specs, folder, retry, secrets_file)
            result.attempts.append(attempt)
            # As for a board: a firmware failure is never retried.
            will_retry = attempt.category == INFRASTRUCTURE and retry < RETRIES
            notify(BoardFinished(attempt, will_retry, position, len(plan.groups)))
            if not will_retry:
                break
    return outcome


def _listed_tests(boards: Sequence[BoardResult]) -> Path | None:
    """The list of the first board run (inventory order, final attempt first) that wrote one:
    every board runs the same suite with the same selection."""
    for board in boards:
        for attempt in reversed(board.attempts):
            path = attempt.folder / TESTS_FILE
            if path.is_file():
                return path
    return None


def group_command(config: GateConfig, group: BoardsGroup, folder: Path, inventory: Path) -> list[str]:
    """The pytest command of ``group``'s run: its tests by node id, its boards' inventory."""
    return [
        sys.executable,
        "-m",
        "pytest",
        *_test_args(group.tests),
        # A name, not a set: the run claims no board of its own (rig.session), so every board of
        # its inventory is the tests' to claim.
        f"--rig-board={group.boards[0]}",
        f"--rig-inventory={inventory}",
        *run_options(config, folder),
    ]


def _test_args(tests: Sequence[BoardsTest]) -> list[str]:
    return list(dict.fromkeys(test.arg for test in tests))


def run_group(
    config: GateConfig,
    group: BoardsGroup,
    specs: Sequence[BoardSpec],
    folder: Path,
    retry: int,
    secrets_file: Path,
) -> Attempt:
    """One run of ``group``'s tests (``specs``: its boards) into ``folder``, bounded by
    ``config.timeout``, then its folder audited for every secret handed over and the run
    classified, as a board's run is (``rig.gate.board.run_board``). With ``--flash`` each board
    is flashed to its pin first, for the session folder the group's run gives it
    (``FOLDER/NAME/session``: a virtual board there is a new one), each record as
    ``flash-NAME.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    flashed = []
    if config.flash:
        for spec in specs:
            try:
                done = flash_before_run(
                    config, spec, folder, folder / spec.name / "session", f"flash-{spec.name}.json"
                )
            except (InfrastructureError, ConfigError) as e:
                return stopped_before_run(group.name, folder, retry, started, e, secrets_file)
            # An outcome names its board ("vb-1: wrote and verified ..."), "not flashed" does not.
            flashed.append(done if done.startswith(f"{spec.name}: ") else f"{spec.name}: {done}")
    inventory = write_group_inventory(config.inventory, group.boards, folder / INVENTORY_FILE)
    command = group_command(config, group, folder, inventory)
    (folder / "command.json").write_text(json.dumps(command, indent=1))
    returncode, timed_out = run_bounded(
        command,
        folder / "pytest.log",
        config.timeout,
        {**subprocess_env(), HANDOFF_ENV: str(secrets_file)},
    )
    took = time.monotonic() - started
    attempt = Attempt(group.name, folder, retry, returncode, took, timed_out, flash="; ".join(flashed))
    classify(attempt, config.timeout, audit_attempt(folder, secrets_file))
    return attempt
