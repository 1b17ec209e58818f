"""A real ``rig gate`` and board health: a board whose last three runs in the store failed as
infrastructure is skipped with the reason, the other board runs; a lab whose boards are all bad
trips the safety valve and the gate fails before it runs anything. Integration tier (it starts
pytests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.discovery import ports as discovery_ports
from rig.history.records import ResultIn, RunIn
from rig.history.store import default_url, open_store

REPO = Path(__file__).resolve().parents[2]
INVENTORY = """\
boards:
  - name: steady
    kind: virtual
  - name: flaky-hub
    kind: virtual
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("RIG_BOARD", "RIG_INVENTORY", "RIG_ARTIFACTS", "RIG_FIRMWARE", "RIG_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [])
    monkeypatch.chdir(REPO)
    yield


def gate(tmp_path: Path, boards: str) -> int:
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (suite / "test_tiny.py").write_text("def test_fine():\n    pass\n")
    inventory = tmp_path / "boards.yaml"
    inventory.write_text(INVENTORY)
    args = ["gate", "--firmware", str(REPO / "firmware"), "--inventory", str(inventory)]
    return main([*args, "--out", str(tmp_path / "gate"), "--suite", str(suite), "--boards", boards])


def three_lost_nights(tmp_path: Path) -> None:
    with open_store(default_url(tmp_path / "boards.yaml")) as store:
        for night in range(3):
            failed = ResultIn(
                "flaky-hub", "(run)", "error", "infrastructure", message="flaky-hub: port vanished"
            )
            store.write(
                RunIn(key=f"night-{night}", kind="gate", started=1_700_000_000.0 + night, results=(failed,))
            )


def test_a_board_bad_three_times_is_skipped_with_why_and_the_other_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_lost_nights(tmp_path)
    assert gate(tmp_path, "steady,flaky-hub") == 0
    printed = capsys.readouterr().out
    assert "gate: " in printed and "on steady; out of rotation: flaky-hub" in printed
    assert "flaky-hub: SKIPPED out of rotation: bad since 2023-" in printed
    assert "3 infrastructure failures in a row (last: flaky-hub: port vanished)" in printed
    assert "steady: PASS" in printed
    junit = (tmp_path / "gate" / "junit.xml").read_text()
    assert "board flaky-hub out of rotation: bad since 2023-" in junit


def test_the_valve_stops_a_gate_whose_boards_are_all_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_lost_nights(tmp_path)
    assert gate(tmp_path, "flaky-hub") == 3
    said = capsys.readouterr()
    assert "health safety valve: 1 of 1 boards would be taken out of rotation" in said.err
    assert "flaky-hub: bad since 2023-" in said.err
    assert not (tmp_path / "gate").exists()  # nothing ran
