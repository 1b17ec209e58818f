"""Faults of the virtual board's own link (``rig.netns``): made with ``ip`` and ``tc`` on it."""

from __future__ import annotations

import time
from abc import abstractmethod

from rig.faults.base import Expectations, Fault
from rig.netns import BoardNetwork


class _LinkFault(Fault):
    """A fault that is one setting of the board's link: made by ``start()``, undone by the
    first ``end()`` after it."""

    where = "board link"

    def __init__(self, network: BoardNetwork) -> None:
        self.network = network
        self.active = False

    @abstractmethod
    def _set(self, on: bool) -> None:
        """Make the fault (``on``) or undo it."""

    def start(self) -> None:
        self.active = True
        self._set(True)

    def end(self) -> None:
        if self.active:
            self._set(False)
            self.active = False


class LinkDown(_LinkFault):
    """The board's interface goes down: Wi-Fi lost. Its established connection hears nothing
    more, and no error says so; new connections fail at once (no route)."""

    name = "link_down"
    title = "link down"

    def _set(self, on: bool) -> None:
        self.network.set_link(up=not on)


class LinkFlap(LinkDown):
    """The link goes down, then comes back for moments only, a few times, before it stays up:
    a board at the edge of its access point's range. ``flap()`` runs the moments (their
    durations are the fault's shape, not a wait for anything)."""

    name = "link_flap"
    title = "flapping link"

    def flap(self, times: int = 3, up_s: float = 0.3, down_s: float = 1.0) -> None:
        for _ in range(times):
            self.network.set_link(up=True)
            time.sleep(up_s)
            self.network.set_link(up=False)
            time.sleep(down_s)


class Blackhole(_LinkFault):
    """Every packet dropped both ways, silently: the link looks up to both ends. Only the
    firmware's own keepalive watch can find out (umqtt.robust notices a failed write only)."""

    name = "blackhole"
    title = "blackhole"

    def _set(self, on: bool) -> None:
        self.network.set_blackhole(on=on)


class SlowLink(_LinkFault):
    """The link limited to ``kbit`` kbit/s both ways: nothing is lost, so the board must not
    take it for a fault (no reconnect, no will) and must keep echoing."""

    name = "slow_link"
    title = "slow link"
    expect = Expectations(detected=False, will=False, reconnects=False)

    def __init__(self, network: BoardNetwork, kbit: int = 16) -> None:
        super().__init__(network)
        self.kbit = kbit

    def _set(self, on: bool) -> None:
        self.network.set_rate(self.kbit if on else None)
