"""Claiming a board from a set (``--rig-board a,b`` or ``tag:NAME``), and ``pytest -n N``: each
pytest-xdist worker takes a board of its own through the boards' locks; a worker that finds
none free skips its tests, saying why; artifacts go to ``ARTIFACTS/<board>/`` per worker.

The claim itself is checked in this process (two BoardLock objects exclude each other like two
processes); the xdist runs are real: workers, virtual boards, brokers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import settings as rig_settings
from rig.board_choice import NoFreeBoard, claim_board, selected_boards
from rig.errors import ConfigError
from rig.inventory import Inventory, load_inventory
from rig.session import RigSession
from tests.rig.processes_left import processes_naming

REPO = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]

BOARDS = """\
boards:
  - name: vb
    kind: virtual
    count: 2
    tags: [par]
  - name: lone
    kind: virtual
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "boards.yaml"
    path.write_text(BOARDS)
    return load_inventory(path, env={})


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


# -- selecting and claiming, in this process -------------------------------------------------------


def test_a_selection_is_a_list_or_a_tag(inventory: Inventory) -> None:
    assert [b.name for b in selected_boards(inventory, "tag:par")] == ["vb-1", "vb-2"]
    assert [b.name for b in selected_boards(inventory, "lone, vb-2")] == ["lone", "vb-2"]
    with pytest.raises(ConfigError, match=r"no board .* carries tag 'wifi' \(tags: par\)"):
        selected_boards(inventory, "tag:wifi")
    with pytest.raises(ConfigError, match="expected tag:NAME"):
        selected_boards(inventory, "tag:")
    with pytest.raises(ConfigError, match="separated by commas"):
        selected_boards(inventory, "vb-1,,vb-2")
    with pytest.raises(ConfigError, match="no board named 'vb-3'"):
        selected_boards(inventory, "vb-1,vb-3")


def test_each_claim_takes_the_next_free_board_and_none_left_says_who_holds_them(
    inventory: Inventory, tmp_path: Path, locks: Path
) -> None:
    boards = selected_boards(inventory, "tag:par")

    def workdir(spec: object) -> Path:
        return tmp_path / "artifacts" / getattr(spec, "name", "") / "session"

    first_spec, first = claim_board(boards, workdir, "worker one", selection="tag:par", lock_dir=locks)
    second_spec, second = claim_board(boards, workdir, "worker two", selection="tag:par", lock_dir=locks)
    try:
        assert (first_spec.name, second_spec.name) == ("vb-1", "vb-2")
        assert first.held and second.held
        with pytest.raises(NoFreeBoard) as caught:
            claim_board(boards, workdir, "worker three", selection="tag:par", lock_dir=locks)
        error = caught.value
        assert error.summary == "no free board among tag:par: vb-1 in use; vb-2 in use"
        assert f"pid {os.getpid()}" in str(error) and "purpose worker one" in str(error)
        first.release()
        again, lock = claim_board(boards, workdir, "worker four", lock_dir=locks)
        assert again.name == "vb-1"
        lock.release()
    finally:
        first.release()
        second.release()


def settings_for(tmp_path: Path, board: str) -> rig_settings.RigSettings:
    given = {"rig_board": board, "rig_inventory": "boards.yaml", "rig_artifacts": "artifacts"}
    return rig_settings.resolve(given.get, tmp_path)


