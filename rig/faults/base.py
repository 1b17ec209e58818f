"""What every fault is: something the rig starts and ends, and what the firmware must do about it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from rig.errors import RigError


class FaultUnavailable(RigError):
    """This fault cannot be made on this bench (no namespace, a USB board, an external broker);
    the message says why, for a skip reason."""


@dataclass(frozen=True)
class Expectations:
    """What the firmware documents it does about a fault (firmware/link_watch.py, echo_client.py).

    ``detected``: the board notices (a ``link_lost`` or ``connection_error`` event);
    ``will``: the broker loses the board and publishes its will (``lost``) while the fault lasts;
    ``reconnects``: the board makes a new connection once the fault ends;
    ``host_client_lost``: the rig's own client lost its connection and subscription too (a
    broker that restarted), so the drill watches the board through a new one afterwards.
    """

    detected: bool = True
    will: bool = True
    reconnects: bool = True
    host_client_lost: bool = False


class Fault(ABC):
    """One fault. Lifecycle: ``start()`` injects it, ``end()`` lifts it. ``end()`` may be called
    at any time, more than once, and after a ``start()`` that failed: the fixture calls it at
    teardown so that no fault outlives its test."""

    name: str
    # How a failure message names it: "the firmware did not detect the <title>".
    title: str
    expect: Expectations = Expectations()
    # Where the fault is made, for the report: "board link", "broker", ...
    where: str = ""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def end(self) -> None: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
