"""One attempt on one board: the pytest command line, its environment, the bounded run and its
classification. The gate's loop (``rig.gate.run``) calls ``run_board`` once per attempt, from
the thread of one of its jobs; nothing here knows about the other boards."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

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
) -> Attempt:
    """One run of the suite on ``spec`` into ``folder``, bounded by ``config.timeout``; raises
    ``RunCancelled`` once ``cancel`` is set."""
    folder.mkdir(parents=True, exist_ok=True)
    command = pytest_command(config, spec.name, folder)
    (folder / "command.json").write_text(json.dumps(command, indent=1))
    started = time.monotonic()
    returncode, timed_out = run_bounded(
        command, folder / "pytest.log", config.timeout, {**_subprocess_env(), **(env or {})}, cancel
    )
    attempt = Attempt(spec.name, folder, retry, returncode, time.monotonic() - started, timed_out)
    classify(attempt, config.timeout)
    return attempt


def _subprocess_env() -> dict[str, str]:
    # The suite's conftest imports rig.plugin: make it this very copy of the rig, installed or not.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_RIG_ROOT), env.get("PYTHONPATH")) if p)
    return env
