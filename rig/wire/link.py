"""The capture of a board that the rig does not start: on the host's interface toward it.

A board on Wi-Fi or on a cable reaches the broker over a link of its own. Where that link
passes through this machine (its access point, router or a USB Ethernet adapter toward the
board), ``boards.yaml`` names the interface (``capture_interface``) and, when the board's
address is fixed, the address (``capture_address``). The rig then runs the same capture as on
the virtual board's veth, with a capture filter, since such an interface carries other traffic
too: TCP on the broker's ports (plain and TLS), and the board's address when it is known.
Without the address, whoever talks to the broker's ports on that interface is taken for the
board (``decode.StreamDecoder`` tells the sides apart by port).

Lifecycle: ``interface_capture`` checks the interface, on this machine, at the start of the
session (an interface missing, or not Ethernet, is ``CaptureInterfaceError``, naming the
inventory's file, line, key and value) and returns a ``WireCapture`` not yet started.
"""

from __future__ import annotations

from pathlib import Path

from rig.wire.capture import CaptureError, WireCapture

SYS_NET = Path("/sys/class/net")
# ARPHRD_ETHER: Ethernet, Wi-Fi in managed mode, veth, bridges. The capture reads Ethernet
# frames (``pcap.LINKTYPE_ETHERNET``).
_ETHERNET = 1


class CaptureInterfaceError(CaptureError):
    """The inventory's ``capture_interface`` cannot be captured on this machine. The message
    reads ``file:line: key: problem``, naming the value."""

    def __init__(self, where: str, interface: str, problem: str) -> None:
        self.where = where
        self.interface = interface
        super().__init__(f"{where}: {interface!r} {problem}")


def check_interface(interface: str, where: str, root: Path = SYS_NET) -> None:
    """Raise ``CaptureInterfaceError`` unless ``interface`` exists here and is Ethernet.
    ``where`` is ``file:line: key`` of the inventory entry that named it."""
    device = root / interface
    if not device.is_dir():
        present = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise CaptureInterfaceError(
            where,
            interface,
            f"is no network interface of this machine (it has: {', '.join(present) or 'none'}); "
            "name the host's interface toward the board, as `ip link` shows it",
        )
    try:
        kind = int((device / "type").read_text().strip())
    except (OSError, ValueError) as e:
        raise CaptureInterfaceError(where, interface, f"could not be read ({device / 'type'}: {e})") from e
    if kind != _ETHERNET:
        raise CaptureInterfaceError(
            where,
            interface,
            f"is not an Ethernet interface (ARPHRD type {kind}): the rig reads Ethernet frames; name "
            "the Ethernet or Wi-Fi interface toward the board",
        )


def capture_filter(ports: dict[int, bool], address: str | None) -> list[str]:
    """tcpdump's filter: TCP on the broker's ``ports``, to and from ``address`` if known."""
    on_ports = " or ".join(f"port {port}" for port in sorted(ports))
    expression = f"tcp and ({on_ports})"
    if address is not None:
        expression += f" and host {address}"
    return [expression]


def interface_capture(
    interface: str, address: str | None, ports: dict[int, bool], where: str, root: Path = SYS_NET
) -> WireCapture:
    """The capture of a board's traffic with the broker (``ports``: port -> TLS) on the host's
    ``interface`` toward it; see the module docstring."""
    check_interface(interface, where, root)
    return WireCapture(interface, address, ports, capture_filter(ports, address))
