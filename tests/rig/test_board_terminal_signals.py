"""A Ctrl-C at the terminal reaches the rig only: the board processes it started are its to stop.

A terminal sends SIGINT to every process of its foreground process group. Here the rig runs in a
group of its own and the test signals that group, as the terminal would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rig.board_choice import BUILTIN_VIRTUAL, flash_dir
from rig.deadline import Deadline
from rig.processes import is_running

ROOT = Path(__file__).resolve().parents[2]


def board_processes(flash: Path) -> list[int]:
    """PIDs of the virtual board's processes on ``flash``: the supervisor names it on its
    command line, MicroPython runs in it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        if (str(flash).encode() in argv or cwd == str(flash)) and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_ctrl_c_in_monitor_stops_the_virtual_board_without_a_traceback(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    flash = flash_dir(workdir, BUILTIN_VIRTUAL).resolve()
    output = tmp_path / "output.txt"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rig.cli", "monitor", "virtual", "--no-input", "--workdir", str(workdir)],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
            | {"PYTHONPATH": str(ROOT), "RIG_LOCK_DIR": str(tmp_path / "locks")},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, as a terminal's foreground job, the rig its leader
        )
    try:
        deadline = Deadline(30)
        # Another process writes the file: there is no event to wait on.
        while "rig: monitoring" not in output.read_text() and process.poll() is None and not deadline.expired:
            time.sleep(0.05)
        assert "rig: monitoring" in output.read_text(), output.read_text()
        running = board_processes(flash)
        assert len(running) >= 2, f"expected the supervisor and MicroPython on {flash}, found {running}"

        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert code == 0, f"--no-input documents Ctrl-C as its way to stop (exit 0); got {code}:\n{text}"
    left = [pid for pid in running if is_running(pid)] + board_processes(flash)
    assert not left, f"board processes left after Ctrl-C: {left}"
