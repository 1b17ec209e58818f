"""The HIL suite must be able to fail: each mutant breaks the firmware in one way, and the test
that guards that behaviour must fail with a message that names the cause.

Each mutant runs one HIL test in a pytest of its own, on a copy of firmware/ with one edit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"

CLEAN_DISCONNECT_CALL = "        disconnect_cleanly(c)\n"


@dataclass(frozen=True)
class Mutant:
    name: str
    original: str
    replacement: str
    test: str
    cause: str  # a fragment the failure output must contain


MUTANTS = [
    Mutant(
        "stops echoing",
        "if not echo(c, topic, msg):",
        "if False:",
        "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]",
        "b'11 22 3311' on 'rig/virtual/",
    ),
    Mutant(
        "echoes on another topic",
        "if not echo(c, topic, msg):",
        "if not echo(c, topic + b'/elsewhere', msg):",
        "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]",
        "/echo/elsewhere b'11 22 3311'",
    ),
    Mutant(
        "never disconnects",
        CLEAN_DISCONNECT_CALL,
        "        pass\n",
        "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires",
        "waiting for serial event 'disconnected'",
    ),
    Mutant(
        # Closing with echoes unread makes the kernel send RST: the RST case, without DISCONNECT.
        "drops its socket but claims a clean disconnect",
        CLEAN_DISCONNECT_CALL,
        "        c.sock.close()\n        emit('disconnected', clean=True)\n",
        "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires",
        "disconnect_received of client",
    ),
    Mutant(
        "resubscribes although the session was present",
        "        if not present:\n            subscribe(c)\n",
        "        subscribe(c)\n",
        "tests/hil/test_session.py::test_reset_finds_session_and_does_not_resubscribe",
        "subscribed again although the broker kept its session",
    ),
]


def mutate(target: Path, mutant: Mutant) -> Path:
    shutil.copytree(FIRMWARE, target)
    main = target / "main.py"
    source = main.read_text()
    assert source.count(mutant.original) == 1, f"mutant {mutant.name!r} no longer applies to firmware/main.py"
    main.write_text(source.replace(mutant.original, mutant.replacement))
    return target


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name.replace(" ", "-") for m in MUTANTS])
def test_suite_fails_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    firmware = mutate(tmp_path / "firmware", mutant)
    env = dict(os.environ, RIG_TIMEOUT="4")
    env.pop("RIG_BROKER_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            mutant.test,
            "-p",
            "no:cacheprovider",
            "-q",
            f"--rig-firmware={firmware}",
            f"--rig-artifacts={tmp_path / 'artifacts'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, (
        f"the suite did not fail for a firmware that {mutant.name}:\n{output[-3000:]}"
    )
    assert "1 failed" in output, output[-3000:]
    assert mutant.cause in output, f"failure does not name the cause {mutant.cause!r}:\n{output[-4000:]}"
