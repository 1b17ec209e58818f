"""The virtual board's network: a namespace of its own, joined to this machine by a veth pair.

A board on Wi-Fi reaches the broker over a link that can go down, drop packets or crawl, and
has an address of its own. The unix port would otherwise share this machine's loopback, where
none of that can happen. So the virtual board runs in a network namespace (``rigvb-<pid>-<n>``)
whose one interface is the board end of a veth pair; the host end holds the broker's side of a
/30 in 10.213.0.0/16. Faults are then made on that link with ``ip`` and ``tc`` only (this
kernel has no netem, no tc drop action, no iptables/nft):

- link down: the board's interface down, as a board that lost its access point sees it;
- blackhole: a ``tbf`` qdisc with a one-byte bucket on both ends: every packet is larger than
  the bucket and is dropped silently, so neither side hears of it;
- slow link: a ``tbf`` rate limit on both ends.

Lifecycle: ``network_for(name)`` creates the board's network on first use in this process
(removing first what dead runs left behind: names carry the owner's PID) and returns the same
object afterwards; the virtual board ``remove()``s it when it stops, and gets the same addresses
when it starts again: its /30 stays reserved to this process (``RESERVATIONS_DIR``) until it
exits; an atexit hook removes whatever is left. A
process killed with SIGKILL leaves its namespace behind, and the next run removes it.
``unavailable()`` says why no namespace can be made here (not root, no ``ip``): the virtual board
then shares this machine's network, as before, and the network faults skip with that reason.

What the board reaches: its link only, so the host end of it (``host_address``), where the rig's
own broker listens. A broker on this machine's loopback (an external one given as 127.0.0.1, as
a user tries one) is offered to the boards with ``offer_to_boards(host, port)``: each network
then relays ``host_address:port`` to it (``rig.tcp_relay``, which says why a relay), unless the
broker listens on every interface and is there already. A broker elsewhere (the LAN, the
internet) is out of the namespace's reach: offering it raises ``OutOfReach`` at once, naming the
address and the board's network, rather than leaving each test to wait for a hello that cannot
come.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

from rig.errors import InfrastructureError
from rig.lock import NamedLock
from rig.processes import is_running
from rig.settings import VIRTUAL_NETNS
from rig.tcp_relay import TcpRelay

NAMESPACE_PREFIX = "rigvb"
# Interface names are at most 15 bytes: "rv<pid>h<n>" / "rv<pid>b<n>".
_HOST_IF = re.compile(r"^rv(\d+)h(\d+)$")
_NAMESPACE = re.compile(rf"^{NAMESPACE_PREFIX}-(\d+)-(\d+)$")
SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
# Set to "off" to run the virtual board on this machine's network even where a namespace works.
ENV_SWITCH = VIRTUAL_NETNS.env
# A bound on each ip/tc call: they talk to the kernel and return at once.
_COMMAND_S = 10.0
# How long a run waits for another to finish making its board's network: the holder runs about
# ten ip commands (plus one per stale namespace it clears), each bounded by _COMMAND_S, and
# finishes in well under a second; a minute means it is stuck, and the error names it.
ALLOCATION_WAIT_S = 60.0
ALLOCATION_LOCK = "netns-allocation"
# The allocation lock's folder: private to root, which alone makes namespaces, so no other user
# can plant, hold or replace its file (in the board locks' folder, open to every user, one
# could). Beside /run/netns, where `ip netns` keeps the names it guards, and not under
# $RIG_LOCK_DIR: the subnets are this kernel's, shared by every run whatever lock folder it uses.
ALLOCATION_LOCK_DIR = Path("/run/micropython-mqtt-rig")
# Each /30 a live process holds, removed network or not: a file per network, named by its owner's
# PID and index, holding the subnet. A board stopped removes its network but keeps its addresses
# for when it starts again (a broker bound to the host side keeps working); meanwhile no interface
# shows the subnet, and another run took it: two links with one address, and a board whose
# broker timed out (seen under CI's parallel runs, a group's board started again for the next
# permutation). Root's alone, beside the allocation lock.
RESERVATIONS_DIR = ALLOCATION_LOCK_DIR / "subnets"
# A one-byte bucket passes no packet: tbf drops what is larger than its burst.
_BLACKHOLE = ["tbf", "rate", "8bit", "burst", "1", "limit", "1"]
# Whether a broker on every interface answers on the link's host end: a local connect, at once.
_PROBE_S = 1.0


class NetworkError(InfrastructureError):
    """An ``ip`` or ``tc`` command failed: the rig could not make or change the board's network."""

    def __init__(self, command: list[str], detail: str) -> None:
        self.command = command
        self.detail = detail
        super().__init__(f"{' '.join(command)}: {detail}")


