"""Retained messages come only in answer to a SUBSCRIBE; queued ones come with RETAIN 0.

MQTT 3.1.1 sends a topic's retained message when a subscription is made, for that subscription's
filter [MQTT-3.3.1-6], and a message that matched an established subscription with RETAIN 0
[MQTT-3.3.1-9]: so does mosquitto. amqtt 0.12.1 also sent a client, on every CONNECT, the
retained messages of every filter that ANY client held, and queued messages with RETAIN 1
(``rig.broker.amqtt_runner`` mends both). The board's case: the host holds ``PREFIX/#``, the
board resuming its session got its own retained status back and echoed ``lost`` or ``offline``.

Both brokers, real processes on loopback with the rig's access policy, real paho clients; a
message that must NOT arrive is bounded by a marker that would have come after it
(``Peer.round_trip``): a broker sends what it sends on CONNECT before it reads the client's
first PUBLISH.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.broker import Broker, make_broker
from rig.broker.access import HOST, AccessPolicy, board_role, topic_prefix
from tests.rig.test_broker_access import KINDS, Peer, Received, skip_unless_available

BOARD = "b1"
PREFIX = topic_prefix(BOARD, "r1")
# The firmware's topics (firmware/settings.py): the board subscribes to its echo topic only; its
# status topic, retained, is read by the host through PREFIX/#.
ECHO = f"{PREFIX}/echo"
STATUS = f"{PREFIX}/status"


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.generate({BOARD: PREFIX}, topic_prefix("neighbour", "r1"))


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path, policy: AccessPolicy) -> Iterator[Broker]:
    """A broker of the kind given, enforcing ``policy``, as the rig runs it."""
    kind: str = request.param
    skip_unless_available(kind)
    with make_broker(kind, tmp_path / kind, access=policy) as running:
        yield running


def _board(broker: Broker, policy: AccessPolicy) -> Peer:
    """The board's persistent session (clean_session=0), connected."""
    board = Peer(broker, "retained-board", policy.login(board_role(BOARD)), clean_session=False)
    board.connect()
    return board


def _host(broker: Broker, policy: AccessPolicy) -> Peer:
    """The host, holding the board's whole prefix as the rig's host client does."""
    host = Peer(broker, "retained-host", policy.login(HOST))
    host.connect()
    codes = host.subscribe(f"{PREFIX}/#")
    assert not any(c.is_failure for c in codes), f"{broker.kind} denied the host {PREFIX}/#: {codes}"
    return host


def _offline_board_with_retained_status(broker: Broker, policy: AccessPolicy, host: Peer) -> None:
    """The board's session subscribed to its echo topic, then offline; its status retained."""
    board = _board(broker, policy)
    board.subscribe(ECHO)
    board.publish(STATUS, b"offline", retain=True)
    board.close()
    host.wait_for(STATUS, b"offline")


def _shown(messages: list[Received]) -> list[str]:
    return [f"{m.topic} {m.payload!r} retain={int(m.retain)}" for m in messages]


def test_a_resumed_session_gets_no_retained_message(broker: Broker, policy: AccessPolicy) -> None:
    """Neither that of a topic only another client's filter covers (the board's status, under
    the host's PREFIX/#), nor that of its own filter: only a SUBSCRIBE brings retained messages."""
    host = _host(broker, policy)
    try:
        _offline_board_with_retained_status(broker, policy, host)
        host.publish(ECHO, b"retained echo", retain=True)  # queued for the board, and retained
        board = _board(broker, policy)
        try:
            board.round_trip(ECHO)
            retained = [m for m in board.under(PREFIX) if m.retain]
            assert not retained, (
                f"{broker.kind} sent the resumed session retained messages without a SUBSCRIBE "
                f"(the host holds {PREFIX}/#, the board only {ECHO}): {_shown(retained)}"
            )
            status = board.under(STATUS)
            assert not status, (
                f"{broker.kind} sent the board its status topic, which it never subscribed to: "
                f"{_shown(status)}"
            )
        finally:
            board.close()
    finally:
        host.close()


def test_a_message_queued_while_offline_arrives_with_retain_0(broker: Broker, policy: AccessPolicy) -> None:
    host = _host(broker, policy)
    try:
        _offline_board_with_retained_status(broker, policy, host)
        host.publish(ECHO, b"queued while offline")  # QoS 1, to a persistent session's filter
        board = _board(broker, policy)
        try:
            board.wait_for(ECHO, b"queued while offline")
            queued = [m for m in board.under(ECHO) if m.payload == b"queued while offline"]
            assert [m.retain for m in queued] == [False], (
                f"{broker.kind} delivered the message queued for the offline session as "
                f"{_shown(queued)}, expected it once with retain=0"
            )
        finally:
            board.close()
    finally:
        host.close()


def test_a_subscribe_gets_the_retained_message_with_retain_1(broker: Broker, policy: AccessPolicy) -> None:
    host = _host(broker, policy)
    try:
        _offline_board_with_retained_status(broker, policy, host)
        board = _board(broker, policy)
        try:
            codes = board.subscribe(STATUS)
            assert not any(c.is_failure for c in codes), f"{broker.kind} denied the board {STATUS}: {codes}"
            board.wait_for(STATUS, b"offline")
            board.round_trip(ECHO)
            status = board.under(STATUS)
            assert [m.retain for m in status] == [True], (
                f"{broker.kind} answered the SUBSCRIBE to {STATUS} with {_shown(status)}, "
                "expected the retained b'offline' once with retain=1"
            )
        finally:
            board.close()
    finally:
        host.close()
