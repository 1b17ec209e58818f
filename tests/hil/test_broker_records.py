"""How the board presents itself to the broker, judged on what the broker received.

The firmware (firmware/echo_client.py, as the tutorial) connects with ``clean_session=False``,
the keepalive of its config.json, and a will on its status topic: ``lost``, QoS 0, retained, so
that a client subscribing later still sees that the board vanished.
"""

from __future__ import annotations

import time

import pytest

from rig.board import Board
from rig.broker.record_log import RecordLog
from rig.broker.records import Connack, Connect, Will
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from tests.hil.board_online import wait_online
from tests.hil.witnesses_agree import assert_console_agrees_with_broker

pytestmark = pytest.mark.hil

# The will as firmware/echo_client.py documents it: set_last_will(STATUS_TOPIC, b"lost", retain=True).
WILL_QOS = 0
WILL_RETAIN = True


def test_board_connects_with_a_persistent_session_its_keepalive_and_its_will(
    board: Board, broker_records: RecordLog, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    since = broker_records.mark()
    restarted = time.time()
    serial_log.from_now()
    board.soft_reset()
    # Back before any record is asked for: where there are none (an external broker) the test
    # skips there, and must not leave the board booting under the next test's injection.
    wait_online(mqtt, board, timeout, since=restarted)
    connect = broker_records.wait_for(Connect, timeout, client=client, after=since)
    found = []
    if connect.clean_session:
        found.append("clean_session=1: the broker drops the board's session and subscriptions")
    if connect.keepalive != board.config.keepalive:
        found.append(f"keepalive={connect.keepalive}, not the {board.config.keepalive} s of its config.json")
    expected = Will(board.config.status_topic, WILL_QOS, WILL_RETAIN)
    if connect.will != expected:
        found.append(f"will {connect.will}, expected {expected}")
    assert not found, f"the broker received [{connect.describe()}]: " + "; ".join(found)
    connack = broker_records.wait_for(Connack, timeout, client=client, after=connect)
    assert connack.return_code == 0, f"the broker refused the board: {connack.describe()}"
    # The firmware's account must agree with the broker's answer, and its goodbye before the
    # reset with how the broker saw that connection end.
    serial_log.expect_event("connected", timeout)
    assert_console_agrees_with_broker(
        serial_log, broker_records, client, mark=since, since=restarted, timeout=timeout
    )
