"""A persistent session taken over by a newer connection stays live for that connection.

A board whose link died reconnects before the broker has noticed: the broker closes the older
connection and gives the session to the newer one [MQTT-3.1.4-2]. mosquitto 2.0 then routes the
session's messages to the newer connection at once, and sends no will (a persistent session
taken over by a persistent CONNECT has its will cleared). amqtt 0.12.1 let the older
connection's end mark the shared session disconnected and send the will: the board's echo
topic was queued, not sent, until the next reconnect (``rig.broker.amqtt_runner`` mends it).

Both brokers, real processes on loopback with the rig's access policy, real paho clients. The
older connection's network loop is stopped, not closed, so its socket stays open and silent as
a dead link's does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.broker import Broker, make_broker
from rig.broker.access import HOST, AccessPolicy, board_role, topic_prefix
from tests.rig.test_broker_access import KINDS, Peer, skip_unless_available

BOARD = "b1"
PREFIX = topic_prefix(BOARD, "t1")
ECHO = f"{PREFIX}/echo"
STATUS = f"{PREFIX}/status"
CLIENT_ID = "takeover-board"


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.generate({BOARD: PREFIX}, topic_prefix("neighbour", "t1"))


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path, policy: AccessPolicy) -> Iterator[Broker]:
    kind: str = request.param
    skip_unless_available(kind)
    with make_broker(kind, tmp_path / kind, access=policy) as running:
        yield running


def _board_connection(broker: Broker, policy: AccessPolicy) -> Peer:
    """A connection of the board's persistent session, with its will on the status topic."""
    board = Peer(broker, CLIENT_ID, policy.login(board_role(BOARD)), clean_session=False)
    board.mqtt.will_set(STATUS, b"lost", qos=1, retain=True)
    return board


def test_a_session_taken_over_is_delivered_to_at_once_and_sends_no_will(
    broker: Broker, policy: AccessPolicy
) -> None:
    host = Peer(broker, "takeover-host", policy.login(HOST))
    host.connect()
    older = _board_connection(broker, policy)
    newer = _board_connection(broker, policy)
    try:
        assert not any(c.is_failure for c in host.subscribe(f"{PREFIX}/#"))
        older.connect()
        assert not any(c.is_failure for c in older.subscribe(ECHO))
        older.mqtt.loop_stop()  # the link is dead: the socket stays open, nothing is read or sent
        assert newer.connect(), f"{broker.kind} did not resume the session for the newer connection"
        host.publish(ECHO, b"after the take-over")
        newer.wait_for(ECHO, b"after the take-over")
        newer.round_trip(ECHO)  # the session is live in both directions
        host.round_trip(f"{PREFIX}/marker")
        wills = [m for m in host.under(STATUS) if m.payload == b"lost"]
        assert not wills, (
            f"{broker.kind} published the will of a persistent session taken over by a "
            f"persistent CONNECT: {wills}; mosquitto clears it"
        )
    finally:
        newer.close()
        older.close()
        host.close()
