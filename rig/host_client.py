"""The host-side MQTT client: injects messages and records every message it sees. It judges
nothing: whether an echo is right is ``rig.echo_verdict``'s to say."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from rig.broker.access import Login
from rig.deadline import Deadline
from rig.errors import BrokerError, WaitTimeout
from rig.evidence.timeline import Timeline

TAIL_MESSAGES = 15


@dataclass(frozen=True)
class Message:
    """One message the host client received (``direction`` "in") or sent ("out")."""

    t: float
    direction: str
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def describe(self) -> str:
        flags = f"q{self.qos}{' retained' if self.retain else ''}"
        return f"{self.direction} {self.topic} {self.payload!r} ({flags})"

    def to_record(self) -> dict[str, Any]:
        text = self.payload.decode("utf-8", errors="replace")
        return {
            "t": self.t,
            "dir": self.direction,
            "topic": self.topic,
            "payload": text,
            "hex": self.payload.hex(),
            "qos": self.qos,
            "retain": self.retain,
        }


class ConnectionRefused(BrokerError):
    """The broker answered CONNECT with a refusal: ``reason`` as paho names it ("Not authorized",
    "Bad user name or password") and ``code``, its MQTT 5 reason code (paho maps MQTT 3.1.1's
    return codes 4 and 5 to 134 and 135)."""

    def __init__(self, message: str, *, reason: str, code: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code


class HostClient:
    """A paho-mqtt 2.x client that records every message with a timestamp.

    Lifecycle: ``connect()`` (bounded) starts paho's network thread; ``subscribe()`` returns
    once the broker acknowledged; ``publish()`` returns once the message left; ``close()``
    disconnects cleanly and stops the thread. ``wait_for`` waits on recorded messages, and on
    timeout says what it waited for, the last messages seen and the trace file.
    Every message, in and out, is appended to ``trace_path`` (JSON lines) as it happens.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        transport: Literal["tcp", "websockets"] = "tcp",
        ws_path: str = "/mqtt",
        trace_path: Path | None = None,
        timeline: Timeline | None = None,
        login: Login | None = None,
    ) -> None:
        """``login``: the user and password to connect with (``Broker.login(role)``); None
        connects anonymously."""
        self.host = host
        self.port = port
        self.client_id = client_id
        self.transport = transport
        self.trace_path = trace_path
        self.timeline = timeline
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, transport=transport)
        if transport == "websockets":
            self._client.ws_set_options(path=ws_path)
        self.user = login.user if login is not None else None
        if login is not None:
            self._client.username_pw_set(login.user, login.password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._cond = threading.Condition()
        self._messages: list[Message] = []
        self._connected = False
        self._connect_error: ReasonCode | None = None
        self._granted: dict[int, list[ReasonCode]] = {}
        self._acked_at: dict[int, float] = {}  # when each SUBACK came, by message id
        self._trace: IO[str] | None = None
        self._listeners: list[Callable[[Message], None]] = []
        if trace_path is not None:
            trace_path.parent.mkdir(parents=True, exist_ok=True)
            self._trace = trace_path.open("a", encoding="utf-8")

    # -- paho callbacks (network thread) ----------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self._cond:
            if rc.is_failure:
                self._connect_error = rc
            else:
                self._connected = True
            self._cond.notify_all()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any
    ) -> None:
        with self._cond:
            self._granted[mid] = rcs
            self._acked_at[mid] = time.time()
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._record(Message(time.time(), "in", msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def _record(self, message: Message) -> None:
        # Listeners first: a test that waits for this message finds their reaction done.
        for listener in list(self._listeners):
            listener(message)
        with self._cond:
            self._messages.append(message)
            if self._trace is not None:
                self._trace.write(json.dumps(message.to_record()) + "\n")
                self._trace.flush()
            self._cond.notify_all()
        if self.timeline is not None:
            fields = message.to_record()
            del fields["t"]
            self.timeline.add(message.t, "mqtt", f"{self.client_id} {message.describe()}", **fields)

    # -- API ---------------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as e:
            raise BrokerError(
                f"host client cannot reach broker {self.host}:{self.port} ({self.transport}): {e}"
            ) from e
        # paho leaves Nagle's algorithm on: a small packet written while the previous one is
        # unacknowledged then waits for the broker's delayed ACK, ~40 ms (a subscribe right after
        # a publish, say). The WebSocket transport wraps its socket and has no such option.
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client.loop_start()
        with self._cond:
            ok = self._cond.wait_for(lambda: self._connected or self._connect_error is not None, timeout)
        refused = self._connect_error
        if not ok or refused is not None:
            self.close()
            where = f"{self.host}:{self.port} ({self.transport})"
            who = f" as {self.user}" if self.user is not None else " anonymously"
            if refused is not None:
                raise ConnectionRefused(
                    f"the broker at {where} refused client {self.client_id}{who}: {refused}",
                    reason=str(refused),
                    code=refused.value,
                )
            raise BrokerError(f"host client could not connect to {where}: no CONNACK within {timeout:.0f}s")

    def subscribe(self, topic: str, qos: int = 0, timeout: float = 10.0) -> float:
        """Subscribe and wait for the SUBACK; returns when it came (the retained messages of the
        subscription come after it)."""
        return self.wait_suback(self.subscribe_nowait(topic, qos), topic, timeout)

    def subscribe_nowait(self, topic: str, qos: int = 0) -> int:
        """Send SUBSCRIBE without waiting for the SUBACK (from a listener, say); its message id."""
        result, mid = self._client.subscribe(topic, qos)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise BrokerError(f"subscribe to {topic!r} failed: {mqtt.error_string(result)}")
        return mid

    def wait_suback(self, mid: int, topic: str, timeout: float) -> float:
        """Wait for the SUBACK of subscription ``mid`` (to ``topic``); returns when it came."""
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._granted, timeout):
                raise BrokerError(f"no SUBACK for {topic!r} within {timeout:.0f}s")
            if any(rc.is_failure for rc in self._granted[mid]):
                raise BrokerError(f"broker refused subscription to {topic!r}: {self._granted[mid]}")
            return self._acked_at[mid]

    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, timeout: float = 10.0
    ) -> None:
        # Recorded before sending: the broker may hand it back to us before publish() returns,
        # and the trace must read in causal order.
        self._record(Message(time.time(), "out", topic, payload, qos, retain))
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as e:
            raise BrokerError(f"publish to {topic!r} failed: {e}") from e
        if not info.is_published():
            raise BrokerError(f"publish to {topic!r} not sent within {timeout:.0f}s")

    def messages(
        self, topic: str | None = None, payload: bytes | None = None, since: float = 0.0
    ) -> list[Message]:
        with self._cond:
            return [
                m
                for m in self._messages
                if m.direction == "in"
                and (topic is None or m.topic == topic)
                and (payload is None or m.payload == payload)
                and m.t >= since
            ]

    def wait_for(
        self, predicate: Callable[[list[Message]], bool], awaited: str, timeout: float
    ) -> list[Message]:
        """Wait until ``predicate(received messages)`` holds; returns the messages then."""
        deadline = Deadline(timeout)
        with self._cond:
            while True:
                received = [m for m in self._messages if m.direction == "in"]
                if predicate(received):
                    return received
                left = deadline.remaining()
                if left is not None and left <= 0:
                    tail = [m.describe() for m in self._messages[-TAIL_MESSAGES:]]
                    raise WaitTimeout(
                        f"MQTT: {awaited}",
                        timeout,
                        tail,
                        self.trace_path,
                        self.timeline.path if self.timeline else None,
                    )
                self._cond.wait(left)

    def wait_count(
        self, topic: str, payload: bytes, count: int, timeout: float, since: float = 0.0
    ) -> list[Message]:
        """Wait until ``payload`` arrived on ``topic`` at least ``count`` times after ``since``."""

        def enough(received: list[Message]) -> bool:
            return (
                sum(1 for m in received if m.topic == topic and m.payload == payload and m.t >= since)
                >= count
            )

        self.wait_for(enough, f"{payload!r} on {topic!r} at least {count} time(s)", timeout)
        return self.messages(topic, payload, since)

    def on_message(self, listener: Callable[[Message], None]) -> None:
        """Call ``listener`` with every message from now on, before it is recorded (so before any
        ``wait_for`` sees it), in paho's network thread (incoming) or the caller's (outgoing):
        for a reaction that cannot wait for a test thread to wake up. It must not block."""
        with self._cond:
            self._listeners.append(listener)

    def first_on(self, topic: str, timeout: float) -> list[Message]:
        """Subscribe to ``topic`` now and return what it got first: the retained message(s) the
        broker hands a new subscriber at once (``retain`` set), and any message that happened to
        be published on ``topic`` meanwhile (``retain`` clear).

        The start is the SUBACK: amqtt 0.12 hands a connecting client retained messages of
        other clients' subscriptions before it reads a packet of it, and those came before. The
        end of "at once" is a marker the client publishes to itself after its SUBACK: mosquitto
        and amqtt both send the retained messages of a subscription before they read the client's
        next packet, so whatever came on ``topic`` before the marker came then."""
        # Under ``topic`` itself: a client of the locked-down broker may use only its boards'
        # prefixes, and a subscriber to the topic (no wildcard) never sees this one.
        marker = f"{topic}/retained-probe/{self.client_id}"
        self.subscribe(marker, qos=1, timeout=timeout)
        acked = self.subscribe(topic, qos=2, timeout=timeout)
        self.publish(marker, b"end of retained", qos=1, timeout=timeout)
        received = self.wait_for(
            lambda ms: any(m.topic == marker and m.t >= acked for m in ms),
            f"the marker on {marker!r}",
            timeout,
        )
        fresh = [m for m in received if m.t >= acked]
        end = next(i for i, m in enumerate(fresh) if m.topic == marker)
        return [m for m in fresh[:end] if m.topic == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        with self._cond:
            if self._trace is not None:
                self._trace.close()
                self._trace = None


def retained_on(
    host: str,
    port: int,
    client_id: str,
    topic: str,
    timeout: float,
    trace_path: Path | None = None,
    login: Login | None = None,
) -> list[Message]:
    """What a new subscriber to ``topic`` gets first (see ``HostClient.first_on``), from a fresh
    client, so that the broker treats it as a new subscriber."""
    client = HostClient(host, port, client_id, trace_path=trace_path, login=login)
    client.connect(timeout)
    try:
        return client.first_on(topic, timeout)
    finally:
        client.close()
