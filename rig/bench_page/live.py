"""The live bench behind ``rig up``: the board's console, its MQTT traffic and its status fed to
the page's hub, and the page's inject box and buttons done on the real board and broker.

Two clients of the run's locked-down broker: the *observer* (the host's account), subscribed to
the board's whole prefix, turns every message into an ``mqtt`` event and the status topic's into
``status`` events; the *injector* (the injector's account, the one a web page would use)
publishes what the page asks. The board's capture feeds ``console`` events; its listener runs on
the port's reader thread, so it only hands the line to the hub.

Lifecycle: ``start()`` connects both clients and starts the feeds; the actions may then be
called from any thread (one at a time: a soft reset and a power cut must not interleave);
``stop()`` detaches from the capture and closes both clients, and is idempotent.
"""

from __future__ import annotations

import threading

from rig.bench_page.actions import ACTIONS, ActionUnavailable
from rig.bench_page.hub import EventHub
from rig.board import Board
from rig.board.kinds import kind_of
from rig.broker import Broker
from rig.broker.access import HOST, INJECTOR
from rig.firmware_config import FirmwareConfig
from rig.host_client import HostClient, Message
from rig.inventory import BoardSpec
from rig.serialio.lines import Line

STATUS_VALUES = ("online", "offline", "lost")


class LiveBench:
    """See the module docstring."""

    def __init__(
        self,
        spec: BoardSpec,
        board: Board,
        broker: Broker,
        config: FirmwareConfig,
        hub: EventHub,
        *,
        client_tag: str,
        timeout: float,
    ) -> None:
        self.spec = spec
        self.board = board
        self.broker = broker
        self.config = config
        self.hub = hub
        self.timeout = timeout
        self.observer = HostClient(
            broker.host, broker.port, f"rig-up-observer-{client_tag}", login=broker.login(HOST)
        )
        self.injector = HostClient(
            broker.host, broker.port, f"rig-up-injector-{client_tag}", login=broker.login(INJECTOR)
        )
        self._busy = threading.Lock()
        self._attached = False

    # -- feeds ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.hub.watch_echo_topic(self.config.echo_topic)
        self.board.capture.add_listener(self._on_line)
        self._attached = True
        self.observer.on_message(self._on_message)
        self.observer.connect(self.timeout)
        self.observer.subscribe(f"{self.config.topic_prefix}/#", timeout=self.timeout)
        self.injector.connect(self.timeout)

    def _on_line(self, line: Line) -> None:
        self.hub.publish("console", line.t, text=line.text)

    def _on_message(self, message: Message) -> None:
        if message.direction != "in":
            return
        try:
            text: str | None = message.payload.decode()
        except UnicodeDecodeError:
            text = None
        self.hub.publish(
            "mqtt",
            message.t,
            topic=message.topic,
            payload=text,
            hex=message.payload.hex(),
            qos=message.qos,
            retain=message.retain,
        )
        if message.topic == self.config.status_topic and text in STATUS_VALUES:
            self.hub.publish("status", message.t, value=text)

    def stop(self) -> None:
        if self._attached:
            self.board.capture.remove_listener(self._on_line)
            self._attached = False
        for client in (self.injector, self.observer):
            client.close()

    # -- actions (rig.bench_page.actions.BenchActions) ----------------------------------------

    def unavailable(self) -> dict[str, str]:
        why = kind_of(self.spec).no_hard_reset(self.spec)
        return {"power_cut": why} if why is not None else {}

    def inject(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        prefix = self.config.topic_prefix
        if topic != prefix and not topic.startswith(prefix + "/"):
            # The broker's ACL would drop it silently; say why instead.
            raise ActionUnavailable(f"the injector may publish under {prefix}/ only, not on {topic!r}")
        self.injector.publish(topic, payload, qos=qos, retain=retain, timeout=self.timeout)

    def run(self, action: str) -> str:
        if action not in ACTIONS:
            raise ActionUnavailable(f"no such action {action!r} (known: {', '.join(ACTIONS)})")
        why = self.unavailable().get(action)
        if why is not None:
            raise ActionUnavailable(why)
        with self._busy:
            if action == "soft_reset":
                self.board.soft_reset(timeout=self.timeout)
            elif action == "interrupt":
                self.board.interrupt()
            else:
                self.board.power_cycle(timeout=max(self.timeout, 15.0))
        return ACTIONS[action]
