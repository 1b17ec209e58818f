"""Faults of the virtual board's own link (``rig.netns``): made with ``ip`` and ``tc`` on it."""

from __future__ import annotations

import time

from rig.faults.base import Expectations, Fault
from rig.netns import BoardNetwork


class LinkDown(Fault):
    """The board's interface goes down: Wi-Fi lost. Its established connection hears nothing
    more, and no error says so; new connections fail at once (no route)."""

    name = "link_down"
    title = "link down"
    where = "board link"

    def __init__(self, network: BoardNetwork) -> None:
        self.network = network
        self.active = False

    def start(self) -> None:
        self.active = True
        self.network.set_link(up=False)

    def end(self) -> None:
        if self.active:
            self.network.set_link(up=True)
            self.active = False


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


class Blackhole(Fault):
    """Every packet dropped both ways, silently: the link looks up to both ends. Only the
    firmware's own keepalive watch can find out (umqtt.robust notices a failed write only)."""

    name = "blackhole"
    title = "blackhole"
    where = "board link"

    def __init__(self, network: BoardNetwork) -> None:
        self.network = network
        self.active = False

    def start(self) -> None:
        self.active = True
        self.network.set_blackhole(on=True)

    def end(self) -> None:
        if self.active:
            self.network.set_blackhole(on=False)
            self.active = False


class SlowLink(Fault):
    """The link limited to ``kbit`` kbit/s both ways: nothing is lost, so the board must not
    take it for a fault (no reconnect, no will) and must keep echoing."""

    name = "slow_link"
    title = "slow link"
    where = "board link"
    expect = Expectations(detected=False, will=False, reconnects=False)

    def __init__(self, network: BoardNetwork, kbit: int = 16) -> None:
        self.network = network
        self.kbit = kbit
        self.active = False

    def start(self) -> None:
        self.active = True
        self.network.set_rate(self.kbit)

    def end(self) -> None:
        if self.active:
            self.network.set_rate(None)
            self.active = False
