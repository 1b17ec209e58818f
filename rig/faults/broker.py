"""Faults of the broker, the same for every board: stopped for a while, or wedged."""

from __future__ import annotations

import contextlib
import os
import signal

from rig.broker import Broker
from rig.faults.base import Expectations, Fault, FaultUnavailable


def _managed(broker: Broker) -> int:
    if broker.kind == "external" or broker.pid is None:
        raise FaultUnavailable(f"the {broker.kind} broker is not run by the rig: it cannot stop or wedge it")
    return broker.pid


class BrokerStopped(Fault):
    """The broker process stops (its sockets close: the board hears of it at once) and starts
    again on the same ports when the fault ends, with no session kept (the rig's brokers do not
    persist): the board must subscribe again. Whether the broker publishes its clients' wills as
    it shuts down is the broker's choice (mosquitto does): recorded, not asserted."""

    name = "broker_stopped"
    title = "broker stop"
    where = "broker"
    expect = Expectations(detected=True, will=False, reconnects=True, host_client_lost=True)

    def __init__(self, broker: Broker, timeout: float) -> None:
        _managed(broker)
        self.broker = broker
        self.timeout = timeout
        self.active = False

    def start(self) -> None:
        self.active = True
        self.broker.stop(timeout=self.timeout)

    def end(self) -> None:
        if self.active:
            self.active = False
            if not self.broker.is_running():
                self.broker.start(timeout=self.timeout)


class BrokerWedged(Fault):
    """The broker process is frozen (SIGSTOP) and thawed (SIGCONT) at the end. Its kernel still
    accepts connections and data, so nothing fails on the board's side: it must find out by its
    keepalive, and its reconnect attempts must give up by their socket timeout instead of
    waiting for a CONNACK forever. Whether the broker publishes the will once thawed depends on
    which of the old connection's timeout and the new connection it handles first: not asserted."""

    name = "broker_wedged"
    title = "wedged broker"
    where = "broker"
    expect = Expectations(detected=True, will=False, reconnects=True)

    def __init__(self, broker: Broker) -> None:
        self.pid = _managed(broker)
        self.active = False

    def start(self) -> None:
        self.active = True
        os.kill(self.pid, signal.SIGSTOP)

    def end(self) -> None:
        if self.active:
            self.active = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
