"""Two concurrent ``pytest -n 2`` runs over three boards, each test needing two: they finish
without a deadlock, and a test that cannot get its boards skips naming what it needed and what
was busy (issue 21's "done when"). Real runs: two pytest processes, four xdist workers, virtual
boards and brokers; the three boards are the inventory's, so that the runs compete for them.
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
  - name: lone
    kind: virtual
"""

# Each test holds its two boards for a while (its message circulates 30 turns); the third board
# alone is never enough, so at most one test runs at a time over both runs and the rest wait.
SUITE = """
import time

import pytest


@pytest.mark.boards(a="tag:pair", b="tag:pair")
@pytest.mark.parametrize("n", range(3))
def test_two_boards(boards, n):
    since = time.time()
    boards.a.mqtt.publish(boards.a.config.echo_topic, b"ping %d" % n)
    boards.a.mqtt.wait_count(boards.a.config.echo_topic, b"ping %d" % n, 30, 20, since=since)
"""


def test_two_runs_of_two_workers_over_three_boards_end_without_deadlock(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "boards.yaml").write_text(BOARDS)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (tmp_path / "test_pairs.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        RIG_LOCK_DIR=str(tmp_path / "locks"),
        RIG_TIMEOUT="10",
        # Short: a test that waits longer than this for its two boards is skipped, saying why.
        RIG_LOCK_TIMEOUT="4",
        # The skips are the point here: under CI the skip policy would fail the runs for them.
        RIG_NO_UNEXPECTED_SKIPS="0",
    )
    runs = []
    for name in ("one", "two"):
        command = [
            sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-rs",
            f"--rig-firmware={REPO / 'firmware'}",
            f"--rig-artifacts={tmp_path / 'artifacts'}",  # one folder: each board's lock is keyed by it
            f"--junitxml={tmp_path / name}.xml",
            # Each xdist worker's session claims a board of --rig-board when it starts, used or
            # not: one outside the pair, so that the tests compete for the three boards only.
            "--rig-board=lone",
            "test_pairs.py",
        ]  # fmt: skip
        log = (tmp_path / f"{name}.log").open("w")
        runs.append((name, log, subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)))
    try:
        for _, log, proc in runs:
            # The bound is the deadlock check: two runs that each held a board and waited for the
            # other's would never end.
            proc.wait(timeout=240)
            log.close()
    finally:
        for _, _, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outcomes: dict[str, list[str]] = {}
    skips: list[str] = []
    for name, _, proc in runs:
        output = (tmp_path / f"{name}.log").read_text()
        assert proc.returncode == 0, f"run {name} failed:\n{output[-3000:]}"
        for case in ET.parse(tmp_path / f"{name}.xml").iter("testcase"):
            skipped = case.find("skipped")
            outcomes.setdefault(name, []).append("skipped" if skipped is not None else "passed")
            if skipped is not None:
                skips.append(str(skipped.get("message")))
    assert sorted(len(o) for o in outcomes.values()) == [3, 3], outcomes
    assert "passed" in outcomes["one"] + outcomes["two"], outcomes
    for reason in skips:
        assert "needed boards a=tag:pair, b=tag:pair, could not have them all within 4s" in reason, reason
        assert " in use" in reason, reason
    print(f"outcomes: {outcomes}; skip reasons: {skips}")
    assert processes_naming(str(tmp_path)) == {}