class OutOfReach(InfrastructureError):
    """A service the board needs (its broker) cannot be reached from the board's own network.

    Every later test would meet it again, so it stops the run (``stops_run``: the plugin ends the
    session after the test that met it, the message said once)."""

    stops_run = True

    def __init__(self, network: BoardNetwork, host: str, port: int, why: str) -> None:
        self.network = network
        self.host = host
        self.port = port
        super().__init__(
            f"the virtual board cannot reach the broker at {host}:{port}: it runs in network "
            f"namespace {network.namespace} (address {network.board_address}/{network.subnet.prefixlen}, "
            f"one link, to this machine at {network.host_address}), and {why}. Give a broker on "
            f"this machine (loopback or every interface), or set ${ENV_SWITCH}=off to run the "
            "board on this machine's network (the tests that cut, blackhole or slow its link "
            "then skip)"
        )


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_COMMAND_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetworkError(command, str(e)) from e
    if done.returncode != 0:
        raise NetworkError(command, done.stderr.strip() or f"exit code {done.returncode}")
    return done.stdout


def unavailable() -> str | None:
    """Why the virtual board cannot have a network of its own here, or None if it can."""
    if (VIRTUAL_NETNS.read() or "").lower() in ("0", "off", "no"):
        return f"${ENV_SWITCH} is off: the virtual board shares this machine's network"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root; the virtual board shares this machine's network"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "no `ip`/`tc` command (iproute2): the virtual board shares this machine's network"
    return None


