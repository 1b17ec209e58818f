"""The echo verdict: whether what came back from the board is the same message as the one
injected (topic, payload bytes, QoS, not retained), found among everything that circulates.

One home for it: the HIL tests, the mutation cases and any script judge echoes here. The paho
client (``rig.host_client``) only records messages; this module decides about them.

The witness (``echo_witness``) sees each message as the broker forwards it. The ``mqtt``
fixture's client subscribes with QoS 0, so every message reaches it with QoS 0 and it cannot tell
a QoS 1 echo from a QoS 0 one. The witness subscribes with QoS 2: a broker then forwards each
message with the QoS it was published with (MQTT 3.1.1, 3.8.4: the minimum of the published and
the granted QoS).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.access import HOST
from rig.host_client import HostClient, Message, retained_on
from rig.wire import checks as wire_checks
from rig.wire.witness import WireWitness


class _Settings(Protocol):
    @property
    def timeout(self) -> float: ...


class _Run(Protocol):
    """What the verdicts need of the run (``rig.session.RigSession`` has it): its id, which
    names the witness's clients, and the bound of each wait."""

    @property
    def run_id(self) -> str: ...

    @property
    def settings(self) -> _Settings: ...


class EchoMismatch(AssertionError):
    """An echo that is not the same message as the one injected: the message names each property
    that differed (topic, payload bytes, QoS, retain). An ``AssertionError``, so pytest reports
    it as a test failure."""


# How many payload bytes a mismatch shows in hex, at each end; beyond that it shows head and tail.
SHOWN_BYTES = 48


def show_bytes(data: bytes) -> str:
    """``data`` as hex for a failure message: whole when short, else head ... tail."""
    if len(data) <= 2 * SHOWN_BYTES:
        return f"{len(data)} bytes [{data.hex()}]"
    return f"{len(data)} bytes [{data[:SHOWN_BYTES].hex()} ... {data[-SHOWN_BYTES:].hex()}]"


def echo_differences(injected: Message, echo: Message) -> list[str]:
    """Each way ``echo`` is not the same message as ``injected``, one line per property.

    Both are records of one subscriber, so the broker treated them alike on their way to it. The
    echo must never be retained, whatever the injected message was: a retained echo would be
    handed to every later subscriber as if it were current."""
    found = []
    if echo.topic != injected.topic:
        found.append(f"topic: injected on {injected.topic!r}, echoed on {echo.topic!r}")
    if echo.payload != injected.payload:
        common = next(
            (i for i, (a, b) in enumerate(zip(injected.payload, echo.payload, strict=False)) if a != b),
            min(len(injected.payload), len(echo.payload)),
        )
        found.append(
            f"payload bytes: injected {show_bytes(injected.payload)}, echoed {show_bytes(echo.payload)}; "
            f"first difference at byte {common}"
        )
    if echo.qos != injected.qos:
        found.append(f"qos: injected with QoS {injected.qos}, echoed with QoS {echo.qos}")
    if echo.retain:
        found.append("retain: the echo was published retained")
    return found


def assert_same_message(injected: Message, echo: Message, where: Path | None = None) -> None:
    """Raise ``EchoMismatch`` naming every property in which ``echo`` differs from ``injected``."""
    found = echo_differences(injected, echo)
    if found:
        lines = "\n".join(f"  {line}" for line in found)
        trace = f"\n  full log: {where}" if where is not None else ""
        raise EchoMismatch(
            f"the echo of {injected.payload[:24]!r} ({len(injected.payload)} bytes) is not the same "
            f"message:\n{lines}{trace}"
        )


WITNESS_QOS = 2
# The host injects with QoS 0: the firmware subscribes with QoS 0 (the tutorial's
# c.subscribe(topic)), so whatever the host published, the board receives QoS 0 and must echo
# QoS 0, which is then the same QoS as the injected message's.
INJECT_QOS = 0
# Two payloads of a test whose first HEAD bytes are equal are one payload to ``echo_of``: an echo
# that lost or changed bytes further on is still found, and then reported as different.
HEAD = 16


@contextmanager
def echo_witness(
    broker: Broker, rig_session: _Run, board: Board, rig_artifacts: Path, name: str
) -> Iterator[HostClient]:
    """A client subscribed with QoS 2 to every topic of the board, tracing to mqtt-witness.jsonl."""
    timeout = rig_session.settings.timeout
    client = HostClient(
        broker.host,
        broker.port,
        f"rig-witness-{rig_session.run_id}-{name}"[:64],
        trace_path=rig_artifacts / "mqtt-witness.jsonl",
        login=broker.login(HOST),
    )
    client.connect(timeout)
    try:
        for topics in board.config.watch_filters():
            client.subscribe(topics, qos=WITNESS_QOS, timeout=timeout)
        yield client
    finally:
        client.close()


def _same_payload(candidate: bytes, payload: bytes) -> bool:
    if candidate == payload:
        return True
    return len(payload) >= HEAD and candidate[:HEAD] == payload[:HEAD]


