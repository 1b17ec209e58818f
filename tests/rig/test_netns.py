"""The virtual board's own network (rig.netns): made, shaped and removed with real ``ip``/``tc``,
judged by real TCP connections from inside the namespace to a listener on the host side."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import netns
from rig.lock import LockBusy
from rig.netns import BoardNetwork, OutOfReach

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


def test_a_removed_networks_subnet_stays_this_runs_and_no_other_run_takes_it() -> None:
    # A board stopped removes its network and starts again on the same addresses; meanwhile
    # another run (here a child process) must not be given that /30, whose interfaces are gone.
    board = f"kept-{id(object())}"
    mine = netns.network_for(board)
    assert mine is not None
    try:
        mine.remove()
        code = (
            "from rig import netns; n = netns.network_for('other'); print(n.subnet, flush=True); n.remove()"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-c", code]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() != str(mine.subnet), (
            f"another run was given {mine.subnet}, which this run's stopped board still holds"
        )
        again = netns.network_for(board)
        assert again is mine and again.exists
    finally:
        mine.remove()


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


# Holds the network allocation lock (its folder moved to argv[1], so that the test holds no
# other run's) until its stdin closes; says HELD once it has it.
HOLDER = """
import sys
from pathlib import Path
from rig import netns
netns.ALLOCATION_LOCK_DIR = Path(sys.argv[1])
with netns.allocation_lock(timeout=10):
    print("HELD", flush=True)
    sys.stdin.read()
"""


def test_a_held_allocation_lock_is_a_bounded_error_naming_its_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The two runs keep their board locks apart, yet share this kernel's subnets: the allocation
    # lock is the machine's, whatever $RIG_LOCK_DIR says.
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "my-locks"))
    monkeypatch.setattr(netns, "ALLOCATION_LOCK_DIR", tmp_path / "allocation")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "allocation")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), RIG_LOCK_DIR=str(tmp_path / "other-locks")),
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


@pytest.fixture
def reachable_by_all() -> Iterator[Path]:
    """A folder of the temp folder that every user reaches (pytest's tmp_path sits in one of
    root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="rig-test-netns-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


def test_no_other_user_can_plant_or_hold_the_allocation_lock(
    reachable_by_all: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real folder, as every run uses it. Board locks in a folder any user reaches, so that
    # the allocation lock would be within their reach too if it were kept with them.
    monkeypatch.setenv("RIG_LOCK_DIR", str(reachable_by_all / "locks"))
    lock = netns.allocation_lock(timeout=10)
    with lock:
        folder = os.lstat(lock.path.parent)
        file_mode = stat.S_IMODE(os.lstat(lock.path).st_mode)
    # What another user (nobody) meets: neither the lock file (to hold it) nor the folder (to
    # plant a FIFO or a symlink under a lock's name before root makes it). A shell: this
    # interpreter may sit where nobody can run it.
    attempt = (
        'if (exec 3<"$1") 2>/dev/null; then echo "opened $1"; else echo "refused $1"; fi; '
        'if (exec 3>>"$2") 2>/dev/null; then echo "created $2"; else echo "refused $2"; fi'
    )
    planted = lock.path.with_name("planted.lock")
    done = subprocess.run(
        ["sh", "-c", attempt, "sh", str(lock.path), str(planted)],
        user=65534,
        group=65534,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.splitlines() == [f"refused {lock.path}", f"refused {planted}"]
    assert lock.path.parent == netns.ALLOCATION_LOCK_DIR
    assert (folder.st_uid, stat.S_IMODE(folder.st_mode), file_mode) == (0, 0o700, 0o600)


# -- what the board reaches -------------------------------------------------------------------

# Connects to HOST:PORT from inside the namespace, sends a line and prints what came back.
ECHO_PROBE = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(b"ping from the board\\n")
    print(s.makefile("rb").readline().decode().strip())
"""


@pytest.fixture
def echo_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A line echo server on ``request.param`` (an address of this machine), in a thread."""
    host = getattr(request, "param", "127.0.0.1")
    server = socket.create_server((host, 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"echo: " + conn.makefile("rb").readline())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield host, server.getsockname()[1]
    stop.set()
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


def echo_from_board(network: BoardNetwork, port: int) -> str:
    done = subprocess.run(
        network.command([sys.executable, "-c", ECHO_PROBE, network.host_address, str(port)]),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def test_a_service_on_this_machines_loopback_is_relayed_to_the_board(
    network: BoardNetwork, echo_server: tuple[str, int]
) -> None:
    host, port = echo_server
    # Without the relay the board finds nothing there: its 127.0.0.1 is its own.
    assert "ConnectionRefusedError" in echo_from_board(network, port)
    network.reach(host, port)
    assert [r.target for r in network.relays] == [(host, port)]
    assert echo_from_board(network, port) == "echo: ping from the board"
    network.reach(host, port)  # idempotent
    assert len(network.relays) == 1 and network.relays[0].connections == 1  # the board's
    network.unreach(host, port)
    assert network.relays == []
    assert "ConnectionRefusedError" in echo_from_board(network, port)


@pytest.mark.parametrize("echo_server", ["0.0.0.0"], indirect=True)
def test_a_service_on_every_interface_is_reached_as_it_is(
    network: BoardNetwork, echo_server: tuple[str, int]
) -> None:
    _, port = echo_server
    network.reach("127.0.0.1", port)
    assert network.relays == []  # the host end of the link is one of its addresses already
    assert echo_from_board(network, port) == "echo: ping from the board"


def test_a_broker_elsewhere_is_out_of_reach_naming_its_address_and_the_boards_network(
    network: BoardNetwork,
) -> None:
    with pytest.raises(OutOfReach) as caught:
        network.reach("192.0.2.77", 1883)  # TEST-NET-1: never this machine's
    message = str(caught.value)
    assert message.startswith("the virtual board cannot reach the broker at 192.0.2.77:1883")
    assert network.namespace in message and network.board_address in message
    assert "RIG_VIRTUAL_NETNS=off" in message


def test_an_offered_service_reaches_networks_made_later_and_goes_with_its_withdrawal(
    echo_server: tuple[str, int],
) -> None:
    host, port = echo_server
    netns.offer_to_boards(host, port)
    network = netns.network_for(f"later-{id(object())}")
    assert network is not None
    try:
        assert echo_from_board(network, port) == "echo: ping from the board"
        netns.withdraw_from_boards(host, port)
        assert network.relays == []
        network.remove()
        network.create()  # made again (a board started again): nothing offered, nothing relayed
        assert network.relays == []
    finally:
        netns.withdraw_from_boards(host, port)
        network.remove()
