"""Breaking the firmware on purpose: a ``Mutant`` is one edit of one firmware file, and
``assert_caught`` runs the HIL test that guards that behaviour against the mutant, in a pytest of
its own, and checks that it fails with a message that names the cause.

Every kind of check in the suite has its mutants, in ``test_catches_*.py`` /
``test_suite_catches_broken_firmware.py``: a check that no mutant can fail proves nothing.

The broker: each inner run takes the rig's own choice, ``$RIG_BROKER`` (rig/settings.py), so
``RIG_BROKER=amqtt tox -e mutation`` measures every case on amqtt (``tox -e mutation-amqtt``).
With it set, a test function's pin of the default broker (``--rig-broker=mosquitto`` as an extra
argument) gives way to it; a case whose own ``args`` name another broker is about that broker and
is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rig import settings as rig_settings

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # in firmware/
    original: str
    replacement: str
    test: str
    cause: str  # a fragment the failure output must contain
    # Further edits of the same mutant, each (file, original, replacement), for a defect that
    # needs more than one place changed.
    more: tuple[tuple[str, str, str], ...] = ()
    # Extra pytest arguments for the inner run (a broker, a firmware mode, a marker).
    args: tuple[str, ...] = ()
    # How the inner run ends: a firmware that cannot even start fails the board fixture's set-up.
    outcome: str = "1 failed"
    # Other fragments that name the same cause, when two witnesses race to see it first (the
    # wire and the console), each enough on its own.
    or_causes: tuple[str, ...] = ()


def mutate(target: Path, mutant: Mutant) -> Path:
    shutil.copytree(FIRMWARE, target, ignore=shutil.ignore_patterns("__pycache__"))
    for file, original, replacement in ((mutant.file, mutant.original, mutant.replacement), *mutant.more):
        path = target / file
        source = path.read_text()
        assert source.count(original) == 1, f"mutant {mutant.name!r} no longer applies to firmware/{file}"
        path.write_text(source.replace(original, replacement))
    return target


def ids(mutants: list[Mutant]) -> list[str]:
    return [m.name.replace(" ", "-") for m in mutants]


BROKER_FLAG = "--rig-broker="


def chosen_broker() -> str | None:
    """The embedded broker every case runs on (``$RIG_BROKER``), or None for the default."""
    broker = rig_settings.option("broker").from_environment()
    return broker if broker in ("mosquitto", "amqtt") else None


def broker_args(mutant: Mutant, extra_args: tuple[str, ...]) -> list[str]:
    """The inner run's arguments on the chosen broker; skips a case about another broker."""
    broker = chosen_broker()
    if broker is None:
        return [*mutant.args, *extra_args]
    own = [a.removeprefix(BROKER_FLAG) for a in mutant.args if a.startswith(BROKER_FLAG)]
    if own and own[-1] != broker:
        pytest.skip(f"this case is about {own[-1]} (its args say so), not the chosen {broker}")
    pinned = [a for a in extra_args if not a.startswith(BROKER_FLAG)]
    return [*mutant.args, *pinned, *([] if own else [BROKER_FLAG + broker])]


def assert_caught(mutant: Mutant, tmp_path: Path, *extra_args: str) -> None:
    """Run ``mutant.test`` on a mutated copy of firmware/ and check it fails naming the cause."""
    args = broker_args(mutant, extra_args)
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
            *args,
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
    assert mutant.outcome in output, output[-3000:]
    causes = (mutant.cause, *mutant.or_causes)
    assert any(cause in output for cause in causes), (
        f"failure does not name the cause {' or '.join(map(repr, causes))}:\n{output[-4000:]}"
    )
