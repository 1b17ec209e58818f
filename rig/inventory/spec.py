"""What the bench inventory says about a board: data only, no I/O (labgrid's "resources").

``rig.inventory.load`` builds these from ``boards.yaml``; discovery, locking, the USB transport
and the plugin consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rig.runtime.pin import RuntimePin

BoardKind = Literal["esp32", "generic", "virtual", "labgrid"]
BOARD_KINDS: tuple[BoardKind, ...] = ("esp32", "generic", "virtual", "labgrid")


@dataclass(frozen=True)
class KindTraits:
    """What a kind of board is, as data. The inventory validates entries with it; the board layer
    (``rig.board.kinds``) holds what each kind *does* (transport, reset, presence, lock identity).
    A new kind is one row here and one object there, not a test spread over the modules."""

    # The rig starts the board itself (the virtual board) instead of finding it on a serial port:
    # it has no ``match`` and is always present.
    started_here: bool
    # The board joins a network to reach the broker (Wi-Fi settings apply to it).
    networked: bool


KIND_TRAITS: dict[BoardKind, KindTraits] = {
    "esp32": KindTraits(started_here=False, networked=True),
    "generic": KindTraits(started_here=False, networked=True),
    "virtual": KindTraits(started_here=True, networked=False),
    # A labgrid place: on another host, taken through the coordinator (``rig.lab``); its board
    # joins the lab's network like any real board.
    "labgrid": KindTraits(started_here=False, networked=True),
}


# Secrets the firmware may print: hidden in every log and searched for by the audit like the
# others, but a console line that carried one fails no test. The firmware's wifi event names the
# network it joins, and an SSID kept in the environment is still that network's name.
PRINTABLE_SECRETS = frozenset({"wifi_ssid"})


@dataclass(frozen=True)
class Secret:
    """A value taken from an environment variable, never from the inventory file itself.

    ``str()`` and ``repr()`` never show the value: only ``reveal()`` does, and only the code that
    writes the board's config may call it. ``value`` is None when the variable is not set.
    """

    env: str
    value: str | None = field(default=None, repr=False, compare=False)

    def reveal(self) -> str:
        if self.value is None:
            raise LookupError(f"${self.env} is not set")
        return self.value

    def __str__(self) -> str:
        return f"${{{self.env}}}"


@dataclass(frozen=True)
class UsbMatch:
    """How to recognise a board among the serial ports present. Every given field must match.

    ``port`` is a device path or a glob (``/dev/ttyUSB*``); ``url`` is any pyserial URL
    (``rfc2217://host:port``, ``socket://host:port``) and is used as is, without discovery.
    """

    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    location: str | None = None
    port: str | None = None
    url: str | None = None

    def describe(self) -> str:
        parts = []
        if self.vid is not None or self.pid is not None:
            vid = f"{self.vid:04x}" if self.vid is not None else "*"
            pid = f"{self.pid:04x}" if self.pid is not None else "*"
            parts.append(f"vid:pid {vid}:{pid}")
        for name in ("serial_number", "location", "port", "url"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value}")
        return ", ".join(parts) or "anything"

    @property
    def is_empty(self) -> bool:
        return all(
            getattr(self, name) is None for name in ("vid", "pid", "serial_number", "location", "port", "url")
        )


@dataclass(frozen=True)
class LabgridSpec:
    """A board that is a labgrid place: taken by ``place`` name, or reserved by ``tags`` (any
    place whose tags include them all). ``coordinator`` is HOST[:PORT]; None means
    ``$LG_COORDINATOR``, else labgrid's default."""

    place: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    coordinator: str | None = None

    def describe(self) -> str:
        wanted = f"place {self.place}" if self.place else "tags " + ",".join(f"{k}={v}" for k, v in self.tags)
        return f"labgrid {wanted}" + (f" at {self.coordinator}" if self.coordinator else "")


@dataclass(frozen=True)
class NetworkSpec:
    """How the board reaches the broker. ``broker_host`` is the broker as the *board* sees it;
    "auto" means the bench machine's address on the interface toward the board's network."""

    wifi_ssid: str | Secret | None = None
    wifi_password: Secret | None = None
    broker_host: str | None = None
    broker_user: str | Secret | None = None
    broker_password: Secret | None = None


@dataclass(frozen=True)
class CaptureSpec:
    """Where the rig may watch a board's traffic with the broker on this machine:
    ``capture_interface``, the host's interface toward the board (a board on Wi-Fi whose access
    point or router is this machine, or a board on a cable), and ``capture_address``, the board's
    address there when it is fixed (None: whoever talks to the broker's ports on that interface
    is taken for the board). ``origin`` is ``file:line`` of the interface's key, and ``key`` its
    dotted key, for the error when the interface is not there at start."""

    interface: str
    address: str | None = None
    origin: str = ""
    key: str = "capture_interface"


@dataclass(frozen=True)
class BoardSpec:
    """One board of the bench. ``origin`` is ``file:line`` of its entry, for error messages."""

    name: str
    kind: BoardKind
    match: UsbMatch = field(default_factory=UsbMatch)
    tags: frozenset[str] = frozenset()
    network: NetworkSpec = field(default_factory=NetworkSpec)
    baudrate: int = 115200
    origin: str = ""
    # Set for (and only for) a board of kind "labgrid".
    labgrid: LabgridSpec | None = None
    # The MicroPython it must run (``runtime:`` of the board, of one of its tags, or of defaults).
    runtime: RuntimePin | None = None
    # The host's interface toward a board that is not started here (``capture_interface``), for
    # the wire witness (``rig.wire``); None: the rig has no view of its link.
    capture: CaptureSpec | None = None

    @property
    def traits(self) -> KindTraits:
        return KIND_TRAITS[self.kind]

    @property
    def identity(self) -> str:
        """A stable key for locking: the same physical board gives the same key whatever
        /dev name it has today."""
        m = self.match
        if self.traits.started_here:
            return f"{self.kind}-{self.name}"
        if self.labgrid is not None:
            return "labgrid-" + self.labgrid.describe()
        if m.serial_number:
            vid = f"{m.vid:04x}" if m.vid is not None else "any"
            return f"usb-{vid}-{m.serial_number}"
        if m.url:
            return "url-" + m.url
        if m.location:
            return "location-" + m.location
        return "name-" + self.name

    def secrets(self) -> list[Secret]:
        net = self.network
        values = (net.wifi_ssid, net.wifi_password, net.broker_user, net.broker_password)
        return [v for v in values if isinstance(v, Secret)]

    def secret_values(self) -> dict[str, str]:
        """The values of this board's ``${VAR}`` settings that are set, by key: what the board's
        console hides and the secrets audit searches for. An SSID given as ``${VAR}`` is one too:
        whoever wrote it so keeps the network's name out of the inventory, so it stays out of the
        artifacts as well (see ``PRINTABLE_SECRETS``)."""
        net = self.network
        named = {
            "wifi_ssid": net.wifi_ssid,
            "wifi_password": net.wifi_password,
            "broker_user": net.broker_user,
            "broker_password": net.broker_password,
        }
        return {key: v.value for key, v in named.items() if isinstance(v, Secret) and v.value}
