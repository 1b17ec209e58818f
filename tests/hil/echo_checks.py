"""What the echo tests share: a witness that sees each message as the broker forwards it, finding
the echo of an injected payload among everything that circulates, and the checks that an echo is
the same message as the one injected.

The ``mqtt`` fixture's client subscribes with QoS 0, so every message reaches it with QoS 0 and
it cannot tell a QoS 1 echo from a QoS 0 one. The witness subscribes with QoS 2: a broker then
forwards each message with the QoS it was published with (MQTT 3.1.1, 3.8.4: the minimum of the
published and the granted QoS).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.access import HOST
from rig.host_client import HostClient, Message, assert_same_message, retained_on, show_bytes
from rig.session import RigSession

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
    broker: Broker, rig_session: RigSession, board: Board, rig_artifacts: Path, name: str
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
        client.subscribe(f"{board.config.topic_prefix}/#", qos=WITNESS_QOS, timeout=timeout)
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
    HEAD bytes, its head) on any topic of the board but the status: an echo on the wrong topic or
    with other bytes is still an echo, and is then reported as not the same message."""
    injected: Message | None = None
    prefix = echo_topic.rsplit("/", 1)[0] + "/"
    for m in received:
        if m.t < since:
            continue
        if injected is None:
            if m.topic == echo_topic and m.payload == payload:
                injected = m
        elif (
            m.topic.startswith(prefix)
            and not m.topic.endswith("/status")
            and _same_payload(m.payload, payload)
        ):
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


def note_unchecked_qos(witness: HostClient, board: Board, node: pytest.Item) -> None:
    """Say so where the broker hides the QoS: amqtt 0.12 forwards every message with the
    subscription's QoS instead of the published one, so the witness gets the injected QoS 0
    message as QoS 2 and the QoS check compares nothing."""
    out = [m for m in witness.messages(board.config.echo_topic)]
    if out and all(m.qos == WITNESS_QOS for m in out) and INJECT_QOS != WITNESS_QOS:
        node.user_properties.append(
            (
                "unchecked",
                f"echo QoS: this broker forwards messages with the subscription's QoS ({WITNESS_QOS}), "
                f"not the published one, so the echo's QoS cannot be seen",
            )
        )


def assert_no_retained_echo(
    broker: Broker, rig_session: RigSession, board: Board, rig_artifacts: Path, name: str
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
