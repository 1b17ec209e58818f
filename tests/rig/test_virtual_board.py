"""The virtual board behaves as a USB board does, for mpremote and for the rig."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rig.board import Board, VirtualBoard
from rig.board.virtual_supervisor import CRASH_LOOP_LIMIT
from rig.deadline import Deadline
from rig.errors import BoardUnreachable
from rig.processes import ChildProcess, is_running
from rig.serialio import SerialLog

# "main started" inside the try: a Ctrl-C sent as soon as it shows lands where the finally runs
# (printed before the try, a loaded machine left a window where it ended main.py without it).
LOOP_MAIN = """\
import time
try:
    print("main started")
    while True:
        time.sleep(0.05)
finally:
    print("cleanup ran")
"""


def mpremote(port: str, *args: str) -> str:
    exe = shutil.which("mpremote", path=os.path.dirname(sys.executable)) or "mpremote"
    done = subprocess.run([exe, "connect", port, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"mpremote {args} failed: {done.stdout}{done.stderr}"
    return done.stdout


def test_mpremote_cli_drives_it_like_a_usb_board(flash: Path) -> None:
    """Real mpremote, as a separate process, on the pty path: soft reset included."""
    vb = VirtualBoard("cli", flash)
    vb.start()
    try:
        port = vb.port_url
        assert port.startswith("/dev/pts/"), "mpremote polls a symlinked pty far slower"
        mpremote(port, "fs", "mkdir", "lib")
        (Path(flash.parent) / "mod.py").write_text("VALUE = 42\n")
        mpremote(port, "fs", "cp", str(flash.parent / "mod.py"), ":lib/mod.py")
        assert (flash / "lib" / "mod.py").read_text() == "VALUE = 42\n", (
            "the board's / is the flash directory"
        )
        # Without "resume" mpremote soft-resets into the raw REPL first: the board must survive it.
        out = mpremote(port, "exec", "import sys, mod; print(mod.VALUE, '/lib' in sys.path)")
        assert out.split() == ["42", "True"]
        boots = vb.boots
        mpremote(port, "resume", "exec", "print('no reset')")
        assert vb.boots == boots, "resume must not reset the board"
    finally:
        vb.stop()
    assert vb.process_ids() == []


def test_ctrl_c_interrupts_and_ctrl_d_reboots_on_the_same_port(
    flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    (flash / "main.py").write_text(LOOP_MAIN)
    virtual_board.soft_reset()
    console.expect("main started", 10)
    port_before = virtual_board.transport.port_url
    virtual_board.interrupt()
    console.expect("cleanup ran", 10)
    console.expect("KeyboardInterrupt", 10)
    console.expect("^>>> $", 10)
    virtual_board.write(b"\x04")
    console.expect("soft reboot", 10)
    console.expect("main started", 10)
    assert virtual_board.transport.port_url == port_before


def test_soft_resets_in_quick_succession_are_not_a_crash_loop(
    flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    """A run resets a firmware that a broker refuses at once (the security tests' short
    backoffs) again within ``CRASH_LOOP_SECONDS`` of its start, many times in a row. Those are
    soft resets the rig asked for, not crashes: the board must not be powered off for them."""
    (flash / "main.py").write_text(LOOP_MAIN)
    # Each firmware lives a few ms: Ctrl-C, its prompt, Ctrl-D. A board taken for crash-looping
    # would be powered off, and the next soft reset would see no "soft reboot".
    for _ in range(2 * CRASH_LOOP_LIMIT):
        console.from_now()
        virtual_board.soft_reset()
        console.expect("main started", 10)


def test_boot_py_runs_before_main_py(flash: Path, virtual_board: Board, console: SerialLog) -> None:
    (flash / "boot.py").write_text("print('boot.py here')\n")
    (flash / "main.py").write_text("print('main.py here')\n")
    virtual_board.soft_reset()
    console.expect("boot.py here", 10)
    console.expect("main.py here", 10)


def test_power_cut_gives_no_chance_to_clean_up(flash: Path, virtual_board: Board, console: SerialLog) -> None:
    (flash / "main.py").write_text(LOOP_MAIN)
    virtual_board.soft_reset()
    console.expect("main started", 10)
    transport = virtual_board.transport
    assert isinstance(transport, VirtualBoard)
    old_pid = transport.firmware_pid
    virtual_board.power_cycle()
    console.expect("main started", 10)
    assert transport.firmware_pid != old_pid
    assert not any("cleanup ran" in line.text for line in console.lines())


def test_raw_repl_through_the_rig_port(flash: Path, virtual_board: Board) -> None:
    (flash / "main.py").write_text(LOOP_MAIN)
    virtual_board.soft_reset()
    with virtual_board.repl() as repl:
        assert repl.eval("1 + 2") == 3
        repl.fs_writefile("/note.txt", b"x" * 5000)
    assert (flash / "note.txt").read_bytes() == b"x" * 5000


# Longer than a read through the rig's tap once blocked (1 s), well within a deploy's work bound.
STALL_S = 2.5


def test_a_board_that_stalls_in_the_raw_repl_is_waited_for(flash: Path, virtual_board: Board) -> None:
    """mpremote's raw paste waits for the board's flow-control bytes with no timeout of its own
    (pyserial's blocking read); under load a board once took over a second to send one, the
    tap's read returned nothing, and the deploy failed with "unexpected read during raw paste:
    b''". A board that stalls (SIGSTOP, then SIGCONT) for less than the work bound is waited for."""
    (flash / "main.py").write_text(LOOP_MAIN)
    virtual_board.soft_reset()
    transport = virtual_board.transport
    assert isinstance(transport, VirtualBoard)
    with virtual_board.repl() as repl:
        pid = transport.firmware_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        thaw = threading.Timer(STALL_S, os.kill, (pid, signal.SIGCONT))
        thaw.start()
        try:
            assert repl.eval("1 + 2") == 3
        finally:
            thaw.cancel()
            os.kill(pid, signal.SIGCONT)


# main.py dies with a long message: its traceback takes a while to print, so a Ctrl-C sent when
# the traceback starts lands while the bootstrap is still printing it.
DIES_LOUDLY_MAIN = """\
print("about to fail")
raise ValueError("x" * 400000)
"""


def test_a_ctrl_c_while_main_py_traceback_prints_goes_to_the_repl(
    flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    """The rig's soft reset may press Ctrl-C right after the firmware's own Ctrl-C, while the
    traceback of main.py prints. A real board's REPL takes it. The virtual board's bootstrap let
    it escape with a traceback of its own (and once in CI the process ended, taken for a crash)."""
    (flash / "main.py").write_text(DIES_LOUDLY_MAIN)
    transport = virtual_board.transport
    assert isinstance(transport, VirtualBoard)
    start = virtual_board.capture.next_index
    virtual_board.soft_reset()
    console.expect("about to fail", 10)
    boots = transport.boots
    console.expect("Traceback", 10)
    virtual_board.write(b"\x03")
    console.expect(">>> ", 10)
    escaped = [
        line.text
        for line in virtual_board.capture.lines()[start:]
        if "bootstrap.py" in line.text and "<module>" in line.text
    ]
    assert not escaped, f"the Ctrl-C escaped the virtual board's bootstrap: {escaped}"
    assert transport.boots == boots, "the virtual board restarted its process"


def test_stop_leaves_no_process(flash: Path) -> None:
    vb = VirtualBoard("stop", flash)
    vb.start()
    pids = vb.process_ids()
    assert len(pids) == 2
    vb.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_killed_supervisor_takes_micropython_with_it(flash: Path) -> None:
    vb = VirtualBoard("orphan", flash)
    vb.start()
    supervisor, firmware = vb.supervisor_pid, vb.firmware_pid
    assert supervisor is not None and firmware is not None
    try:
        os.kill(supervisor, 9)
        deadline = Deadline(10)
        while is_running(firmware) and not deadline.expired:
            time.sleep(0.05)  # nothing to wait on: the process is not ours to reap
        assert not is_running(firmware), "MicroPython outlived its supervisor"
    finally:
        vb.stop()


def _exited(pidfd: int, bound: float) -> bool:
    """Whether the process behind ``pidfd`` exits within ``bound``: a pidfd turns readable when
    its process ends, whoever its parent is."""
    return bool(select.select([pidfd], [], [], bound)[0])


def test_the_rig_never_signals_micropython_by_a_pid_that_may_be_reused(
    flash: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MicroPython is the supervisor's child: once the supervisor is gone, its PID may name an
    unrelated process. Here it does: the PID the rig knows is handed to a bystander (what PID
    reuse would do). Stopping the board must send no signal to it (every signal this process
    sends is recorded, then sent), while MicroPython itself is gone, killed by its supervisor."""
    vb = VirtualBoard("reuse", flash)
    vb.start()
    firmware = vb.firmware_pid
    assert firmware is not None
    pidfd = os.pidfd_open(firmware)
    bystander = ChildProcess.spawn(["sleep", "60"], name="bystander")
    sent: list[tuple[str, int, int]] = []
    kill, killpg = os.kill, os.killpg

    def recorded_kill(pid: int, signum: int) -> None:
        sent.append(("kill", pid, signum))
        kill(pid, signum)

    def recorded_killpg(pgid: int, signum: int) -> None:
        sent.append(("killpg", pgid, signum))
        killpg(pgid, signum)

    try:
        vb.firmware_pid = bystander.pid  # the firmware's PID, reused by an unrelated process
        supervisor = vb.supervisor_pid
        with monkeypatch.context() as patch:
            patch.setattr(os, "kill", recorded_kill)
            patch.setattr(os, "killpg", recorded_killpg)
            vb.stop()
        stale = [s for s in sent if s[1] in (bystander.pid, firmware)]
        assert not stale, f"stopping the board signalled by a PID that was not its own child's: {stale}"
        assert {pid for _, pid, _ in sent} <= {supervisor}, sent
        assert _exited(pidfd, 5), f"MicroPython (pid {firmware}) outlived its stopped supervisor"
        assert bystander.poll() is None
    finally:
        os.close(pidfd)
        bystander.stop()
        vb.stop()


def test_a_terminated_supervisor_kills_micropython_itself(flash: Path) -> None:
    vb = VirtualBoard("term", flash)
    vb.start()
    supervisor, firmware = vb.supervisor_pid, vb.firmware_pid
    assert supervisor is not None and firmware is not None
    pidfd = os.pidfd_open(firmware)
    try:
        os.kill(supervisor, signal.SIGTERM)  # the supervisor is our child, not reaped yet
        assert _exited(pidfd, 10), "MicroPython outlived its SIGTERMed supervisor"
        vb._await("GONE", Deadline(10))  # it said so: killed and reaped by the supervisor
    finally:
        os.close(pidfd)
        vb.stop()


# Every line inside a handler: a Ctrl-C that came while "hogging" was still being printed,
# outside the try, ended main.py and let the rig in (1 run in 4 under load).
HOG_MAIN = """\
import time
while True:
    try:
        print("hogging")
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        try:
            print("ignoring Ctrl-C")
        except KeyboardInterrupt:
            pass
"""


def test_a_board_that_hogs_its_console_is_reset_then_declared_unreachable(
    flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    (flash / "main.py").write_text(HOG_MAIN)
    virtual_board.soft_reset()
    console.expect("hogging", 10)
    transport = virtual_board.transport
    assert isinstance(transport, VirtualBoard)
    boots = transport.boots
    with (
        pytest.raises(BoardUnreachable, match="no raw REPL even after a hard reset"),
        virtual_board.repl(timeout=1),
    ):
        pass
    console.expect("ignoring Ctrl-C", 5)
    assert transport.boots == boots + 1, "the rig did not try a hard reset"


# Hogs the console on the first boot only: after a hard reset the REPL answers.
HOG_ONCE_MAIN = """\
import os
if "hogged" not in os.listdir("/"):
    open("hogged", "w").close()
    import hog
"""


def test_a_board_that_hogs_until_reset_is_recovered(
    flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    """main.py ignores Ctrl-C, but only on this boot: after the hard reset the REPL answers."""
    (flash / "hog.py").write_text(HOG_MAIN)
    (flash / "main.py").write_text(HOG_ONCE_MAIN)
    virtual_board.soft_reset()
    console.expect("hogging", 10)
    with virtual_board.repl(timeout=1) as repl:
        assert repl.eval("2 + 2") == 4