class BoardNetwork:
    """One board's namespace and veth pair. See the module docstring for the lifecycle."""

    def __init__(self, owner: int, index: int, subnet: ipaddress.IPv4Network) -> None:
        self.owner, self.index = owner, index
        self.namespace = f"{NAMESPACE_PREFIX}-{owner}-{index}"
        self.host_if = f"rv{owner}h{index}"
        self.board_if = f"rv{owner}b{index}"
        self.subnet = subnet
        hosts = list(subnet.hosts())
        self.host_address = str(hosts[0])
        self.board_address = str(hosts[1])
        self.exists = False
        # Relays to services of this machine's loopback (see the module docstring), while it exists.
        self.relays: list[TcpRelay] = []

    def __repr__(self) -> str:
        return (
            f"<BoardNetwork {self.namespace} {self.host_if}={self.host_address} board={self.board_address}>"
        )

    def create(self) -> None:
        prefix = self.subnet.prefixlen
        try:
            _run(["ip", "netns", "add", self.namespace])
            self.exists = True
            _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.board_if,
                  "netns", self.namespace])  # fmt: skip
            _run(["ip", "addr", "add", f"{self.host_address}/{prefix}", "dev", self.host_if])
            _run(["ip", "link", "set", self.host_if, "up"])
            _run(["ip", "-n", self.namespace, "addr", "add", f"{self.board_address}/{prefix}",
                  "dev", self.board_if])  # fmt: skip
            _run(["ip", "-n", self.namespace, "link", "set", "lo", "up"])
            _run(["ip", "-n", self.namespace, "link", "set", self.board_if, "up"])
            for host, port in _offered:
                self.reach(host, port)
        except InfrastructureError:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the namespace; its end of the veth goes with it, and the host end with that."""
        if not self.exists:
            return
        self.exists = False
        relays, self.relays = self.relays, []
        for relay in relays:
            relay.stop()
        errors = []
        for command in (["ip", "netns", "del", self.namespace], ["ip", "link", "del", self.host_if]):
            try:
                _run(command)
            except NetworkError as e:
                errors.append(e)
        # The second fails when the first took the pair with it, as it should.
        if len(errors) == 2:
            raise errors[0]

    def reach(self, host: str, port: int) -> None:
        """Make ``host:port`` (a service as this machine addresses it) reachable from the board
        at ``host_address:port``; raise ``OutOfReach`` when it cannot be. Idempotent."""
        address = _resolve(host)
        if address is None:
            raise OutOfReach(self, host, port, f"{host!r} does not resolve on this machine")
        if address == ipaddress.ip_address(self.host_address):
            return  # the link's own host end: reached directly
        if not address.is_loopback:
            raise OutOfReach(
                self, host, port, f"{address} is neither this machine's loopback nor on the board's link"
            )
        if any(r.target == (host, port) for r in self.relays):
            return
        if _accepts_connections(self.host_address, port):
            return  # the broker listens on every interface: the board reaches it as it is
        relay = TcpRelay((self.host_address, port), (host, port), name=f"relay {self.namespace} {port}")
        relay.start()
        self.relays.append(relay)

    def unreach(self, host: str, port: int) -> None:
        """Stop relaying to ``host:port`` (its broker stopped)."""
        for relay in [r for r in self.relays if r.target == (host, port)]:
            self.relays.remove(relay)
            relay.stop()

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the board's namespace (``ip netns exec`` execs: same PID)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    # -- faults ------------------------------------------------------------------------------

    def set_link(self, up: bool) -> None:
        """The board's interface up or down: Wi-Fi joined or lost, as the board sees it."""
        _run(["ip", "-n", self.namespace, "link", "set", self.board_if, "up" if up else "down"])

    def set_blackhole(self, on: bool) -> None:
        """Drop every packet both ways, silently: no error reaches either end."""
        self._shape(_BLACKHOLE if on else None)

    def set_rate(self, kbit: int | None) -> None:
        """Limit the link to ``kbit`` kbit/s both ways; None lifts the limit."""
        if kbit is None:
            self._shape(None)
        else:
            # A burst of a few full frames and a queue of 200 ms: slow, but nothing dropped for
            # MQTT's small packets.
            self._shape(["tbf", "rate", f"{kbit}kbit", "burst", "4kb", "latency", "200ms"])

    def _shape(self, qdisc: list[str] | None) -> None:
        for prefix, dev in ((["tc"], self.host_if), (["tc", "-n", self.namespace], self.board_if)):
            if qdisc is None:
                with contextlib.suppress(NetworkError):  # none there: nothing to lift
                    _run([*prefix, "qdisc", "del", "dev", dev, "root"])
            else:
                _run([*prefix, "qdisc", "replace", "dev", dev, "root", *qdisc])


# -- one network per board, per process ------------------------------------------------------

# Kept after a network is removed, so that the board started again gets the same addresses (a
# broker bound to the host side keeps working).
_networks: dict[str, BoardNetwork] = {}


def network_for(board: str) -> BoardNetwork | None:
    """The network of virtual board ``board`` in this process, created on first use (and again
    after a ``remove()``, with the same names and addresses); None where namespaces cannot be
    made (``unavailable()`` says why)."""
    if unavailable() is not None:
        return None
    network = _networks.get(board)
    if network is not None:
        if not network.exists:
            network.create()
        return network
    with allocation_lock():
        remove_stale()
        network = BoardNetwork(os.getpid(), len(_networks), _free_subnet())
        _reserve(network)
        network.create()
    _networks[board] = network
    return network


def _reservation(owner: int, index: int) -> Path:
    return RESERVATIONS_DIR / f"{owner}-{index}"


def _reserve(network: BoardNetwork) -> None:
    """Record that this process holds ``network``'s subnet until it exits (under the lock)."""
    RESERVATIONS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    _reservation(network.owner, network.index).write_text(f"{network.subnet}\n")


