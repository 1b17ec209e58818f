"""The capture itself (``rig.wire.capture``) on real parts, outside the HIL suite: tcpdump on a
real veth pair of ``rig.netns``, and the raw file (the password in the clear) of a run killed
with SIGKILL removed by the next run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import netns
from rig.deadline import Deadline
from rig.wire import capture as wire_capture
from rig.wire.capture import WireCapture
from rig.wire.records import BOARD, BROKER, TcpEnd, WirePacket

pytestmark = pytest.mark.integration

CONNECT = bytes.fromhex("101000044d5154540402003c0004") + b"wire"
CONNACK = b"\x20\x02\x00\x00"
DISCONNECT = b"\xe0\x00"
# The board's side: CONNECT, read the CONNACK, DISCONNECT, close (FIN).
CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(bytes.fromhex(sys.argv[3]))
assert s.recv(4) == bytes.fromhex("20020000")
s.sendall(b"\\xe0\\x00")
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
"""
# A rig process that made its raw capture folder, then died without a word.
KILLED = """
import os, signal
from rig.wire.capture import WireCapture
capture = WireCapture("lo", "127.0.0.1", {1883: False})
(capture._folder / "session-0.pcap").write_bytes(b"password")
print(capture._folder, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def link() -> Iterator[netns.BoardNetwork]:
    why = netns.unavailable() or wire_capture.unavailable()
    if why is not None:
        pytest.skip(why)
    network = netns.network_for(f"wire-capture-test-{os.getpid()}")
    assert network is not None
    try:
        yield network
    finally:
        network.remove()


def serve_one(listener: socket.socket) -> None:
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(5)
        assert connection.recv(len(CONNECT)) == CONNECT
        connection.sendall(CONNACK)
        while connection.recv(64):  # the DISCONNECT, then the board's FIN
            pass


def test_tcpdump_on_a_veth_pair_sees_connect_disconnect_and_fin(link: netns.BoardNetwork) -> None:
    with socket.create_server((link.host_address, 0)) as listener:
        port = listener.getsockname()[1]
        capture = WireCapture(link.host_if, link.board_address, {port: False})
        capture.start()
        try:
            server = threading.Thread(target=serve_one, args=(listener,), daemon=True)
            server.start()
            argv = ["ip", "netns", "exec", link.namespace, sys.executable, "-c", CLIENT]
            subprocess.run([*argv, link.host_address, str(port), CONNECT.hex()], check=True, timeout=10)
            server.join(5)
            raw = capture.files[0]
            assert raw.parent.stat().st_mode & 0o077 == 0, "the raw capture's folder is not the rig's alone"
            # tcpdump writes each packet as it comes (-U), but after the client is done.
            deadline = Deadline(5)
            while not any(isinstance(r, TcpEnd) and r.sender == BROKER for r in capture.records):
                assert not deadline.expired, f"no FIN of the broker decoded in 5s: {capture.records}"
                capture.poll()
                time.sleep(0.05)
        finally:
            capture.stop()
    records = capture.records
    said = [(r.sender, r.kind) for r in records if isinstance(r, WirePacket)]
    assert said == [(BOARD, "CONNECT"), (BROKER, "CONNACK"), (BOARD, "DISCONNECT")], records
    ends = [(r.sender, r.how) for r in records if isinstance(r, TcpEnd)]
    assert (BOARD, "FIN") in ends and all(how == "FIN" for _, how in ends), records
    assert not raw.parent.exists(), "the raw capture (the password in clear) outlived stop()"


def test_a_killed_runs_raw_capture_is_removed_by_the_next() -> None:
    done = subprocess.run([sys.executable, "-c", KILLED], capture_output=True, text=True, timeout=30)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = Path(done.stdout.strip())
    assert left.is_dir() and left.name.startswith(wire_capture.PREFIX), done.stdout
    # A live run's folder (this process's) is never another run's to remove.
    mine = Path(tempfile.mkdtemp(prefix=f"{wire_capture.PREFIX}{os.getpid()}-"))
    try:
        removed = wire_capture.remove_stale()
        assert left in removed and not left.exists(), f"a killed run's raw capture {left} was left: {removed}"
        assert mine.is_dir() and mine not in removed
    finally:
        mine.rmdir()
