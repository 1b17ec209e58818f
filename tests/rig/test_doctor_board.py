"""``rig doctor`` on what it checks for real: a serial port another user cannot open (a pty, as
``nobody``), and the virtual board (its REPL, the firmware's events after a soft reset, its own
connect to the broker's port)."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dialout_pty() -> Iterator[str]:
    """A pty's path that only root and the group ``dialout`` may open, as a USB serial port is."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.chown(path, 0, grp.getgrnam("dialout").gr_gid)
    os.chmod(path, 0o660)
    try:
        yield path
    finally:
        os.close(slave)
        os.close(master)


def doctor_as_nobody(*args: str) -> tuple[int, str]:
    """``rig doctor ARGS`` in a child of this process that dropped to user ``nobody`` (not in
    ``dialout``): its exit code and what it printed. A fork rather than ``runuser -u nobody``:
    the test environment's Python lives where ``nobody`` may not read, and the forked child has
    every module loaded already."""
    if os.getuid() != 0:
        pytest.skip("dropping to another user needs root")
    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.dup2(write, 1)
            os.dup2(write, 2)
            sys.stdout = os.fdopen(1, "w", closefd=False)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            code = cli.main(["doctor", *args])
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as out:
        printed = out.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), printed


@pytest.mark.parametrize("mode", [0o660, 0o000])
def test_a_port_this_user_may_not_open_fails_naming_the_group(dialout_pty: str, mode: int) -> None:
    os.chmod(dialout_pty, mode)
    code, printed = doctor_as_nobody("--port", dialout_pty)
    assert code == 1, printed
    assert f"[fail] serial port: {dialout_pty}: permission denied" in printed, printed
    assert "group dialout" in printed, printed
    if mode == 0o660:
        assert "you (nobody) are not in group dialout: `sudo usermod -aG dialout nobody`" in printed, printed
    else:
        assert 'udev rule (MODE="0660", GROUP="dialout")' in printed, printed
    # The steps that need the board say they were not checked, not that they passed.
    assert "[warn] MicroPython: not checked" in printed, printed


def rig(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# A main.py that does what the firmware does when Wi-Fi will not join: its event, then it stops.
NO_WIFI_MAIN = (
    "open('main.py', 'w').write("
    '\'print(\\\'@rig {"ev": "wifi_failed", "status": "STAT_NO_AP_FOUND", "ms": 20001}\\\')\\n\')'
)


def test_the_virtual_board_is_checked_step_by_step(tmp_path: Path) -> None:
    workdir = str(tmp_path / "cli")
    done = rig("doctor", "virtual", "--workdir", workdir, "--timeout", "5")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "[ok  ] MicroPython: the REPL answers: micropython " in out, out
    assert "[ok  ] broker port from the board: the board connected to 127.0.0.1:" in out, out
    # No firmware on its flash: no events to read the Wi-Fi join from, and it says so.
    assert "[warn] Wi-Fi: could not check: no @rig events within 5 s of a soft reset" in out, out

    written = rig("exec", "virtual", NO_WIFI_MAIN, "--workdir", workdir)
    assert written.returncode == 0, written.stdout + written.stderr
    with socket.socket() as s:  # a port nothing listens on, as an external broker that is down
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    done = rig(
        "doctor",
        "virtual",
        "--workdir",
        workdir,
        "--timeout",
        "5",
        env={"RIG_BROKER_URL": f"127.0.0.1:{closed}"},
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "[fail] Wi-Fi: the board did not join Wi-Fi (STAT_NO_AP_FOUND after 20001 ms)" in out, out
    assert f"[fail] broker port from the board: the board could not connect to 127.0.0.1:{closed}" in out, out
