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

from rig.evidence.run_audit import HANDOFF_ENV, audit_folder, taken_over
from rig.gate.classify import classify
from rig.gate.config import GateConfig
from rig.gate.progress import OPTION as PROGRESS_OPTION
from rig.gate.results import Attempt
from rig.gate.status import PROGRESS_FILE
from rig.gate.supervise import run_bounded
from rig.inventory import BoardSpec

# The directory holding the ``rig`` package: the board runs import this very copy of the rig.
_RIG_ROOT = Path(__file__).resolve().parents[2]


def pytest_command(config: GateConfig, board: str, folder: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(config.suite),
        f"--rig-board={board}",
        f"--rig-firmware={config.firmware}",
        f"--rig-artifacts={folder}",
        f"--rig-inventory={config.inventory}",
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
    command = pytest_command(config, spec.name, folder)
    (folder / "command.json").write_text(json.dumps(command, indent=1))
    handoff = {HANDOFF_ENV: str(secrets_file)} if secrets_file is not None else {}
    started = time.monotonic()
    returncode, timed_out = run_bounded(
        command,
        folder / "pytest.log",
        config.timeout,
        {**_subprocess_env(), **(env or {}), **handoff},
        cancel,
    )
    attempt = Attempt(spec.name, folder, retry, returncode, time.monotonic() - started, timed_out)
    unaudited = None
    if secrets_file is not None:
        try:
            audit_folder(folder, taken_over(secrets_file))
        except (OSError, ValueError) as e:  # unreadable folder or hand-over file: fails closed
            unaudited = f"not audited: {type(e).__name__}: {e}"
    classify(attempt, config.timeout, unaudited)
    return attempt


def _subprocess_env() -> dict[str, str]:
    # The suite's conftest imports rig.plugin: make it this very copy of the rig, installed or not.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_RIG_ROOT), env.get("PYTHONPATH")) if p)
    return env
