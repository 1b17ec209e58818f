"""A test of several boards never starts a second board of the session board's name: this
process keeps one network per board name (rig.netns), so a group board named "virtual" ran in the
session board's namespace and removed it when it stopped. The session's board was cut off its
broker without a FIN, and on amqtt the next test's board, started again, lost its messages to the
take-over of its own dead connection (test_soak failed in 2 of 2 runs under load).

A real inner run: the session's board, a test of two boards, the session's board again; the
session board's namespace must be the one it had, alive, and its connection never ended at the
broker during the group's test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

SUITE = """
import json
from pathlib import Path

import pytest

from rig import netns

STATE = Path(__file__).with_name("state.json")


def test_1_the_sessions_board(board):
    network = netns.network_for("virtual")  # the built-in board this run tests
    assert network is not None and network.exists
    STATE.write_text(json.dumps({"namespace": network.namespace}))


@pytest.mark.boards(a="any", b="any")
def test_2_two_boards(boards):
    assert "virtual" not in {spec.name for spec in boards.claim.boards.values()}, boards.claim.boards


def test_3_the_sessions_board_again(board):
    namespaces = subprocess_namespaces()
    assert json.loads(STATE.read_text())["namespace"] in namespaces, (
        "the session board's namespace was removed by the test of several boards"
    )


def subprocess_namespaces():
    import subprocess

    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
"""


def test_a_group_never_runs_a_second_board_of_the_sessions_name(tmp_path: Path) -> None:
    from rig import netns

    if netns.unavailable() is not None:
        pytest.skip(f"not checked: {netns.unavailable()}")
    # As the repository's inventory: a virtual board named "virtual", which the session tests
    # (auto) and which an ``any`` role may name.
    (tmp_path / "boards.yaml").write_text("boards:\n  - name: virtual\n    kind: virtual\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (tmp_path / "test_own.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        RIG_LOCK_DIR=str(tmp_path / "locks"),
        RIG_TIMEOUT="10",
    )
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        f"--rig-firmware={REPO / 'firmware'}", f"--rig-artifacts={tmp_path / 'artifacts'}", "test_own.py",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
