"""``rig gate --jobs N``: the boards run at once (at most N), each in a pytest of its own with its
own board, broker and folder; the output is one status line per change, the verdicts and the
merged JUnit as before; Ctrl-C stops every run.

Real pytest runs on real virtual boards (an inventory entry with ``count: 2``); the overlap is
read from what each run recorded, its run.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.cli import main
from rig.deadline import Deadline
from rig.gate.progress import read_progress
from tests.rig.processes_left import processes_naming

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
TWO_BOARDS = "boards:\n  - name: vb\n    kind: virtual\n    count: 2\n"
# Long enough that two runs started together overlap for certain, short enough to stay cheap.
HOLD_S = 2.0
SUITE = f"""\
import time


def test_holds_its_board(board):
    time.sleep({HOLD_S})


def test_second(board):
    pass
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No settings from the caller's shell, locks of our own, the rig importable in the board
    runs; afterwards no process of this test may be left."""
    for name in list(os.environ):
        if name.startswith("RIG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("RIG_TIMEOUT", "5")
    monkeypatch.chdir(REPO)
    yield
    assert processes_naming(str(tmp_path)) == {}


def make_suite(tmp_path: Path, body: str = SUITE) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (suite / "test_tiny.py").write_text(textwrap.dedent(body))
    return suite


def gate_args(tmp_path: Path, *more: str) -> list[str]:
    inventory = tmp_path / "boards.yaml"
    inventory.write_text(TWO_BOARDS)
    return [
        "gate",
        "--firmware", str(FIRMWARE),
        "--inventory", str(inventory),
        "--suite", str(make_suite(tmp_path)),
        "--out", str(tmp_path / "gate"),
        *more,
    ]  # fmt: skip


def run_span(folder: Path) -> tuple[float, float, str]:
    """When the board's run started and finished, and the board it ran on, from its run.json."""
    record = json.loads((folder / "run.json").read_text())
    return record["started"], record["finished"], record["board"]["name"]


@pytest.mark.parametrize("jobs", [None, "1"])
def test_boards_run_at_once_unless_jobs_says_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str | None
) -> None:
    more = ["--jobs", jobs] if jobs else []
    code = main(gate_args(tmp_path, *more))
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    out = tmp_path / "gate"
    (start1, end1, board1), (start2, end2, board2) = run_span(out / "vb-1"), run_span(out / "vb-2")
    assert (board1, board2) == ("vb-1", "vb-2")
    overlap = min(end1, end2) - max(start1, start2)
    if jobs is None:
        # Both runs held their board at the same time, for most of the hold at least.
        assert overlap > HOLD_S / 2, (start1, end1, start2, end2)
    else:
        assert overlap < 0, (start1, end1, start2, end2)  # one after the other
        assert "(1 at a time)" in printed.out.splitlines()[0]

    lines = printed.out.splitlines()
    # The verdicts and the merged JUnit are what they were, in inventory order; under each
    # verdict the runtime the board ran (the runtime matrix's coordinate), then its folder's
    # secrets audit (with the secrets the runs handed over as they started their brokers and
    # made their boards' configs). Other lines (the results store's, say) may follow.
    at = [i for i, line in enumerate(lines) if line.startswith(("vb-1: ", "vb-2: "))]
    assert [lines[i] for i in at] == ["vb-1: PASS 2 passed", "vb-2: PASS 2 passed"], lines
    assert all(lines[i + 1].startswith("  ran on: runtime micropython ") for i in at), lines
    audits = [lines[i + 2].split(" (")[0] for i in at]
    assert audits == ["  secrets audit: vb-1 clean", "  secrets audit: vb-2 clean"], lines
    assert any(line.startswith("GATE: PASS") for line in lines[at[-1] :]), lines
    root = ET.parse(out / "junit.xml").getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["vb-1", "vb-2"]
    # Without a terminal: a line per change of each board, never a redraw.
    assert "\x1b" not in printed.out
    for position, board in ((1, "vb-1"), (2, "vb-2")):
        mine = [line for line in lines if line.startswith(f"[{position}/2] {board}: ")]
        assert mine[0].startswith(f"[{position}/2] {board}: running -> "), mine
        assert any("test_tiny.py::test_holds_its_board" in line for line in mine), mine
        assert mine[-1].startswith(f"[{position}/2] {board}: done in ") and mine[-1].endswith(": 2 passed")
        view = read_progress(out / board / "progress.json")
        assert view is not None and view.finished and view.counts == {"passed": 2}


def test_ctrl_c_stops_every_board_run(tmp_path: Path) -> None:
    """SIGINT to the gate while both boards run: it exits 130 at once and leaves no pytest,
    MicroPython or broker behind (the isolated fixture checks the last)."""
    args = gate_args(tmp_path)
    (tmp_path / "suite" / "test_tiny.py").write_text(
        "import time\n\n\ndef test_waits(board):\n    time.sleep(120)\n"
    )
    log = (tmp_path / "gate.log").open("w")
    gate = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", *args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        deadline = Deadline(60)
        out = tmp_path / "gate"
        while not all(_running_a_test(out / board) for board in ("vb-1", "vb-2")):
            assert not deadline.expired, (tmp_path / "gate.log").read_text()
            assert gate.poll() is None, (tmp_path / "gate.log").read_text()
            time.sleep(0.1)  # the runs are other processes: their progress files are the signal
        board_runs = processes_naming(str(out))
        assert board_runs  # the pytests, with their boards and brokers
        gate.send_signal(signal.SIGINT)
        assert gate.wait(timeout=20) == 130, (tmp_path / "gate.log").read_text()
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait(10)
        log.close()
    # SIGKILLed groups are gone once reaped by the gate; give the kernel a moment to finish them.
    deadline = Deadline(5)
    while processes_naming(str(tmp_path)) and not deadline.expired:
        time.sleep(0.05)


def _running_a_test(folder: Path) -> bool:
    view = read_progress(folder / "progress.json")
    return view is not None and view.current.endswith("::test_waits")


def test_jobs_must_be_a_positive_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1", "two"):
        folder = tmp_path / f"jobs{bad}"
        folder.mkdir()
        assert main(gate_args(folder, "--jobs", bad)) == 2
        assert "--jobs" in capsys.readouterr().err
        assert not (folder / "gate").exists()
