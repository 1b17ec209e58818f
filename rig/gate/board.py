"""One attempt on one board: the pytest command line, its environment, the bounded run, the
secrets audit of its folder and its classification. The gate's loop (``rig.gate.run``) calls
``run_board`` once per attempt, from the thread of one of its jobs; nothing here knows about the
other boards but the secrets they handed over."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from rig import settings
from rig.errors import ConfigError, InfrastructureError
from rig.evidence.run_audit import HANDOFF_ENV, FolderVerdict, audit_folder, read_verdict, taken_over
from rig.flashing.board import flash_to_pin
from rig.gate.boards_tests import FILE as BOARDS_TESTS_FILE
from rig.gate.boards_tests import OPTION as BOARDS_TESTS_OPTION
from rig.gate.classify import classify
from rig.gate.config import GateConfig
from rig.gate.progress import OPTION as PROGRESS_OPTION
from rig.gate.results import Attempt
from rig.gate.status import PROGRESS_FILE
from rig.gate.supervise import run_bounded
from rig.inventory import BoardSpec

# What ``--flash`` did to the board before its run, in its run folder.
FLASH_RECORD = "flash.json"
# The directory holding the ``rig`` package: the board runs import this very copy of the rig.
_RIG_ROOT = Path(__file__).resolve().parents[2]


def pytest_command(config: GateConfig, board: str, folder: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(config.suite),
        f"--rig-board={board}",
        f"--rig-inventory={config.inventory}",
        # A run bound to one board holds it: its tests of several boards (rig.multiboard) are
        # no tests of this board. They are deselected once the run's selection is made, and
        # listed for the gate, which runs them once per group of boards (rig.gate.several).
        "-p",
        "rig.gate.boards_tests",
        f"{BOARDS_TESTS_OPTION}={folder / BOARDS_TESTS_FILE}",
    ]
    return command + run_options(config, folder)


def run_options(config: GateConfig, folder: Path) -> list[str]:
    """The options every pytest run of the gate has, a board's or a group's: the firmware, the
    run folder and its files, the live status, then the gate's own pytest arguments."""
    command = [
        f"--rig-firmware={config.firmware}",
        f"--rig-artifacts={folder}",
        f"--junitxml={folder / 'junit.xml'}",
        "-p",
        "no:cacheprovider",
        # Where the run is now, for the gate's live status line (``rig.gate.status``).
        "-p",
        "rig.gate.progress",
        f"{PROGRESS_OPTION}={folder / PROGRESS_FILE}",
        "-q",
    ]
    if config.broker is not None:
        command.append(f"--rig-broker={config.broker}")
    if config.lock_timeout is not None:
        command.append(f"--rig-lock-timeout={config.lock_timeout:g}")
    if config.release is not None:
        # Exactly the bundle, not the tree: the plugin deploys it and checks every file by hash.
        command.append(f"--rig-release={config.release}")
    return command + list(config.pytest_args)


def run_board(
    config: GateConfig,
    spec: BoardSpec,
    folder: Path,
    retry: int = 0,
    cancel: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
) -> Attempt:
    """One run of the suite on ``spec`` into ``folder``, bounded by ``config.timeout``; raises
    ``RunCancelled`` once ``cancel`` is set.

    The run hands its secrets over into ``secrets_file`` as it makes them
    (``rig.evidence.run_audit``); once it ended, however it ended (killed on timeout too), the
    folder is audited here for every secret in that file, and the verdict is written into it."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    flashed = ""
    if config.flash:
        try:
            flashed = flash_before_run(config, spec, folder)
        except (InfrastructureError, ConfigError) as e:
            return stopped_before_run(spec.name, folder, retry, started, e, secrets_file)
    command = pytest_command(config, spec.name, folder)
    (folder / "command.json").write_text(json.dumps(command, indent=1))
    handoff = {HANDOFF_ENV: str(secrets_file)} if secrets_file is not None else {}
    returncode, timed_out = run_bounded(
        command,
        folder / "pytest.log",
        config.timeout,
        {**subprocess_env(), **(env or {}), **handoff},
        cancel,
    )
    attempt = Attempt(
        spec.name, folder, retry, returncode, time.monotonic() - started, timed_out, flash=flashed
    )
    classify(attempt, config.timeout, audit_attempt(folder, secrets_file))
    return attempt


def flash_before_run(
    config: GateConfig,
    spec: BoardSpec,
    folder: Path,
    workdir: Path | None = None,
    record_name: str = FLASH_RECORD,
) -> str:
    """``--flash``: put ``spec``'s pinned runtime on it (written only when its flash holds other
    bytes) and check what it runs then, before its run starts (``rig.flashing.board.flash_to_pin``);
    what was done, in a sentence, also kept as ``flash.json`` (``record_name``) in ``folder``. The
    flash is made for the session folder the run will use (``workdir``, by default
    ``FOLDER/session``; a group's run has one per board): a virtual board keys its flash, and its
    runtime slot, by it. Raises what flashing raises (``FlashFailed``, ``RuntimeNotMet``, a
    ``ConfigError`` for a board pinned to no image)."""
    if spec.runtime is None:
        return "not flashed: no runtime pin in the inventory"
    workdir = workdir if workdir is not None else folder / "session"
    # Made now: a flash whose session folder does not exist is pruned as left over.
    workdir.mkdir(parents=True, exist_ok=True)
    lock_timeout = config.lock_timeout
    if lock_timeout is None:
        lock_timeout = float(settings.option("lock-timeout").default or 0)
    outcome = flash_to_pin(spec, workdir, lock_timeout=lock_timeout)
    record = {"summary": outcome.summary(), "written": outcome.written, "steps": list(outcome.steps)}
    (folder / record_name).write_text(json.dumps(record, indent=1))
    return outcome.summary()


def stopped_before_run(
    name: str,
    folder: Path,
    retry: int,
    started: float,
    error: InfrastructureError | ConfigError,
    secrets_file: Path | None,
) -> Attempt:
    """The attempt of a board (or group) that was not run: flashing a board to its pin failed
    (infrastructure, retried once as any), or it has no image to flash to (config). Its log says
    why."""
    problem = f"not run: --flash failed: {error}"
    (folder / "pytest.log").write_text(f"rig gate: {problem}\n(pytest was not started)\n")
    attempt = Attempt(name, folder, retry, 0, time.monotonic() - started, source="exit code")
    if isinstance(error, ConfigError):
        attempt.config_problem = problem
    else:
        attempt.run_problems.append(problem)
    unaudited = audit_attempt(folder, secrets_file)
    attempt.audit = read_verdict(folder) if unaudited is None else FolderVerdict(False, unaudited)
    return attempt


def audit_attempt(folder: Path, secrets_file: Path | None) -> str | None:
    """Audit ``folder`` for every secret handed over; why it could not be, or None."""
    if secrets_file is None:
        return None
    try:
        audit_folder(folder, taken_over(secrets_file))
    except (OSError, ValueError) as e:  # unreadable folder or hand-over file: fails closed
        return f"not audited: {type(e).__name__}: {e}"
    return None


def subprocess_env() -> dict[str, str]:
    # The suite's conftest imports rig.plugin: make it this very copy of the rig, installed or not.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_RIG_ROOT), env.get("PYTHONPATH")) if p)
    # The gate writes the results store itself, once, as one gate run (rig.history.writer).
    env.pop(settings.option("history").env, None)
    return env
