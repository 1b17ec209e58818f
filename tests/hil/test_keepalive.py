"""An idle board keeps its connection: it pings the broker before its keepalive runs out.

umqtt sends nothing by itself when there is nothing to publish (simple 1.3.4 and later), so
the firmware pings after half a keepalive of silence. Two witnesses: the wire shows the board's
PINGREQs and the broker's PINGRESPs whatever the broker does (``rig.wire.checks.assert_pings``);
a broker that enforces keepalive (mosquitto; amqtt never drops a silent client) drops a client
that stays silent for 1.5 keepalives and publishes its will, and its records say how the
connection ended. Over TLS the pings are "encrypted" records, and the wire still shows when
the board sent one (``rig.wire.checks.assert_board_speaks_within_keepalive``): MQTT asks for a
packet within each keepalive, and an idle board sends nothing but pings. Only where the rig has
no capture (a USB board) on a broker that drops no silent client can nothing show a missing
ping, and the test skips saying so.

A board is never idle right after its boot: its own "hello" circulates on its echo topic, and
every echo is a packet that keeps the connection alive. A restarted broker forgets the messages
in flight, so the test restarts it first; the firmware reconnects and then has nothing to send.
"""

from __future__ import annotations

import time

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.record_log import RecordLog
from rig.fixtures.contract import not_checked
from rig.health.keepalive import watch_connection
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from rig.wire import checks
from rig.wire.witness import WireWitness

KEEPALIVE = 2
# Watched for this many keepalives: a board that never pings is dropped after 1.5 of them.
PERIODS = 3

pytestmark = [pytest.mark.hil, pytest.mark.keepalive(KEEPALIVE)]


def test_idle_board_stays_connected_over_several_keepalives(
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    wire: WireWitness,
    request: pytest.FixtureRequest,
) -> None:
    on_wire = wire.readable("the board's PINGREQs")
    no_capture = wire.captured("the board's packets")
    if not broker.enforces_keepalive and no_capture is not None:
        pytest.skip(
            f"{no_capture}, and the {broker.kind} broker never drops a silent client: a missing ping "
            "cannot show"
        )
    if broker.enforces_keepalive:
        broker_records.require("how the board's connection ended")
    if broker.kind == "external":
        pytest.skip("an external broker cannot be restarted by the rig, so the board is never idle")
    assert board.config.keepalive == KEEPALIVE
    timeout = rig_session.settings.timeout
    broker.restart(timeout=timeout)
    # umqtt.robust waits a little before it reconnects.
    serial_log.expect_event("connected", timeout + 3, reconnect=True)
    serial_log.expect_event("idle", timeout)
    # Nothing circulates and nothing is injected: from here on only the board's pings can keep
    # the broker's keepalive clock from running out.
    since = time.time()
    if broker.enforces_keepalive:
        # The broker's word first: a board that never pings is dropped within 1.5 keepalives.
        mark = broker_records.mark()
        watch_connection(broker_records, board.config.client_id, KEEPALIVE, PERIODS * KEEPALIVE, after=mark)
    else:
        not_checked(
            request.node, f"the {broker.kind} broker never drops a silent client: the wire alone judges"
        )
    # Half a keepalive of silence, then a ping: about two per keepalive.
    if on_wire is None:
        checks.assert_pings(wire, since, KEEPALIVE, PERIODS, PERIODS * KEEPALIVE + timeout)
    elif no_capture is None:
        not_checked(request.node, f"{on_wire}: judged on when the board sent them, not what")
        checks.assert_board_speaks_within_keepalive(
            wire, since, KEEPALIVE, PERIODS, PERIODS * KEEPALIVE + timeout
        )
    else:
        not_checked(request.node, f"{on_wire}; the broker's keepalive alone judges")
    lost = mqtt.messages(board.config.status_topic, b"lost", since=since)
    assert not lost, f"the broker published the board's will ('lost') although it stayed connected: {lost}"
    # Still in its loop, and still idle.
    serial_log.expect_event("idle", timeout)
