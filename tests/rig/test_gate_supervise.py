"""``rig.gate.run_bounded``: one command bounded in time, on real processes (no mocks).

The order matters to the evidence: pytest gets SIGINT alone first, so that it tears down and
writes its JUnit XML and run.json; only a command that ignores it gets SIGTERM and then SIGKILL,
to its whole group. Whatever ends the call, nothing of the group is left running.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from rig import gate
from rig.processes import is_running

CHILD_OF_CHILD = 'subprocess.Popen(["sleep", "300"])'


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "command.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def pids(tmp_path: Path) -> list[int]:
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


def still_running(tmp_path: Path, timeout: float = 3.0) -> list[int]:
    """The command's processes (itself, then its child) still running once ``timeout`` has
    passed. The command itself is reaped by then; its leftovers got SIGKILL, which the kernel
    carries out when it next schedules them, hence the short bounded wait."""
    end = time.monotonic() + timeout
    while True:  # polling PIDs: there is no event to wait on
        alive = [pid for pid in pids(tmp_path) if is_running(pid)]
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def short_graces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate.supervise, "INTERRUPT_GRACE", 0.5)
    monkeypatch.setattr(gate.supervise, "TERM_GRACE", 0.5)


@pytest.fixture
def env() -> dict[str, str]:
    return dict(os.environ)


def test_a_command_that_ends_in_time_gives_its_exit_code_and_output(
    tmp_path: Path, env: dict[str, str]
) -> None:
    command = script(tmp_path, "print('hello from the run')\nraise SystemExit(7)\n")
    log = tmp_path / "pytest.log"
    assert gate.run_bounded(command, log, 10, env) == (7, False)
    assert "hello from the run" in log.read_text()


def test_sigint_comes_first_so_the_command_can_write_its_reports(tmp_path: Path, env: dict[str, str]) -> None:
    command = script(
        tmp_path,
        f"""\
        import pathlib, signal, time

        def interrupted(signum, frame):
            pathlib.Path({str(tmp_path / "report")!r}).write_text("written on SIGINT")
            raise SystemExit(2)

        signal.signal(signal.SIGINT, interrupted)
        time.sleep(300)
        """,
    )
    started = time.monotonic()
    # 3 s: time enough for the interpreter to start and install its handler on a busy machine.
    assert gate.run_bounded(command, tmp_path / "pytest.log", 3.0, env) == (2, True)
    assert (tmp_path / "report").read_text() == "written on SIGINT"
    assert time.monotonic() - started < 3.0 + gate.supervise.INTERRUPT_GRACE


def test_a_command_ignoring_sigint_and_sigterm_is_killed_with_its_group(
    tmp_path: Path, env: dict[str, str]
) -> None:
    command = script(
        tmp_path,
        f"""\
        import os, pathlib, signal, subprocess, time

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = {CHILD_OF_CHILD}
        pathlib.Path({str(tmp_path / "pids")!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(300)
        """,
    )
    code, timed_out = gate.run_bounded(command, tmp_path / "pytest.log", 1.0, env)
    assert (code, timed_out) == (-signal.SIGKILL, True)
    assert still_running(tmp_path) == []


def test_leftovers_of_a_command_that_exited_are_killed(tmp_path: Path, env: dict[str, str]) -> None:
    command = script(
        tmp_path,
        f"""\
        import os, pathlib, subprocess

        child = {CHILD_OF_CHILD}
        pathlib.Path({str(tmp_path / "pids")!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        """,
    )
    assert gate.run_bounded(command, tmp_path / "pytest.log", 10, env) == (0, False)
    assert still_running(tmp_path) == []


@pytest.fixture
def interrupt_after() -> Iterator[None]:
    """Ctrl-C in the gate, as a KeyboardInterrupt raised in the main thread by a timer."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_ctrl_c_in_the_gate_stops_the_run_at_once(
    tmp_path: Path, env: dict[str, str], interrupt_after: None
) -> None:
    command = script(
        tmp_path,
        f"""\
        import os, pathlib, signal, subprocess, time

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        child = {CHILD_OF_CHILD}
        pathlib.Path({str(tmp_path / "pids")!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(300)
        """,
    )
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gate.run_bounded(command, tmp_path / "pytest.log", 60, env)
    assert time.monotonic() - started < 10
    assert still_running(tmp_path) == []


def test_a_cancelled_run_is_killed_with_its_group_from_another_thread(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The gate waits on each board's run in a thread of its own; Ctrl-C reaches the main thread,
    which sets ``cancel``: the run is killed at once, whatever it ignores."""
    command = script(
        tmp_path,
        f"""\
        import os, pathlib, signal, subprocess, time

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        child = {CHILD_OF_CHILD}
        pathlib.Path({str(tmp_path / "pids")!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(300)
        """,
    )
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(gate.RunCancelled, match=r"pytest \(pid \d+\) stopped: the gate was cancelled"):
            gate.run_bounded(command, tmp_path / "pytest.log", 60, env, cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 1.0 + gate.supervise.CANCEL_CHECK + 5
    assert still_running(tmp_path) == []
