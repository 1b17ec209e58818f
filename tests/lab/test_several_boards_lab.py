"""A test of several boards with one role on a labgrid place and one on a local virtual board
(issue 21: "a place on labgrid can be one of the roles"): both boards run the firmware on the
group's one broker and echo; the place named, then reserved by its labgrid tags.

A real run, as a user starts it: pytest in a process of its own on the lab of conftest.py (a
coordinator, an exporter sharing the places' ptys through ser2net). The place is named by its
role (a place plays a role only by its name or tag, never as ``any``: rig.multiboard.roles). The
lab fixture checks at its end that no ser2net is left: each place was given back.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from rig.processes import ChildProcess
from tests.lab.conftest import Lab

REPO = Path(__file__).resolve().parents[2]

# Each board echoes one message: the host client, subscribed at the group's broker, sees it twice
# or more (its own publish, then each echo), so the broker is the witness that the board echoed.
# The broker's records say both boards connected with their own client id.
SUITE = """
import time

import pytest


def both_echo(boards):
    for b in boards:
        payload = f"for {b.label}".encode()
        since = time.time()
        b.mqtt.publish(b.config.echo_topic, payload)
        b.mqtt.wait_count(b.config.echo_topic, payload, 3, 20, since=since)
        assert b.records.connects(b.config.client_id), f"the broker saw no CONNECT of {b.label}"


@pytest.mark.boards(a="lab1", b="local")
def test_a_place_by_name(boards):
    both_echo(boards)


@pytest.mark.boards(a="any-lab", b="local")
def test_a_place_reserved_by_its_labgrid_tags(boards):
    both_echo(boards)
"""


def inventory(lab: Lab, path: Path) -> Path:
    """The lab's places, and a virtual board of this machine."""
    lab.inventory(path)
    path.write_text(path.read_text() + "  - name: local\n    kind: virtual\n")
    return path


def test_a_labgrid_place_and_a_local_board_play_the_roles_of_one_test(
    lab: Lab, tmp_path: Path, lab_env: dict[str, str]
) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (tmp_path / "test_lab_pair.py").write_text(SUITE)
    junit = tmp_path / "junit.xml"
    argv = [
        sys.executable, "-m", "pytest", "test_lab_pair.py", "-p", "no:cacheprovider", "-q", "-rs",
        f"--rig-inventory={inventory(lab, tmp_path / 'boards.yaml')}",
        f"--rig-firmware={REPO / 'firmware'}",
        "--rig-board=local",
        f"--rig-artifacts={tmp_path / 'artifacts'}",
        f"--junitxml={junit}",
    ]  # fmt: skip
    env = {
        **lab_env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), lab_env.get("PYTHONPATH")])),
        "RIG_LOCK_DIR": str(tmp_path / "locks"),
    }
    log = tmp_path / "pytest.log"
    process = ChildProcess.spawn(
        argv, name="pytest of a place and a local board", log_path=log, cwd=tmp_path, env=env
    )
    if not process.wait_exited(120):
        process.stop()
        raise AssertionError(f"the run did not end within 120s; its log: {log}")
    code = process.stop()
    output = log.read_text(errors="replace")
    assert code == 0, f"the run failed ({code}); its log {log}:\n{output[-4000:]}"
    played = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}.get("boards")
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    assert played == {
        "test_a_place_by_name": "a=lab1 b=local",
        "test_a_place_reserved_by_its_labgrid_tags": "a=any-lab b=local",
    }, output[-4000:]
    print(f"boards: {played}")