def test_a_session_claims_its_board_and_keeps_its_artifacts_under_its_name(
    inventory: Inventory, tmp_path: Path, locks: Path
) -> None:
    sessions = [RigSession(settings_for(tmp_path, "tag:par"), worker=f"gw{i}") for i in range(3)]
    try:
        claimed = [s.spec().name for s in sessions[:2]]
        assert claimed == ["vb-1", "vb-2"]
        assert [s.settings.artifacts for s in sessions[:2]] == [tmp_path / "artifacts" / n for n in claimed]
        assert (tmp_path / "artifacts" / "vb-1" / "run.json").is_file()
        third = sessions[2]
        assert third.no_board is not None
        assert third.settings.artifacts == tmp_path / "artifacts" / "no-board-gw2"
        assert third.board_label() == "tag:par (no free board among tag:par: vb-1 in use; vb-2 in use)"
        with pytest.raises(NoFreeBoard):
            third.spec()
        controller = RigSession(settings_for(tmp_path, "tag:par"), controller=True)
        assert "each xdist worker" in controller.board_label()
        controller.close()
        assert not (tmp_path / "artifacts" / "run.json").exists()  # the controller writes nothing
    finally:
        for session in sessions:
            session.close()
    # Closing gives the claimed boards back, though no test opened them.
    fresh = RigSession(settings_for(tmp_path, "vb-2,vb-1"))
    assert fresh.spec().name == "vb-2"
    fresh.close()


# -- pytest -n N -----------------------------------------------------------------------------------

XDIST_SUITE = """
import time

import pytest


@pytest.mark.parametrize("n", range(6))
def test_echo_on_my_board(board, mqtt, rig_session, n):
    since = time.time()
    mqtt.publish(board.config.echo_topic, b"ping %d" % n)
    mqtt.wait_count(board.config.echo_topic, b"ping %d" % n, 2, rig_session.settings.timeout, since=since)
"""


@pytest.fixture
def project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[pytest.Pytester]:
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name in list(os.environ):
        if name.startswith("RIG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("RIG_TIMEOUT", "5")
    (pytester.path / "boards.yaml").write_text(BOARDS)
    pytester.makeconftest('pytest_plugins = ["rig.plugin"]')
    pytester.makepyfile(test_echo=XDIST_SUITE)
    yield pytester
    assert processes_naming(str(pytester.path)) == {}


def run_xdist(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(
        f"--rig-firmware={REPO / 'firmware'}",
        f"--rig-artifacts={project.path / 'artifacts'}",
        "-p",
        "no:cacheprovider",
        "-rs",
        *args,
        timeout=180,
    )


def ran(folder: Path) -> tuple[str, int]:
    record = json.loads((folder / "run.json").read_text())
    return record["board"]["name"], sum(t["outcome"] == "passed" for t in record["tests"])


def test_two_workers_each_run_on_a_board_of_their_own(project: pytest.Pytester) -> None:
    result = run_xdist(project, "-n", "2", "--rig-board=vb-1,vb-2")
    result.assert_outcomes(passed=6)
    artifacts = project.path / "artifacts"
    boards = dict(ran(artifacts / name) for name in ("vb-1", "vb-2"))
    assert sorted(boards) == ["vb-1", "vb-2"]  # two different boards, each recorded in its folder
    assert sum(boards.values()) == 6 and all(boards.values()), boards
    assert not (artifacts / "run.json").exists()  # nothing from the controller, nothing shared
    # Per-test folders sit under the board that ran the test, never twice.
    tests = [
        p.name for board in ("vb-1", "vb-2") for p in (artifacts / board).iterdir() if "test_echo" in p.name
    ]
    assert len(tests) == len(set(tests)) == 6


def test_a_worker_without_a_free_board_skips_its_tests_saying_why(project: pytest.Pytester) -> None:
    # --dist each: every worker gets every test, so the board-less one surely has some to skip.
    result = run_xdist(project, "-n", "3", "--dist", "each", "--rig-board=tag:par")
    result.assert_outcomes(passed=12, skipped=6)
    result.stdout.fnmatch_lines(["*SKIPPED*no free board among tag:par: vb-? in use; vb-? in use*"])
    artifacts = project.path / "artifacts"
    assert sorted(dict(ran(artifacts / name) for name in ("vb-1", "vb-2")).values()) == [6, 6]
    (unclaimed,) = artifacts.glob("no-board-gw*")
    record = json.loads((unclaimed / "run.json").read_text())
    assert record["board"]["name"] == ""  # no board was ever opened
    assert {t["outcome"] for t in record["tests"]} == {"skipped"}
