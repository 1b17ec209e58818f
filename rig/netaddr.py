"""The bench machine's address as a board on the network sees it."""

from __future__ import annotations

import socket

from rig.errors import ConfigError

# A TEST-NET-1 address (RFC 5737): routable in form, never in use. Connecting a UDP socket to it
# sends nothing; it only asks the kernel which local address it would route from.
_PROBE = ("192.0.2.1", 9)


def bench_address(source: str = "broker_host: auto", toward: str | None = None) -> str:
    """The local address on the interface that holds the route toward ``toward`` (a board's
    address), by default the default route: toward the LAN that a Wi-Fi board shares with the
    bench. Raises ConfigError when the machine has no such route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((toward, _PROBE[1]) if toward is not None else _PROBE)
            address = str(probe.getsockname()[0])
        except OSError as e:
            raise ConfigError(
                source,
                "broker_host",
                f"cannot find this machine's LAN address ({e}); "
                "write the broker's address as the board sees it",
            ) from e
    if address.startswith("127.") or address == "0.0.0.0":
        raise ConfigError(
            source,
            "broker_host",
            f"this machine's only route is {address}; write the broker's address as the board sees it",
        )
    return address
