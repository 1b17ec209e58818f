"""A run killed while the board talks loses nothing the capture had read: the session log and
the test's log hold every complete line, as ``SerialCapture`` promises, on a real pty with a
real SIGKILL of the capturing process."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from rig.deadline import Deadline
from rig.processes import ChildProcess
from tests.rig.fake_pty import FakeBoardEnd

REPO = Path(__file__).resolve().parents[2]
BOUND = 30.0
LINES = 3000

# The capturing process: a session as the plugin holds it (port, capture with session log, a
# test's SerialLog). It says SAW once a wait has returned the last line, then idles until killed.
CAPTURER = """
import sys, time
from pathlib import Path
from rig.deadline import Deadline
from rig.serialio import BoardPort, SerialCapture, SerialLog

pty, work = sys.argv[1], Path(sys.argv[2])
capture = SerialCapture("killed", work / "session.log")
port = BoardPort(pty, name="killed")
port.add_sink(capture)
port.open()
log = SerialLog(capture, work / "test.log")
print("OPEN", flush=True)
line = capture.wait(lambda ln: ln.text == "LAST", 0, Deadline(30), include_partial=False)
print("SAW" if line is not None else "TIMEOUT", flush=True)
time.sleep(60)
"""


def _read_word(child: ChildProcess, deadline: Deadline) -> str:
    out = child.popen.stdout
    assert out is not None
    ready, _, _ = select.select([out], [], [], deadline.remaining())
    return out.readline().strip() if ready else f"(nothing within {deadline.timeout}s)"


def test_a_killed_capture_has_logged_every_complete_line_it_read(tmp_path: Path) -> None:
    end = FakeBoardEnd()
    child = ChildProcess.spawn(
        [sys.executable, "-c", CAPTURER, end.path, str(tmp_path)],
        name="capturer",
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = Deadline(BOUND)
        assert _read_word(child, deadline) == "OPEN"
        flood = [f"line {i:05d} " + "x" * (i % 97) for i in range(LINES)]
        data = "".join(line + ("\r\n" if i % 3 else "\n") for i, line in enumerate(flood)).encode()
        for at in range(0, len(data), 777):  # chunks that end mid-line, as a UART's do
            end.say(data[at : at + 777])
        # Then a few lines one by one, each read alone: small writes, which a log that is not
        # flushed at every chunk would still hold in the process when it is killed.
        trickle = [f"slow {i}" for i in range(5)]
        for line in trickle:
            time.sleep(0.02)
            end.say(line.encode() + b"\n")
        end.say(b"LAST\nan unfinished line")
        sent = [*flood, *trickle, "LAST"]
        assert _read_word(child, deadline) == "SAW"
        child.send(signal.SIGKILL)  # no close, no flush at exit, no atexit: the process is gone
        assert child.wait_exited(BOUND)
    finally:
        child.stop()
        end.unplug()
    for log in ("session.log", "test.log"):
        logged = [line.split(" ", 1)[1] for line in (tmp_path / log).read_text().splitlines()]
        assert logged == sent, f"{log}: {len(logged)} of {len(sent)} lines, or not in order"
