"""What each kind of board *does* differently, one object per kind, found through one registry.

``rig.inventory.spec.KindTraits`` says what a kind *is* (data: started here, networked); this
module says how the rig treats it: which transport reaches it, what its lock is keyed by, where
the broker must listen for it and how the board sees the broker, how ``rig list`` reports it.
Code above the board layer asks ``kind_of(spec)`` and never tests a kind's name, so that a new
kind (a remote labgrid place, say) is one object here and one row in ``KIND_TRAITS``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from serial.tools.list_ports_common import ListPortInfo

from rig.board import virtual_flash
from rig.board.reset import HARD_RESETS, no_hard_reset
from rig.board.transport import BoardTransport
from rig.board.usb import UsbBoard
from rig.board.virtual import VirtualBoard
from rig.discovery import BoardAmbiguous, BoardNotPresent, find_port
from rig.inventory.spec import BoardKind as KindName
from rig.inventory.spec import BoardSpec
from rig.netaddr import bench_address
from rig.netns import BoardNetwork, network_for

PortLister = Callable[[], Sequence[ListPortInfo]]

LOOPBACK = "127.0.0.1"
AUTO = "auto"


class KindBehaviour(Protocol):
    """How the rig treats one kind of board. Stateless: one instance serves every board of it."""

    def make_transport(
        self,
        spec: BoardSpec,
        workdir: Path,
        micropython: str | None,
        lister: PortLister,
        own_network: bool = False,
        busy_wait: float | None = None,
    ) -> BoardTransport:
        """The transport that makes this board present. ``workdir``: the session folder (in the
        artifacts) the board's logs go to; a virtual board's flash is kept outside it, in a
        private folder keyed by it (``rig.board.virtual_flash``). ``micropython`` is for a board
        the rig starts itself; ``lister`` for one found among the serial ports.
        ``own_network``: a board the rig starts gets a network link of its own where this machine
        allows it (a test session asks for it, so that faults can be made on the link; a bench
        command does not, so that a broker on this machine's loopback stays reachable).
        ``busy_wait``: how long a board that another user holds outside the rig's own locks (a
        labgrid place) is waited for; ``None``: ``$RIG_LOCK_TIMEOUT``, else 60 s."""

    def lock_identity(self, spec: BoardSpec, workdir: Path) -> str:
        """The key of the board's lock, used from the session folder ``workdir``: two users of
        the same board must get the same key."""

    def broker_bind_address(self, spec: BoardSpec, own_network: bool = False) -> str:
        """Where the embedded broker listens so that this board can reach it."""

    def broker_host_for_board(self, spec: BoardSpec, broker_host: str, own_network: bool = False) -> str:
        """The broker's address as the board sees it, for its config.json; ``broker_host`` is
        the address the broker listens on, as this machine sees it."""

    def found_by(self, spec: BoardSpec) -> str:
        """How the board is found, for ``rig list``."""

    def presence(self, spec: BoardSpec, ports: Sequence[ListPortInfo]) -> str:
        """Whether the board can be had now, for ``rig list``: 'available', 'present (PORT)',
        'absent', ..."""

    def note_after_deploy(self, spec: BoardSpec) -> str | None:
        """What a person should know once ``rig deploy`` has put firmware on it, if anything."""

    def no_hard_reset(self, spec: BoardSpec) -> str | None:
        """Why the rig cannot cut this board's power or pull its reset line, or None when it can:
        tests marked ``hard_reset`` skip with this reason."""


class VirtualKind:
    """The MicroPython unix port behind a pty, started by the rig on this machine, in a network
    namespace of its own where this machine allows one (``rig.netns``): it then reaches the
    broker over a link of its own, as a board on Wi-Fi does, and network faults can be made on
    that link."""

    def make_transport(
        self,
        spec: BoardSpec,
        workdir: Path,
        micropython: str | None,
        lister: PortLister,
        own_network: bool = False,
        busy_wait: float | None = None,
    ) -> BoardTransport:
        flash, note = virtual_flash.prepare(workdir, spec.name)
        if note is not None:
            warnings.warn(note, virtual_flash.OldFlashMoved, stacklevel=2)
        return VirtualBoard(spec.name, flash, micropython, _network(spec, own_network))

    def lock_identity(self, spec: BoardSpec, workdir: Path) -> str:
        # A virtual board is one flash directory: two checkouts may each run their own, but not
        # share one.
        flash = virtual_flash.flash_dir(workdir, spec.name)
        digest = hashlib.sha256(str(flash.resolve()).encode()).hexdigest()[:10]
        return f"{spec.identity}-{digest}"

    def broker_bind_address(self, spec: BoardSpec, own_network: bool = False) -> str:
        network = _network(spec, own_network)
        if network is None:
            return LOOPBACK  # the unix port shares this machine's network
        # As for a board on the LAN: this machine's address on the route toward the board.
        return bench_address(f"{spec.origin}: virtual board network", toward=network.board_address)

    def broker_host_for_board(self, spec: BoardSpec, broker_host: str, own_network: bool = False) -> str:
        network = _network(spec, own_network)
        if network is not None and ipaddress.ip_address(_resolved(broker_host)).is_loopback:
            # This machine's loopback is not the board's: a broker here (an external one given
            # as 127.0.0.1) is reached over the board's link: as it is if it listens on every
            # interface, else through the relay on the link's host end (rig.netns.offer_to_boards).
            return network.host_address
        return broker_host

    def found_by(self, spec: BoardSpec) -> str:
        return "virtual"

    def presence(self, spec: BoardSpec, ports: Sequence[ListPortInfo]) -> str:
        return "available"

    def note_after_deploy(self, spec: BoardSpec) -> str | None:
        return f"{spec.name} stops when rig exits; the firmware boots again at the next command on it"

    def no_hard_reset(self, spec: BoardSpec) -> str | None:
        return None  # the supervisor cuts MicroPython's power


class SerialKind:
    """A real board on a serial port of this machine (USB) or reachable by a pyserial URL; it
    reaches the broker over its own network."""

    def make_transport(
        self,
        spec: BoardSpec,
        workdir: Path,
        micropython: str | None,
        lister: PortLister,
        own_network: bool = False,
        busy_wait: float | None = None,
    ) -> BoardTransport:
        return UsbBoard(spec, lister)  # its network is the bench's Wi-Fi, not the rig's to make

    def lock_identity(self, spec: BoardSpec, workdir: Path) -> str:
        return spec.identity  # one physical thing wherever it is used from

    def broker_bind_address(self, spec: BoardSpec, own_network: bool = False) -> str:
        return self._host_on_board_network(spec)

    def broker_host_for_board(self, spec: BoardSpec, broker_host: str, own_network: bool = False) -> str:
        return self._host_on_board_network(spec)

    def _host_on_board_network(self, spec: BoardSpec) -> str:
        host = spec.network.broker_host
        if host in (None, AUTO):
            return bench_address(f"{spec.origin}: network.broker_host")
        return host

    def found_by(self, spec: BoardSpec) -> str:
        return spec.match.describe()

    def presence(self, spec: BoardSpec, ports: Sequence[ListPortInfo]) -> str:
        if spec.match.url:
            return f"at {spec.match.url} (a URL: not probed)"
        try:
            return f"present ({find_port(spec, ports)})"
        except BoardNotPresent:
            return "absent"
        except BoardAmbiguous as e:
            return f"ambiguous: {len(e.candidates)} ports match ({', '.join(e.candidates)})"

    def note_after_deploy(self, spec: BoardSpec) -> str | None:
        return None

    def no_hard_reset(self, spec: BoardSpec) -> str | None:
        if spec.kind in HARD_RESETS and HARD_RESETS[spec.kind] is not no_hard_reset:
            return None
        return f"board {spec.name} ({spec.kind}) has no reset line the rig can drive"


class LabgridKind(SerialKind):
    """A board behind a labgrid place on another host (``rig.board.labgrid``): taken through the
    coordinator, its console is the place's RFC2217 port, its power is labgrid's to cut. It
    reaches the broker over the lab's network, as any real board (``network.broker_host``)."""

    def make_transport(
        self,
        spec: BoardSpec,
        workdir: Path,
        micropython: str | None,
        lister: PortLister,
        own_network: bool = False,
        busy_wait: float | None = None,
    ) -> BoardTransport:
        from rig.board.labgrid import LabgridPlace  # the lab layer loads only for a place

        return LabgridPlace(spec, workdir, wait=busy_wait)

    def found_by(self, spec: BoardSpec) -> str:
        return spec.labgrid.describe() if spec.labgrid is not None else "labgrid"

    def presence(self, spec: BoardSpec, ports: Sequence[ListPortInfo]) -> str:
        return "a labgrid place"  # its state is the coordinator's: ``rig list`` asks it

    def no_hard_reset(self, spec: BoardSpec) -> str | None:
        from rig.board.labgrid import HELD

        held = HELD.get(spec.name)
        if held is None:
            return f"board {spec.name}: its labgrid place is not held by this run"
        return held.no_hard_reset()


# The one place a kind's name is looked at. Every kind of ``BOARD_KINDS`` has an entry (tested).
KINDS: dict[KindName, KindBehaviour] = {
    "virtual": VirtualKind(),
    "esp32": SerialKind(),
    "generic": SerialKind(),
    "labgrid": LabgridKind(),
}


def _network(spec: BoardSpec, own_network: bool) -> BoardNetwork | None:
    return network_for(spec.name) if own_network else None


def _resolved(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "0.0.0.0"  # unresolvable here: leave it to the board


def kind_of(spec: BoardSpec) -> KindBehaviour:
    """How the rig treats ``spec``'s kind."""
    return KINDS[spec.kind]
