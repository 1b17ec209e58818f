"""The bench machine's address as a board on the network sees it (``broker_host: auto``).

The address is the one on the interface the user names (``--rig-broker-interface``,
``$RIG_BROKER_INTERFACE``, ``rig deploy --broker-interface``), else the one the kernel would
send from toward the board, else toward the default route. The default route is a guess: with a
VPN, Docker or two network cards it may be the wrong network, so every choice says which
interface it took and why (``AddressChoice.describe``), and the run's header and ``rig deploy``
print it.

The address of a named interface is read with the ``SIOCGIFADDR`` ioctl: one call of the
standard library on Linux (where the rig runs), rather than a dependency (psutil, netifaces) or
parsing ``ip addr``'s output.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import socket
import struct
from dataclasses import dataclass

from rig import settings
from rig.errors import ConfigError

# A TEST-NET-1 address (RFC 5737): routable in form, never in use. Connecting a UDP socket to it
# sends nothing; it only asks the kernel which local address it would route from.
_PROBE = ("192.0.2.1", 9)
_SIOCGIFADDR = 0x8915  # linux/sockios.h
_IFNAMSIZ = 16
INTERFACE = settings.option("broker-interface")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddressChoice:
    """An address chosen for the board to reach this machine by, and why that one."""

    address: str
    interface: str | None
    why: str

    def describe(self) -> str:
        on = f" on {self.interface}" if self.interface else ""
        return f"{self.address}{on} ({self.why})"


# The interface named for this process by a command line (pytest's or rig's), and where.
_named: tuple[str, str] | None = None
# Every choice made in this process, for the run's header and records; and the latest one.
_choices: list[AddressChoice] = []
_last: AddressChoice | None = None


def use_interface(name: str | None, source: str) -> None:
    """Take the broker's address from interface ``name`` (None: back to the variable, then the
    default route); ``source`` names the option that said so, for messages."""
    global _named
    _named = (name, source) if name else None


def named_interface() -> tuple[str, str] | None:
    """The interface to use and who named it: a command line, else ``$RIG_BROKER_INTERFACE``."""
    if _named is not None:
        return _named
    from_env = INTERFACE.from_environment()
    return (from_env, f"${INTERFACE.env}") if from_env is not None else None


def choices() -> list[AddressChoice]:
    """The addresses chosen so far in this process, oldest first."""
    return list(_choices)


def last_choice() -> AddressChoice | None:
    """The choice the latest ``choose_address`` made (a new object at each call)."""
    return _last


def interface_address(name: str, source: str) -> str:
    """The IPv4 address of interface ``name``; ConfigError naming ``source`` when there is no
    such interface (listing those there are) or it has no IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            request = struct.pack(f"{_IFNAMSIZ}s", name.encode()[: _IFNAMSIZ - 1])
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request + bytes(24))
        except OSError as e:
            if e.errno == errno.ENODEV:
                known = ", ".join(n for _, n in socket.if_nameindex())
                raise ConfigError(
                    source, "broker-interface", f"no interface {name!r} here (there are: {known})"
                ) from e
            if e.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    source, "broker-interface", f"interface {name!r} has no IPv4 address"
                ) from e
            raise ConfigError(source, "broker-interface", f"cannot read the address of {name!r}: {e}") from e
    return socket.inet_ntoa(answer[20:24])


def _interface_of(address: str) -> str | None:
    """The interface that holds ``address``, for saying which one the kernel picked."""
    for _, name in socket.if_nameindex():
        try:
            if interface_address(name, "") == address:
                return name
        except ConfigError:
            continue
    return None


def choose_address(source: str = "broker_host: auto", toward: str | None = None) -> AddressChoice:
    """The local address a board reaches this machine by. ``toward``: the board's own address
    (a board in a network the rig made): the route toward it decides, and nothing else can be
    right. Otherwise the named interface (``named_interface``), else the default route's.
    Raises ConfigError when there is no usable address, saying what to set."""
    named = named_interface() if toward is None else None
    if named is not None:
        name, said_by = named
        address = interface_address(name, said_by)
        why = f"named by {said_by}"
        interface: str | None = name
    else:
        address = _routed_address(source, toward)
        interface = _interface_of(address)
        why = (
            f"the route toward the board's {toward}"
            if toward is not None
            else f"the default route's interface; set {INTERFACE.flag} or ${INTERFACE.env} to choose another"
        )
    if address.startswith("127.") or address == "0.0.0.0":
        where = f"interface {interface!r}" if named is not None else "this machine's only route"
        raise ConfigError(
            named[1] if named is not None else source,
            "broker-interface" if named is not None else "broker_host",
            f"{where} gives {address}, which a board on the network cannot reach; name another "
            f"interface ({INTERFACE.flag}) or write the broker's address as the board sees it",
        )
    global _last
    choice = _last = AddressChoice(address, interface, why)
    if choice not in _choices:
        _choices.append(choice)
        _log.info("broker address for the board: %s", choice.describe())
    return choice


def _routed_address(source: str, toward: str | None) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((toward, _PROBE[1]) if toward is not None else _PROBE)
            return str(probe.getsockname()[0])
        except OSError as e:
            raise ConfigError(
                source,
                "broker_host",
                f"cannot find this machine's LAN address ({e}); name the interface the board's "
                f"network is on ({INTERFACE.flag} / ${INTERFACE.env}) or write the broker's address "
                "as the board sees it",
            ) from e


def bench_address(source: str = "broker_host: auto", toward: str | None = None) -> str:
    """``choose_address``'s address alone."""
    return choose_address(source, toward).address