def echo_of(
    received: list[Message], echo_topic: str, payload: bytes, since: float
) -> tuple[Message, Message] | None:
    """(the injected message as the witness got it, the first echo of it), or None yet.

    The witness is subscribed to the echo topic too, so the broker hands it the injected message
    itself first. The echo is the next message with that payload (or, for a payload of at least
    HEAD bytes, its head) on the echo topic or any other topic of the board under the same
    prefix but the status: an echo on the wrong topic or with other bytes is still an echo, and
    is then reported as not the same message."""
    injected: Message | None = None
    # A topic with no level above it (the tutorial's foo_topic) has no siblings to look at.
    prefix = echo_topic.rsplit("/", 1)[0] + "/" if "/" in echo_topic else None
    for m in received:
        if m.t < since:
            continue
        if injected is None:
            if m.topic == echo_topic and m.payload == payload:
                injected = m
        elif (
            m.topic == echo_topic
            or (prefix is not None and m.topic.startswith(prefix) and not m.topic.endswith("/status"))
        ) and _same_payload(m.payload, payload):
            return injected, m
    return None


def wait_echo(
    witness: HostClient, board: Board, payload: bytes, since: float, timeout: float
) -> tuple[Message, Message]:
    topic = board.config.echo_topic
    found: list[tuple[Message, Message]] = []

    def seen(received: list[Message]) -> bool:
        pair = echo_of(received, topic, payload, since)
        if pair is not None:
            found.append(pair)
        return pair is not None

    witness.wait_for(
        seen, f"the echo of {payload[:24]!r} ({len(payload)} bytes) injected on {topic!r}", timeout
    )
    return found[0]


def assert_echo_is_the_same(
    witness: HostClient, board: Board, payload: bytes, since: float, timeout: float
) -> Message:
    """Wait for the echo of ``payload`` (injected after ``since``) and check that it is the same
    message: topic, payload bytes, QoS, not retained. Returns the echo."""
    injected, echo = wait_echo(witness, board, payload, since, timeout)
    assert_same_message(injected, echo, witness.trace_path)
    return echo


def judge_echo_qos(
    witness: HostClient,
    wire: WireWitness,
    board: Board,
    node: pytest.Item,
    sizes: Iterable[int],
    since: float,
    timeout: float,
) -> None:
    """The QoS each echo left the board with, on the wire: the echo of every ``size``-byte
    message injected after ``since`` at the injected QoS, whatever the broker. The witness sees
    the QoS the broker forwards, which is the board's on mosquitto (``assert_echo_is_the_same``
    judged it there already) but not on amqtt 0.12, which forwards every message at the
    subscription's QoS. Without a readable wire (TLS, a USB board) the witness alone judges, and
    where the broker hides the QoS the test says so ("unchecked")."""
    why_not = wire.readable("the echo's QoS as the board sent it")
    if why_not is None:
        topic = board.config.echo_topic
        for size in sizes:
            echo = wire_checks.echo_sent(wire, topic, size, since, timeout)
            if echo.qos != INJECT_QOS:
                raise EchoMismatch(
                    f"the echo of the {size}-byte message is not the same message:\n"
                    f"  qos: injected with QoS {INJECT_QOS}, echoed with QoS {echo.qos} (the board's "
                    f"PUBLISH on the wire: [{echo.describe()}])\n  capture: {wire.pcap_path}"
                )
        return
    out = [m for m in witness.messages(board.config.echo_topic)]
    if out and all(m.qos == WITNESS_QOS for m in out) and INJECT_QOS != WITNESS_QOS:
        node.user_properties.append(
            (
                "unchecked",
                f"echo QoS: this broker forwards messages with the subscription's QoS ({WITNESS_QOS}), "
                f"not the published one, so the echo's QoS cannot be seen, and {why_not}",
            )
        )


def assert_no_retained_echo(
    broker: Broker, rig_session: _Run, board: Board, rig_artifacts: Path, name: str
) -> None:
    """The echo topic holds no retained message: a client subscribing now gets none.

    A broker clears the retain flag of what it forwards to a subscription that already existed
    (MQTT 3.1.1, 3.3.1.3), so the witness cannot see a retained echo as it passes; a new
    subscriber gets what the broker kept. The host never injects retained, so whatever is
    retained on the echo topic, the board published."""
    topic = board.config.echo_topic
    first = retained_on(
        broker.host,
        broker.port,
        f"rig-late-{rig_session.run_id}-{name}"[:64],
        topic,
        rig_session.settings.timeout,
        rig_artifacts / "mqtt-late-subscriber.jsonl",
        login=broker.login(HOST),
    )
    kept = [m for m in first if m.retain]
    assert not kept, (
        f"retain: the board's echo was published retained: a client subscribing to {topic!r} after "
        f"the echoes got {show_bytes(kept[0].payload)} retained{' and more' if len(kept) > 1 else ''}; "
        f"full log: {rig_artifacts / 'mqtt-late-subscriber.jsonl'}"
    )