def _reserved() -> set[ipaddress.IPv4Network]:
    """The subnets live processes hold (see ``RESERVATIONS_DIR``); a dead owner's are removed."""
    held: set[ipaddress.IPv4Network] = set()
    if not RESERVATIONS_DIR.is_dir():
        return held
    for entry in RESERVATIONS_DIR.iterdir():
        owner = entry.name.split("-", 1)[0]
        if not owner.isdigit() or not is_running(int(owner)):
            entry.unlink(missing_ok=True)
            continue
        with contextlib.suppress(OSError, ValueError):
            held.add(ipaddress.IPv4Network(entry.read_text().strip()))
    return held


# Services of this machine that every board network of this process must reach (see the
# module docstring), as (host, port), in the order they were offered.
_offered: list[tuple[str, int]] = []


def offer_to_boards(host: str, port: int) -> None:
    """Make ``host:port`` reachable from every virtual board's own network of this process, now
    and when one is made later (``BoardNetwork.reach``). Raises ``OutOfReach`` when a network
    that exists cannot reach it; a network made later raises it when it is made."""
    if (host, port) not in _offered:
        _offered.append((host, port))
    for network in _networks.values():
        if network.exists:
            network.reach(host, port)


def withdraw_from_boards(host: str, port: int) -> None:
    """Undo ``offer_to_boards``: stop its relays."""
    if (host, port) in _offered:
        _offered.remove((host, port))
    for network in _networks.values():
        network.unreach(host, port)


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_S):
            return True
    except OSError:
        return False


def _resolve(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.ip_address(socket.gethostbyname(host))
    except OSError:
        return None


@atexit.register
def _remove_all() -> None:
    for network in _networks.values():
        with contextlib.suppress(NetworkError):
            network.remove()
        _reservation(network.owner, network.index).unlink(missing_ok=True)


def remove_stale() -> list[str]:
    """Remove namespaces and host interfaces that runs now dead left behind; return their names."""
    removed = []
    for name in _run(["ip", "netns", "list"]).split():
        match = _NAMESPACE.match(name)
        if match and not is_running(int(match.group(1))):
            with contextlib.suppress(NetworkError):
                _run(["ip", "netns", "del", name])
                removed.append(name)
    for line in _run(["ip", "-o", "link", "show"]).splitlines():
        fields = line.split(":")
        if len(fields) < 2:
            continue
        name = fields[1].strip().split("@")[0]
        match = _HOST_IF.match(name)
        if match and not is_running(int(match.group(1))):
            with contextlib.suppress(NetworkError):
                _run(["ip", "link", "del", name])
                removed.append(name)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    used = set()
    for line in _run(["ip", "-o", "-4", "addr", "show"]).splitlines():
        for word in line.split():
            with contextlib.suppress(ValueError):
                interface = ipaddress.ip_interface(word)
                if interface.ip in SUBNETS:
                    used.add(interface.network.supernet(new_prefix=30))
    used |= _reserved()
    for subnet in SUBNETS.subnets(new_prefix=30):
        if subnet not in used and all(n.subnet != subnet for n in _networks.values()):
            return subnet
    raise NetworkError(["ip", "addr"], f"no free /30 left in {SUBNETS}")


def allocation_lock(timeout: float | None = None) -> NamedLock:
    """The lock that two runs on one machine take to make their boards' networks: without it,
    both could pick the same subnet between look and assign. Taken with ``with``; a holder that
    keeps it past ``timeout`` (default ``ALLOCATION_WAIT_S``) raises ``LockBusy`` naming it.
    Its file is in ``ALLOCATION_LOCK_DIR``, root's alone; a folder there that is not raises
    ``UntrustedFolder``."""
    return NamedLock(
        ALLOCATION_LOCK,
        ALLOCATION_LOCK_DIR,
        private=True,
        subject="the virtual boards' network allocation (rig.netns)",
        purpose="making a virtual board's network",
        timeout=ALLOCATION_WAIT_S if timeout is None else timeout,
    )
