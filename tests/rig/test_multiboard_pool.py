"""A pool of boards under ``pytest -n 2``: each xdist worker claims a board of the pool for its
single-board tests when its session starts, and a test of several boards on that worker may take
that board as one of its roles (issue 21). Without that, two workers over three boards each held
one board idle while their two-board tests waited for the other worker's, and skipped.

A real run: one pytest with two workers, three virtual boards of one tag (the pool), brokers.
Each worker runs, in order, a single-board test, a two-board test and a single-board test again:
the two-board test takes the worker's own board and one more, and the worker's board is its own
again for the last test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.rig.processes_left import processes_naming

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

BOARDS = """\
boards:
  - name: vb
    kind: virtual
    count: 3
    tags: [pair]
"""

# Two files, one per worker (--dist loadfile), each: one board, two boards, one board again.
# The host client's echo of one injected message is the proof a board runs (the broker saw it).
# The workers meet before and after their two-board tests, so that both sessions hold their
# boards all along: only the third board is free, and each two-board test needs its own board.
SUITE = """
import os
import time
from pathlib import Path

import pytest

from rig.deadline import Deadline


def meet(point, group):
    here = Path(os.environ["POOL_MEETING"])
    (here / f"{point}-{group}").touch()
    deadline = Deadline(60)
    while not all((here / f"{point}-{g}").exists() for g in ("one", "two")):
        if deadline.expired:
            pytest.fail(f"the other worker never reached {point}: {sorted(os.listdir(here))}")
        time.sleep(0.05)


def echo_once(mqtt, board, payload):
    since = time.time()
    mqtt.publish(board.config.echo_topic, payload)
    mqtt.wait_count(board.config.echo_topic, payload, 2, 20, since=since)


def run_on_one_board(board, mqtt, request, payload):
    echo_once(mqtt, board, payload)
    request.node.user_properties.append(("pool_board", board.name))


def run_on_two_boards(boards, request, payload):
    for b in boards:
        echo_once(b.mqtt, b, payload + b"-" + b.role.encode())


GROUP = Path(__file__).stem.rsplit("_", 1)[-1]


def test_1_single(board, mqtt, request):
    run_on_one_board(board, mqtt, request, f"{GROUP}-1".encode())
    meet("before", GROUP)


@pytest.mark.boards(a="tag:pair", b="tag:pair")
def test_2_pair(boards, request):
    run_on_two_boards(boards, request, f"{GROUP}-2".encode())


def test_3_single(board, mqtt, request):
    meet("after", GROUP)
    run_on_one_board(board, mqtt, request, f"{GROUP}-3".encode())
"""


def test_a_workers_own_board_plays_a_role_of_its_two_board_test(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "boards.yaml").write_text(BOARDS)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    for group in ("one", "two"):
        (tmp_path / f"test_pool_{group}.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        RIG_LOCK_DIR=str(tmp_path / "locks"),
        RIG_TIMEOUT="10",
        # Long enough for one worker's two-board test to wait out the other's (both want the
        # third board), short enough that a board held idle all session shows as a skip.
        RIG_LOCK_TIMEOUT="30",
        RIG_NO_UNEXPECTED_SKIPS="0",  # a skip is what this test looks for, not a CI failure
        POOL_MEETING=str(tmp_path / "meeting"),
        # A virtual board in a namespace of its own is never lent (rig.multiboard.claim.not_lent
        # says why); on this machine's network it is, as a USB board of a real pool is.
        RIG_VIRTUAL_NETNS="off",
    )
    (tmp_path / "meeting").mkdir()
    command = [
        sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider", "-rs",
        f"--rig-firmware={REPO / 'firmware'}",
        f"--rig-artifacts={tmp_path / 'artifacts'}",
        f"--junitxml={tmp_path / 'run.xml'}",
        "--rig-board=tag:pair",  # the pool: each worker claims one of the three
        "test_pool_one.py",
        "test_pool_two.py",
    ]  # fmt: skip
    with (tmp_path / "run.log").open("w") as log:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            proc.wait(timeout=180)  # a worker that waited on its own board would never end
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = (tmp_path / "run.log").read_text()
    results: dict[str, tuple[str, dict[str, str]]] = {}
    for case in ET.parse(tmp_path / "run.xml").iter("testcase"):
        outcome = next(
            (child.tag for child in case if child.tag in ("skipped", "failure", "error")), "passed"
        )
        message = next((str(child.get("message")) for child in case if child.tag != "properties"), "")
        properties = {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
        results[f"{str(case.get('classname')).rsplit('_', 1)[-1]}.{case.get('name')}"] = (
            f"{outcome} {message}".strip(),
            properties,
        )
    assert proc.returncode == 0, f"the run failed: {output[-3000:]}\n{results}"
    assert {name: outcome for name, (outcome, _) in results.items()} == {
        f"{group}.test_{n}": "passed" for group in ("one", "two") for n in ("1_single", "2_pair", "3_single")
    }, output[-3000:]
    for group in ("one", "two"):
        own = results[f"{group}.test_1_single"][1]["pool_board"]
        # The worker's board came back to it after the two-board test, and played a role there.
        assert results[f"{group}.test_3_single"][1]["pool_board"] == own, results
        played = results[f"{group}.test_2_pair"][1]["boards"].split()
        assert any(p.endswith(f"={own}") for p in played), (own, played)
    print({name: props.get("boards") or props.get("pool_board") for name, (_, props) in results.items()})
    assert processes_naming(str(tmp_path)) == {}
