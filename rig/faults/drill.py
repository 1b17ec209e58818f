"""A fault drill: inject one fault and check what the firmware documents it does about it.

The firmware's contract for a fault (firmware/link_watch.py, echo_client.py):

1. it detects the fault (``link_lost`` after 1.5 keepalives of silence, or ``connection_error``
   when a read, write or connect fails), within 1.5 keepalives and a margin;
2. the broker, having lost the board, publishes its will (``lost``, retained, on its status);
3. once the fault ends it reconnects, subscribes again if the broker kept no session (and not
   if it did), and says ``online`` again;
4. the echo loop resumes: a message injected now circulates;
5. it never reboots to get there.

Each step waits on an event with a bound of the rig's, and a step that fails raises
``FaultNotHandled`` naming the step and what the firmware failed to do, above the wait's own
report (what was awaited, the last lines, the log). The drill measures time to detect (fault
start to the board's event) and time to resume (fault end to the first echo of a message
injected once the board was back), in ``FaultTimes``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rig.board.board import Board
from rig.deadline import Deadline
from rig.errors import WaitTimeout
from rig.faults.base import Fault
from rig.host_client import HostClient
from rig.serial_events import parse_event
from rig.serialio.capture import Line, SerialLog

# umqtt.robust 1.0 waits this long (s) between two reconnect attempts (its DELAY).
ROBUST_DELAY_S = 2.0
# What CPU contention (two cores, five test runs) adds to a bound, measured: detection came at
# most 0.4 s after 1.5 keepalives under that load; this leaves more than twice that.
MARGIN_S = 1.5
TAIL = 15


class FaultNotHandled(AssertionError):
    """The firmware did not do what it documents about a fault; the message names the step."""


@dataclass(frozen=True)
class FaultTimes:
    """What a drill measured, in seconds. ``detect_s`` is None for a fault the board must not
    take for one (a slow link)."""

    fault: str
    detect_s: float | None
    resume_s: float
    reconnect_s: float | None
    will: bool
    unchecked: tuple[str, ...] = ()

    def properties(self) -> list[tuple[str, str]]:
        """JUnit/report properties: ``fault.<name>.<figure>``."""
        props = [(f"fault.{self.fault}.resume_s", f"{self.resume_s:.3f}")]
        if self.detect_s is not None:
            props.insert(0, (f"fault.{self.fault}.detect_s", f"{self.detect_s:.3f}"))
        if self.reconnect_s is not None:
            props.append((f"fault.{self.fault}.reconnect_s", f"{self.reconnect_s:.3f}"))
        props.append((f"fault.{self.fault}.will", str(self.will).lower()))
        props.extend((f"fault.{self.fault}.unchecked", why) for why in self.unchecked)
        return props


class Drill:
    """One fault, from injection to a board back at work. Lifecycle: ``begin(fault)``, then the
    waits the fault calls for (``await_detection``, ``await_will``, ``await_reconnect_attempt``),
    then ``finish()``, which ends the fault and checks the recovery. The caller ends the fault
    on any failure too (the ``faults`` fixture does, at teardown)."""

    def __init__(
        self,
        board: Board,
        serial_log: SerialLog,
        mqtt: HostClient,
        timeout: float,
        new_host_client: Callable[[], HostClient],
        broker_enforces_keepalive: bool = True,
    ) -> None:
        self.board = board
        self.serial_log = serial_log
        self.mqtt = mqtt
        # A connected client subscribed to the board's topics, for after a broker restart.
        self.new_host_client = new_host_client
        self.broker_enforces_keepalive = broker_enforces_keepalive
        # Why a step was not checked on this bench, for the test's properties; never silent.
        self.unchecked: list[str] = []
        self.timeout = timeout
        config = board.config
        self.keepalive = float(config.keepalive)
        # A firmware without a socket timeout blocks until the rig's own bound (the wait then fails).
        self.socket_timeout = float(config.app_settings().get("socket_timeout", 0.0))
        # The firmware looks at its link once per loop turn.
        self.detect_bound = 1.5 * self.keepalive + config.effective_loop_period + MARGIN_S
        self.fault: Fault | None = None
        self.t0 = 0.0
        self.start_index = 0
        self.boots: int | None = None
        self.detected: dict[str, Any] | None = None
        self.will_seen = False

    # -- steps -------------------------------------------------------------------------------

    def begin(self, fault: Fault) -> None:
        """Check the echo loop works, then inject ``fault``."""
        self._echo_circulates(f"before {fault.name}")
        self.fault = fault
        self.serial_log.note(f"fault {fault.name}: start ({fault.where})")
        self.start_index = self.serial_log.capture.next_index
        self.boots = getattr(self.board.transport, "boots", None)
        self.t0 = time.time()
        fault.start()

    def await_detection(self) -> dict[str, Any]:
        """The board's first sign that it noticed: its keepalive watch (``link_lost``) or a
        failed read or write (``connection_error``)."""
        event = self._event(
            lambda e: e["ev"] == "link_lost" or (e["ev"] == "connection_error" and not e.get("reconnecting")),
            "link_lost or connection_error: the board noticing the fault",
            self.detect_bound,
            f"the firmware did not detect the {self._name()} within {self.detect_bound:.1f}s "
            f"(1.5 x its {self.keepalive:g}s keepalive and a margin): it has no keepalive watch "
            "of its own, or it does not act on it",
        )
        self.detected = event
        return event

    def await_will(self) -> None:
        """The broker's will for the board: it lost the board (1.5 keepalives of silence)."""
        if not self.broker_enforces_keepalive:
            # amqtt 0.12 keeps a silent client connected: it never loses the board this way.
            self.unchecked.append("will: this broker does not enforce keepalive, so it never loses the board")
            self.serial_log.note(f"not checked: {self.unchecked[-1]}")
            return
        bound = 2 * self.keepalive + self.timeout
        try:
            self.mqtt.wait_count(self.board.config.status_topic, b"lost", 1, bound, since=self.t0)
        except WaitTimeout as e:
            raise FaultNotHandled(
                f"the broker published no will ('lost') within {bound:.1f}s of the {self._name()}: "
                f"it did not lose the board\n{e}"
            ) from e
        self.will_seen = True

    def await_reconnect_attempt(self) -> dict[str, Any]:
        """A reconnect attempt that ended while the fault lasts: the board is not stuck in one."""
        bound = self.socket_timeout + ROBUST_DELAY_S + self.timeout
        return self._event(
            lambda e: e["ev"] == "connection_error" and bool(e.get("reconnecting")),
            "connection_error (reconnecting): a reconnect attempt that gave up",
            bound,
            f"no reconnect attempt ended within {bound:.1f}s during the {self._name()}: the board "
            "is stuck in one; its socket has no timeout, so a broker that does not answer wedges it",
        )

    def echo_during(self, seconds: float | None = None) -> None:
        """The echo loop keeps working while the fault lasts (a fault the board must ride out):
        one payload goes on circulating for ``seconds``, by default for longer than the keepalive
        watch takes to give up on a link (1.5 keepalives)."""
        payload = f"fault-during-{self._fault().name}-{time.monotonic_ns()}".encode()
        topic = self.board.config.echo_topic
        since = time.time()
        self.mqtt.publish(topic, payload)
        until = time.monotonic() + (seconds if seconds is not None else 1.5 * self.keepalive + MARGIN_S)
        seen = 1  # our own publish, back from the broker
        while time.monotonic() < until:
            try:
                seen = len(self.mqtt.wait_count(topic, payload, seen + 2, self.timeout, since=since))
            except WaitTimeout as e:
                raise FaultNotHandled(f"the echo loop stopped during the {self._name()}\n{e}") from e

    def finish(self) -> FaultTimes:
        """End the fault and check the board comes back: reconnected, subscribed as its session
        needs, online, echoing, not rebooted."""
        fault = self._fault()
        t_end = time.time()
        fault.end()
        self.serial_log.note(f"fault {fault.name}: end")
        end_index = self.serial_log.capture.next_index
        self.will_seen = bool(self.mqtt.messages(self.board.config.status_topic, b"lost", since=self.t0))
        if fault.expect.host_client_lost:
            self.mqtt = self.new_host_client()
        reconnect_s = None
        if fault.expect.reconnects:
            bound = 2 * self.socket_timeout + ROBUST_DELAY_S + self.timeout
            # A flapping link may let the board back in before the fault ends: then the
            # connection it made last is the one to judge.
            attempt = self._last_attempt(end_index)
            connected = self._event(
                lambda e: e["ev"] == "connected" and bool(e.get("reconnect")),
                "connected (reconnect): the board back on the broker",
                bound,
                f"the board did not reconnect within {bound:.1f}s after the {self._name()} ended",
                start=attempt["index"],
            )
            reconnect_s = max(0.0, connected["t"] - t_end)
            self._check_session(connected)
            try:
                self.mqtt.wait_count(
                    self.board.config.status_topic, b"online", 1, self.timeout, since=attempt["t"]
                )
            except WaitTimeout as e:
                raise FaultNotHandled(f"the board reconnected but never said 'online' again\n{e}") from e
        else:
            self._expect_no_reaction()
        first_echo = self._echo_circulates(f"after {fault.name}")
        self._expect_no_reboot()
        return FaultTimes(
            fault=fault.name,
            detect_s=(self.detected["t"] - self.t0) if self.detected is not None else None,
            resume_s=max(0.0, first_echo - t_end),
            reconnect_s=reconnect_s,
            will=self.will_seen,
            unchecked=tuple(self.unchecked),
        )

    # -- checks ------------------------------------------------------------------------------

    def _check_session(self, connected: dict[str, Any]) -> None:
        topic = self.board.config.echo_topic
        after = connected["index"]
        if connected.get("session_present"):
            again = [e for e in self._events_since(after) if e["ev"] == "subscribed"]
            if again:
                raise FaultNotHandled(
                    f"the broker kept the board's session, yet the firmware subscribed again: {again}"
                )
            return
        self._event(
            lambda e: e["ev"] == "subscribed" and e.get("topic") == topic,
            f"subscribed to {topic}",
            self.timeout,
            "the broker lost the board's session and the firmware did not subscribe again: "
            "nothing would ever reach it",
            start=after,
        )

    def _expect_no_reaction(self) -> None:
        reactions = [
            e for e in self._events_since(self.start_index) if e["ev"] in ("link_lost", "connection_error")
        ]
        lost = self.mqtt.messages(self.board.config.status_topic, b"lost", since=self.t0)
        if reactions or lost:
            raise FaultNotHandled(
                f"the board took the {self._name()} for a lost link: events {reactions}, "
                f"will published {len(lost)} time(s)"
            )

    def _expect_no_reboot(self) -> None:
        boots = [e for e in self._events_since(self.start_index) if e["ev"] == "boot"]
        if boots:
            raise FaultNotHandled(f"the board rebooted during the {self._name()}: {boots}")
        # The virtual board counts its boots itself: a witness for when the console was away.
        now = getattr(self.board.transport, "boots", None)
        if self.boots is not None and now is not None and now != self.boots:
            raise FaultNotHandled(f"the board booted {now - self.boots} time(s) during the {self._name()}")

    def _echo_circulates(self, when: str) -> float:
        """Inject a fresh payload; it must come back twice. Returns when it first came back."""
        payload = f"fault-{when}-{time.monotonic_ns()}".replace(" ", "-").encode()
        topic = self.board.config.echo_topic
        since = time.time()
        self.mqtt.publish(topic, payload)
        try:
            # Our own publish comes back once from the broker; then the board's echoes.
            echoes = self.mqtt.wait_count(topic, payload, 3, self.timeout, since=since)
        except WaitTimeout as e:
            raise FaultNotHandled(f"the echo loop did not work {when}\n{e}") from e
        return echoes[1].t

    # -- serial events ---------------------------------------------------------------------------

    def _event(
        self,
        test: Callable[[dict[str, Any]], bool],
        awaited: str,
        bound: float,
        failure: str,
        start: int | None = None,
    ) -> dict[str, Any]:
        capture = self.serial_log.capture
        first = self.start_index if start is None else start

        def matches(line: Line) -> bool:
            event = parse_event(line.text)
            return event is not None and test(event)

        line = capture.wait(matches, first, Deadline(bound), include_partial=False)
        if line is None:
            timeout = WaitTimeout(awaited, bound, capture.tail(TAIL, first), self.serial_log.path)
            raise FaultNotHandled(f"{failure}\n{timeout}")
        event = parse_event(line.text)
        assert event is not None
        event.update(t=line.t, index=line.index)
        return event

    def _events_since(self, index: int) -> list[dict[str, Any]]:
        found = []
        for line in self.serial_log.capture.lines(index):
            event = parse_event(line.text)
            if event is not None:
                event.update(t=line.t, index=line.index)
                found.append(event)
        return found

    def _last_attempt(self, end_index: int) -> dict[str, Any]:
        """The board's last sign of trouble before the fault ended: the reconnect that follows
        it (perhaps under way when the fault ended) is the one that counts."""
        attempts = [
            e
            for e in self._events_since(self.start_index)
            if e["ev"] in ("link_lost", "connection_error") and e["index"] < end_index
        ]
        return attempts[-1] if attempts else {"index": self.start_index, "t": self.t0}

    def _fault(self) -> Fault:
        if self.fault is None:
            raise RuntimeError("Drill.begin() was not called")
        return self.fault

    def _name(self) -> str:
        return self._fault().title
