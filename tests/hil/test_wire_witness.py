"""What the board sent, judged on the wire (``rig.wire``): the packets on its link, decoded.

A broker forwards a message at the subscription's QoS when that is lower (amqtt 0.12 even at
the subscription's QoS whatever it was published with), and clears the retain flag of what it
forwards to an existing subscription: the flags the board gave its echo are seen on the wire
alone. The same goes for how the board closes its connection: the broker sees a DISCONNECT or
an error, the wire shows the DISCONNECT and whether FIN or RST ended the connection.

Over TLS the packets are "encrypted", and a board not started here has no wire: each test says
so (a ``not_checked`` property) and judges on the broker's side instead (docs/wire.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.record_log import RecordLog
from rig.broker.records import Ended
from rig.echo_verdict import INJECT_QOS, assert_echo_is_the_same, assert_no_retained_echo, echo_witness
from rig.fixtures.contract import not_checked
from rig.host_client import HostClient
from rig.session import RigSession
from rig.wire import checks
from rig.wire.witness import WireWitness
from tests.hil.board_online import wait_online
from tests.hil.in_flight import deliver_then_stop

pytestmark = pytest.mark.hil


def test_the_echo_leaves_the_board_at_the_injected_qos_and_not_retained(
    board: Board,
    broker: Broker,
    mqtt: HostClient,
    wire: WireWitness,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    timeout = rig_session.settings.timeout
    topic = board.config.echo_topic
    wait_online(mqtt, board, timeout)
    # A length no other message of the test has: the wire records lengths, not payloads.
    data = b"wire-echo-" + os.urandom(12).hex().encode()
    since = time.time()
    why_not = wire.readable("the echo's QoS and retain flag as the board sent them")
    if why_not is not None:
        # The broker's side: a QoS 2 witness and a late subscriber (what test_echo_message does).
        not_checked(request.node, f"{why_not}; judged on what the broker forwards and retains instead")
        with echo_witness(broker, rig_session, board, rig_artifacts, "wire-fallback") as witness:
            mqtt.publish(topic, data, qos=INJECT_QOS)
            assert_echo_is_the_same(witness, board, data, since, timeout)
        assert_no_retained_echo(broker, rig_session, board, rig_artifacts, "wire-fallback")
        return
    mqtt.publish(topic, data, qos=INJECT_QOS)
    echo = checks.echo_sent(wire, topic, len(data), since, timeout)
    checks.assert_echo_flags(wire, echo, INJECT_QOS)


def test_ctrl_c_says_disconnect_and_closes_with_fin(
    board: Board,
    mqtt: HostClient,
    wire: WireWitness,
    broker_records: RecordLog,
    rig_session: RigSession,
    request: pytest.FixtureRequest,
) -> None:
    timeout = rig_session.settings.timeout
    wait_online(mqtt, board, timeout)
    # FIN and RST show over TLS too; the DISCONNECT inside does not. Without a wire (a board not
    # started here) the broker's records judge both, and the test says so.
    why_not = wire.readable("the board's DISCONNECT")
    mark = broker_records.mark() if why_not is not None else None
    # Ctrl-C with a message delivered to the board and not yet read (tests/hil/in_flight.py): a
    # socket closed with bytes unread ends in RST, the trap this guards, on every run.
    since = deliver_then_stop(board, mqtt, wire, timeout, "goodbye on the wire", request.node)
    ends = checks.connection_end(wire, since, timeout) if wire.unavailable is None else None
    if why_not is not None:
        not_checked(request.node, f"{why_not}; the broker's records judge it instead")
        ended = broker_records.wait_for(Ended, timeout, client=board.config.client_id, after=mark)
        received = broker_records.disconnects(board.config.client_id, after=mark)
        assert received and ended.clean, (
            f"the broker received no DISCONNECT from the board before its connection ended: "
            f"[{ended.describe()}]; records: {broker_records.path}"
        )
    if ends is not None:
        checks.assert_goodbye(wire, ends, disconnect_readable=why_not is None)
    board.soft_reset()
    wait_online(mqtt, board, timeout, since=since)
