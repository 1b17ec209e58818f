"""The virtual board's own network (rig.netns): made, shaped and removed with real ``ip``/``tc``,
judged by real TCP connections from inside the namespace to a listener on the host side."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import netns
from rig.lock import LockBusy
from rig.netns import BoardNetwork

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=str(netns.unavailable()))

# Connects to HOST:PORT from inside the namespace with a bound; prints "ok" or the error's class.
PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("ok")
except OSError as e:
    print(type(e).__name__, e.errno)
"""


@pytest.fixture
def network() -> Iterator[BoardNetwork]:
    made = netns.network_for(f"test-{id(object())}")
    assert made is not None
    yield made
    made.remove()


@pytest.fixture
def listener(network: BoardNetwork) -> Iterator[int]:
    with socket.socket() as s:
        s.bind((network.host_address, 0))
        s.listen()
        yield s.getsockname()[1]


def connect_from_board(network: BoardNetwork, port: int, timeout: float = 1.0) -> str:
    done = subprocess.run(
        network.command([sys.executable, "-c", PROBE, network.host_address, str(port), str(timeout)]),
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=True,
    )
    return done.stdout.strip()


def namespaces() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def test_the_board_reaches_the_host_side_and_only_through_its_link(
    network: BoardNetwork, listener: int
) -> None:
    assert connect_from_board(network, listener) == "ok"
    # Inside, this machine's loopback is the namespace's own: nothing listens there.
    done = subprocess.run(
        network.command([sys.executable, "-c", PROBE, "127.0.0.1", str(listener), "1"]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("ConnectionRefusedError")


def test_link_down_is_no_route_and_up_again_works(network: BoardNetwork, listener: int) -> None:
    network.set_link(up=False)
    assert connect_from_board(network, listener).startswith("OSError 101")  # ENETUNREACH
    network.set_link(up=True)
    assert connect_from_board(network, listener) == "ok"


def test_blackhole_drops_silently_and_lifts(network: BoardNetwork, listener: int) -> None:
    network.set_blackhole(on=True)
    assert connect_from_board(network, listener, timeout=0.5).startswith("TimeoutError")
    network.set_blackhole(on=False)
    assert connect_from_board(network, listener) == "ok"


def test_rate_limit_keeps_the_link_working(network: BoardNetwork, listener: int) -> None:
    network.set_rate(16)
    qdisc = subprocess.run(["tc", "qdisc", "show", "dev", network.host_if], capture_output=True, text=True)
    assert "tbf" in qdisc.stdout and "16Kbit" in qdisc.stdout
    assert connect_from_board(network, listener) == "ok"
    network.set_rate(None)


def test_remove_takes_namespace_and_both_interfaces(network: BoardNetwork) -> None:
    network.remove()
    assert network.namespace not in namespaces()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert network.host_if not in links


def test_network_for_gives_the_same_network_and_remakes_it_after_remove() -> None:
    board = f"same-{id(object())}"
    first = netns.network_for(board)
    assert first is not None
    try:
        address = first.host_address
        assert netns.network_for(board) is first
        first.remove()
        again = netns.network_for(board)
        assert again is first and again.exists and again.host_address == address
    finally:
        first.remove()


def test_what_a_killed_run_left_is_removed_at_the_next_start() -> None:
    # The owner makes its network and is SIGKILLed: no teardown, no atexit. Its namespace stays
    # until the next run looks (network_for calls remove_stale).
    code = (
        "from rig import netns; import os; n = netns.network_for('k'); "
        "print(n.namespace, flush=True); os.kill(os.getpid(), 9)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    name = done.stdout.strip()
    assert name.startswith(netns.NAMESPACE_PREFIX) and name in namespaces()
    assert name in netns.remove_stale()
    assert name not in namespaces()


# Holds the network allocation lock until its stdin closes; says HELD once it has it.
HOLDER = """
import sys
from rig import netns
with netns.allocation_lock(timeout=10):
    print("HELD", flush=True)
    sys.stdin.read()
"""


def test_a_held_allocation_lock_is_a_bounded_error_naming_its_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "HELD\n"
        monkeypatch.setattr(netns, "ALLOCATION_WAIT_S", 0.3)
        with pytest.raises(LockBusy) as busy:
            netns.network_for(f"waits-{id(object())}")
        message = str(busy.value)
        assert message.startswith("the virtual boards' network allocation (rig.netns) is in use by ")
        assert f"pid {holder.pid} (" in message and "purpose making a virtual board's network" in message
        assert message.endswith("waited 0.3s")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
