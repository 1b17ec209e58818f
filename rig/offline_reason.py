"""Why a board never came online, named: it did not join Wi-Fi, or it joined and did not reach the
broker.

A first real board most often fails before MQTT: a wrong SSID, an access point out of range, a
``broker_host`` on the wrong interface, a firewall that drops the broker's port. Each looks the
same from the broker (nothing arrives), so the firmware says which on its console
(``wifi_failed``, ``broker_unreachable``: firmware/wifi.py, firmware/connect_retry.py) and the
rig's wait for the board names it, with what to check.

The console is the second witness, never the only one: when the broker's records show the
board's CONNECT, a ``broker_unreachable`` on the console is not believed, and the message says
that the broker saw the board. Without either event (a firmware that prints neither, or one that
swallowed its failure) the wait's own message stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.broker import Broker
from rig.broker.records import Connect
from rig.errors import WaitTimeout
from rig.firmware_config import FirmwareConfig

# Made when the wait begins; asked once it timed out: did the broker record a CONNECT of this
# client id since? None: this broker keeps no records (an external one), nobody to ask.
ConnectProbe = Callable[[str], bool | None]
ConnectWitness = Callable[[], ConnectProbe]


class BoardOffline(WaitTimeout):
    """The wait for a board to come online timed out, and its console said why. ``event`` is
    that console line, parsed."""

    def __init__(
        self, awaited: str, timeout: float, last_seen: list[str], log_path: Path | None, event: dict[str, Any]
    ) -> None:
        super().__init__(awaited, timeout, last_seen, log_path)
        self.event = event


class WifiNotJoined(BoardOffline):
    """The board's console says it did not join Wi-Fi (``wifi_failed``)."""


class BrokerNotReached(BoardOffline):
    """The board's console says it joined Wi-Fi but could not reach the broker
    (``broker_unreachable``), and the broker's records, where it keeps any, agree: no CONNECT."""


@dataclass(frozen=True)
class Reason:
    """What to add to a wait's message, and the error class that says it."""

    text: str
    error: type[BoardOffline] | None  # None: the console's word, not believed
    event: dict[str, Any]


def why_offline(
    events: Sequence[dict[str, Any]], config: FirmwareConfig, broker_saw_connect: bool | None
) -> Reason | None:
    """The reason the board's last ``wifi_failed`` or ``broker_unreachable`` among ``events``
    (its console's since it booted) gives, checked against the broker's word; None without one."""
    for event in reversed(events):
        if event.get("ev") == "wifi_failed":
            return Reason(
                f"the board did not join Wi-Fi ({event.get('status')} after {event.get('ms')} ms: "
                "check wifi_ssid and wifi_password in the inventory and that the access point is "
                "in range; see docs/first-real-board.md)",
                WifiNotJoined,
                event,
            )
        if event.get("ev") == "broker_unreachable":
            where = f"{config.broker_host}:{config.broker_port}"
            said = f"{event.get('error')}, attempt {event.get('attempt')}"
            if broker_saw_connect:
                return Reason(
                    f"the board's console says it did not reach the broker at {where} ({said}), "
                    "but the broker recorded its CONNECT: judged by the broker, the board reached "
                    "it and then did not say hello",
                    None,
                    event,
                )
            unchecked = "" if broker_saw_connect is False else "; no broker records to check it against"
            return Reason(
                f"the board joined Wi-Fi but did not reach the broker at {where} ({said}: check "
                f"broker_host, the broker's port and this machine's firewall with `rig doctor`{unchecked})",
                BrokerNotReached,
                event,
            )
    return None


def offline_error(
    reason: Reason | None,
    awaited: str,
    timeout: float,
    last_seen: list[str],
    log_path: Path | None = None,
) -> WaitTimeout:
    """The wait's timeout, naming ``reason`` when there is one (``WifiNotJoined``,
    ``BrokerNotReached``), else the plain ``WaitTimeout`` of ``awaited``."""
    if reason is None:
        return WaitTimeout(awaited, timeout, last_seen, log_path)
    if reason.error is None:
        return WaitTimeout(f"{awaited}: {reason.text}", timeout, last_seen, log_path)
    return reason.error(f"{awaited}: {reason.text}", timeout, last_seen, log_path, reason.event)


def broker_connect_witness(broker: Broker) -> ConnectWitness:
    """A ``ConnectWitness`` on ``broker``'s own records (mosquitto's log, amqtt's plugin): each
    probe follows them from the moment it was made."""

    def start() -> ConnectProbe:
        follower = broker.record_follower()
        if follower is None:
            return lambda client_id: None
        seen: list[bool] = []

        def saw(client_id: str) -> bool | None:
            records = follower.read_new()
            seen.append(any(isinstance(r, Connect) and r.client == client_id for r in records))
            return any(seen)

        return saw

    return start
