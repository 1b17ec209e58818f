"""``rig broker`` tried as a new user would: from a fresh directory, with the default workdir.

The default ``--workdir`` is relative (``artifacts/cli``); the broker runs with its workdir as
its current directory, so a relative config path once made mosquitto fail to start. Here the
command runs in a subprocess from an empty temporary directory, a real paho client connects to
the address it prints, and Ctrl-C (SIGINT) must end both the command and the broker.
"""

from __future__ import annotations

import json
import os
import queue
import re
import selectors
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.broker.amqtt import amqtt_available
from rig.broker.mosquitto import find_mosquitto
from rig.deadline import Deadline
from rig.processes import is_running
from tests.rig.processes_left import processes_naming

ROOT = Path(__file__).resolve().parents[2]
START_S = 30.0
STOP_S = 15.0


class Lines:
    """The command's stdout, line by line, every read bounded by a deadline. It reads the raw
    pipe itself: a buffered ``readline`` would hide lines already read from ``select``."""

    def __init__(self, process: subprocess.Popen[bytes], name: str = "rig broker") -> None:
        assert process.stdout is not None
        self.process = process
        self.name = name
        self.fd = process.stdout.fileno()
        self.buffer = b""

    def next(self, deadline: Deadline) -> str:
        while b"\n" not in self.buffer:
            with selectors.DefaultSelector() as selector:
                selector.register(self.fd, selectors.EVENT_READ)
                ready = selector.select(deadline.remaining())
            chunk = os.read(self.fd, 4096) if ready else b""
            if not chunk:
                self.process.kill()
                _, err = self.process.communicate(timeout=STOP_S)
                what = "exited" if ready else f"printed no whole line within {deadline.timeout}s"
                pytest.fail(f"{self.name} {what} (so far: {self.buffer!r}); stderr:\n{err.decode()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty current directory for the command; no process naming it may outlive the test."""
    cwd = tmp_path / "new-user"
    cwd.mkdir()
    yield cwd
    leftovers = list(processes_naming(str(cwd)))  # the broker, whose config path lies in cwd
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == []


def _default_sigint() -> None:
    # A test runner started in the background may have SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored: give the command the disposition a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("kind", [None, "amqtt"], ids=["default", "amqtt"])
def test_rig_broker_with_the_default_workdir_from_a_fresh_directory(
    fresh_dir: Path, kind: str | None
) -> None:
    if kind is None and find_mosquitto() is None and not amqtt_available():
        pytest.skip("neither mosquitto nor amqtt is installed")
    if kind == "amqtt" and not amqtt_available():
        pytest.skip("amqtt is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIG_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "broker", *(["--broker", kind] if kind else [])],
        cwd=fresh_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = Deadline(START_S)
        lines = Lines(process)
        # Which broker runs, first: results differ between them.
        expected = kind or ("mosquitto" if find_mosquitto() else "amqtt")
        identity = lines.next(deadline)
        assert re.fullmatch(rf"broker: {expected} \d[\w.]*", identity), identity
        address = lines.next(deadline)
        match = re.fullmatch(r"mqtt://(127\.0\.0\.1):(\d+)", address)
        assert match, address
        assert lines.next(deadline).startswith("ws://")
        found = re.match(r"credentials: (\S+) \(readable by you only\); accounts: (.*)", lines.next(deadline))
        assert found, "no credentials line"
        credentials = Path(found.group(1))
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
        accounts = json.loads(credentials.read_text())["accounts"]
        assert "rig-host" in found.group(2) and "board-virtual" in found.group(2)
        # Each board's account says the client id it is bound to (rig deploy gives it rig-BOARD).
        assert "board-virtual (rig/virtual/#, client id rig-virtual)" in found.group(2), found.group(2)
        log_line = lines.next(deadline)
        # The workdir is the default one, made absolute under the directory it was run from.
        assert str(fresh_dir / "artifacts" / "cli" / "broker") in log_line, log_line
        brokers = list(processes_naming(str(fresh_dir)))
        assert len(brokers) == 1, brokers  # the broker; the command's own line names no path

        host = accounts["host"]
        assert connack(match, None).is_failure, "an anonymous client was admitted"
        assert not (reason := connack(match, (host["user"], host["password"]))).is_failure, reason
        _another_boards_login_cannot_take_over(match, accounts)

        process.send_signal(signal.SIGINT)
        assert process.wait(STOP_S) == 0
        assert [pid for pid in brokers if is_running(pid)] == []
        assert not credentials.exists(), "the credentials outlived the broker"
        out, err = process.communicate(timeout=STOP_S)
        for account in accounts.values():
            assert account["password"].encode() not in out + err, "a password was printed"
        return
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_S)


def _another_boards_login_cannot_take_over(address: re.Match[str], accounts: dict[str, Any]) -> None:
    """The issue as a user met it: another board's login (the neighbour's, a board of the lab
    outside this bench) with ``rig-virtual`` took the board's session and cut it off. Now it is
    refused with CONNACK 5, and the board, connected meanwhile, stays connected."""
    board, other = accounts["board:virtual"], accounts["neighbour"]
    gone: queue.Queue[Any] = queue.Queue()
    connected: queue.Queue[Any] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rig-virtual", clean_session=False)
    client.username_pw_set(board["user"], board["password"])
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.put(reason)
    client.on_disconnect = lambda _c, _u, _f, reason, _p: gone.put(reason)
    client.connect(address.group(1), int(address.group(2)), keepalive=30)
    client.loop_start()
    try:
        assert not (reason := connected.get(timeout=10)).is_failure, f"the board was refused: {reason}"
        refused = connack(address, (other["user"], other["password"]), client_id="rig-virtual")
        assert refused.is_failure and refused.value == 135, f"the neighbour took rig-virtual: {refused}"
        # A QoS 1 round trip after the refusal: the board's connection is still the broker's.
        info = client.publish("rig/virtual/echo", b"still here", qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), "the board's PUBACK did not come after the neighbour's CONNECT"
        assert gone.empty(), f"the broker closed the board's connection: {gone.get()}"
    finally:
        client.disconnect()
        client.loop_stop()


def connack(address: re.Match[str], login: tuple[str, str] | None, client_id: str | None = None) -> Any:
    """The CONNACK reason a client gets from the broker at ``address``, with ``login`` or none."""
    connected: queue.Queue[Any] = queue.Queue()
    client_id = client_id or f"new-user-{bool(login)}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if login is not None:
        client.username_pw_set(*login)
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.put(reason)
    client.connect(address.group(1), int(address.group(2)), keepalive=30)
    client.loop_start()
    try:
        return connected.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()
