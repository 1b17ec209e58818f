"""The gate's live status: the progress file a board's pytest keeps, and the lines made of it
(one per board; redrawn in place on a terminal, one line per change otherwise)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rig import gate
from rig.deadline import Deadline
from rig.gate.progress import read_progress
from rig.gate.status import PROGRESS_FILE

pytest_plugins = ["pytester"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write_progress(folder: Path, current: str, counts: dict[str, int], collected: int = 5) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"collected": collected, "current": current, "counts": counts, "finished": False}
    (folder / PROGRESS_FILE).write_text(json.dumps(data))


def finished(board: str, folder: Path, passed: int, will_retry: bool = False) -> gate.BoardFinished:
    attempt = gate.Attempt(board, folder, 0, returncode=0, duration=3.0, source="run.json")
    attempt.counts = {"passed": passed}
    return gate.BoardFinished(attempt, will_retry, 1, 2)


# -- the progress file, written by a real pytest run ----------------------------------------------


def test_a_pytest_run_keeps_its_progress_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    progress = tmp_path / "progress.json"
    seen = tmp_path / "seen.jsonl"
    pytester.makepyfile(
        f"""
        import json, pathlib, pytest

        def _seen():
            # What the gate would read while this test runs.
            text = pathlib.Path({str(progress)!r}).read_text()
            with open({str(seen)!r}, "a") as f:
                f.write(text + "\\n")

        def test_a():
            _seen()

        def test_b():
            _seen()
            assert False

        def test_c():
            _seen()
            pytest.skip("not here")

        @pytest.fixture
        def broken():
            raise RuntimeError("setup fails")

        def test_d(broken):
            pass
        """
    )
    result = pytester.runpytest("-p", "rig.gate.progress", f"--rig-gate-progress={progress}")
    result.assert_outcomes(passed=1, failed=1, skipped=1, errors=1)
    during = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [d["current"].rsplit("::", 1)[1] for d in during] == ["test_a", "test_b", "test_c"]
    assert [d["collected"] for d in during] == [4, 4, 4]
    assert [d["counts"] for d in during] == [{}, {"passed": 1}, {"passed": 1, "failed": 1}]
    view = read_progress(progress)
    assert view is not None and view.finished and view.current == ""
    assert view.counts == {"passed": 1, "failed": 1, "skipped": 1, "error": 1}


def test_without_the_option_the_plugin_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    pytester.runpytest("-p", "rig.gate.progress").assert_outcomes(passed=1)
    assert list(pytester.path.glob("*.json")) == []


def test_a_missing_or_foreign_progress_file_reads_as_none(tmp_path: Path) -> None:
    assert read_progress(tmp_path / "nothing.json") is None
    (tmp_path / "other.json").write_text('{"counts": "many"}')
    assert read_progress(tmp_path / "other.json") is None


# -- the lines ------------------------------------------------------------------------------------


def test_lines_follow_the_events_and_the_progress_files(tmp_path: Path) -> None:
    clock = Clock()
    status = gate.LiveStatus(["vb-1", "vb-10"], clock)
    one, ten = tmp_path / "vb-1", tmp_path / "vb-10"
    assert status.lines() == [
        "[1/2] vb-1:  waiting for a free job (--jobs)",
        "[2/2] vb-10: waiting for a free job (--jobs)",
    ]
    assert status.on_event(gate.BoardStarted("vb-1", one, 0, 1, 2)) == ["vb-1"]
    assert status.lines(["vb-1"]) == [f"[1/2] vb-1:  running -> {one}"]
    assert status.refresh() == []  # no progress file yet
    write_progress(one, "tests/hil/test_echo_loop.py::test_cadence[fast]", {"passed": 2, "failed": 1})
    clock.now += 12.0
    assert status.refresh() == ["vb-1"]
    assert status.refresh() == []  # nothing new: no line
    assert status.lines(["vb-1"]) == [
        "[1/2] vb-1:  running 12.0s: 3/5 tests, 2 passed, 1 failed — test_echo_loop.py::test_cadence[fast]"
    ]
    write_progress(one, "", {"passed": 4, "failed": 1})
    clock.now += 3.0
    status.on_event(finished("vb-1", one, passed=4, will_retry=False))
    assert status.lines(["vb-1"]) == ["[1/2] vb-1:  done in 15.0s: 4 passed"]
    # A board not started yet is never read, whatever lies in its folder.
    write_progress(ten, "tests/x.py::test_y", {"passed": 1})
    assert status.refresh() == []
    status.on_event(gate.BoardStarted("vb-10", ten, 1, 2, 2))
    assert status.lines(["vb-10"]) == [f"[2/2] vb-10: retrying -> {ten}"]


def test_without_a_terminal_one_line_per_change_and_no_escape(tmp_path: Path) -> None:
    clock = Clock()
    status = gate.LiveStatus(["vb-1", "vb-2"], clock)
    stream = io.StringIO()
    one = tmp_path / "vb-1"
    with gate.StatusDisplay(status, stream, redraw=False, tick=0.05) as display:
        display.on_event(gate.BoardStarted("vb-1", one, 0, 1, 2))
        write_progress(one, "tests/t.py::test_a", {})
        _wait_for(lambda: "test_a" in stream.getvalue())
        write_progress(one, "tests/t.py::test_b", {"passed": 1})
        _wait_for(lambda: "test_b" in stream.getvalue())
        display.on_event(finished("vb-1", one, passed=2))
    lines = stream.getvalue().splitlines()
    assert lines == [
        f"[1/2] vb-1: running -> {one}",
        "[1/2] vb-1: running 0.0s: 0/5 tests, 0 passed — t.py::test_a",
        "[1/2] vb-1: running 0.0s: 1/5 tests, 1 passed — t.py::test_b",
        "[1/2] vb-1: done in 0.0s: 2 passed",
    ]
    assert "\x1b" not in stream.getvalue()


def test_on_a_terminal_the_block_is_redrawn_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # lines are cut to the terminal's width
    clock = Clock()
    status = gate.LiveStatus(["vb-1", "vb-2"], clock)
    stream = io.StringIO()
    with gate.StatusDisplay(status, stream, redraw=True, tick=60) as display:
        display.on_event(gate.BoardStarted("vb-2", tmp_path / "vb-2", 0, 2, 2))
    frames = stream.getvalue().split("\x1b[2F")  # back up the two lines of the block
    assert len(frames) == 3  # the first drawing, the event, the final one at the end
    first = frames[0].split("\n")
    assert first[:2] == [
        "\x1b[2K[1/2] vb-1: waiting for a free job (--jobs)",
        "\x1b[2K[2/2] vb-2: waiting for a free job (--jobs)",
    ]
    assert f"\x1b[2K[2/2] vb-2: running -> {tmp_path / 'vb-2'}\n" in frames[1]


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = Deadline(timeout)
    while not condition():  # the display's thread writes on its own tick
        assert not deadline.expired, "the display did not write the line in time"
        time.sleep(0.01)
