"""How the firmware leaves the broker: cleanly on Ctrl-C, and with its will on a power cut.

How a connection ended is the broker's word (its records: a DISCONNECT received, how the
connection closed); the status topic on the wire shows whether the will fired. The board's link
is a third witness (``rig.wire``): its DISCONNECT and the FIN that must follow it, never RST
(tests/hil/test_wire_witness.py judges that first; here it backs the broker's word). The Ctrl-C
comes with a message delivered to the board and unread (tests/hil/in_flight.py), the moment a
firmware that closes at once ends in RST.
"""

from __future__ import annotations

import time

import pytest

from rig.board import Board
from rig.broker.record_log import RecordLog
from rig.broker.records import Connack, Disconnect, Ended
from rig.fixtures.contract import console_witness, not_checked
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from rig.wire import checks
from rig.wire.records import BOARD
from rig.wire.witness import WireWitness
from tests.hil.board_online import wait_online
from tests.hil.in_flight import deliver_then_stop

pytestmark = pytest.mark.hil


def status_payloads(mqtt: HostClient, board: Board, since: float) -> list[bytes]:
    return [m.payload for m in mqtt.messages(board.config.status_topic, since=since)]


def test_ctrl_c_disconnects_cleanly_and_no_will_fires(
    board: Board,
    broker_records: RecordLog,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    request: pytest.FixtureRequest,
    wire: WireWitness,
) -> None:
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    wait_online(mqtt, board, timeout)
    mark = broker_records.mark()
    serial_log.from_now()
    # Ctrl-C with a message delivered to the board and not yet read: the RST trap, every time.
    since = deliver_then_stop(board, mqtt, wire, timeout, "ctrl-c", request.node)
    contract = board.config.contract
    if console_witness(request.node, contract, "disconnected", "connected", what="the goodbye"):
        serial_log.expect_event("disconnected", timeout, clean=True)
    # What the firmware says is a second witness: the broker's records decide, and the wire
    # (FIN or RST show over TLS too) says how the connection ended. Both are heard before either
    # judges, and a failure names every one that saw the goodbye go wrong, the wire first: after
    # a close that ends in RST, whether the broker still read the DISCONNECT is a race, the RST
    # is not, and it is the cause.
    ended = broker_records.wait_for(Ended, timeout, client=client, after=mark)
    received = broker_records.disconnects(client, after=mark)
    wrong = []
    if wire.unavailable is None:
        ends = checks.connection_end(wire, since, timeout)
        try:
            checks.assert_goodbye(wire, ends, disconnect_readable=wire.readable("") is None)
        except AssertionError as e:  # a capture that lost frames is an infrastructure error: raised
            wrong.append(str(e))
    else:
        not_checked(request.node, f"how the connection ended, on the wire: {wire.unavailable}")
    if not (received and ended.clean):
        wrong.append(
            f"the broker received no DISCONNECT from the board before its connection ended: "
            f"[{ended.describe()}]; records: {broker_records.path}"
        )
    assert not wrong, "\n".join(wrong)
    # It can connect again at once, and the broker hands it its session.
    board.soft_reset()
    connack = broker_records.wait_for(Connack, timeout, client=client, after=ended)
    assert connack.session_present, f"the broker lost the board's session: {connack.describe()}"
    unclean = [e.describe() for e in broker_records.ended(client, after=mark) if not e.clean]
    assert not unclean, f"the broker saw an unclean end: {unclean}"
    if not board.config.has_status:
        not_checked(
            request.node,
            f"'offline', then 'online', on a status topic: the firmware has none ({contract.path})",
        )
        return
    if contract.emits("connected"):
        serial_log.expect_event("connected", timeout, session_present=True)
    mqtt.wait_for(
        lambda _: b"online" in status_payloads(mqtt, board, since),
        f"'online' on {board.config.status_topic} after reconnecting",
        timeout,
    )
    # The will would have been published when the connection ended, before the new "online".
    statuses = status_payloads(mqtt, board, since)
    assert b"lost" not in statuses, (
        f"the broker published the will: the disconnect was not clean (status messages: {statuses}); "
        f"records: {broker_records.path}"
    )
    assert statuses[:2] == [b"offline", b"online"], f"unexpected status sequence {statuses}"


@pytest.mark.hard_reset
def test_power_cut_fires_the_will(
    board: Board,
    broker_records: RecordLog,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    wire: WireWitness,
) -> None:
    board.config.contract.require_will("the will on a power cut")
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    mark = broker_records.mark()
    since = time.time()
    serial_log.from_now()
    board.power_cycle()
    will = mqtt.wait_count(board.config.status_topic, b"lost", 1, timeout, since=since)[0]
    # Back before any record is asked for (see tests/hil/board_online.py).
    wait_online(mqtt, board, timeout, since=will.t)
    ended = broker_records.wait_for(Ended, timeout, client=client, after=mark)
    said_goodbye = [d.describe() for d in broker_records.of(Disconnect, client, after=mark)]
    assert not ended.clean and not said_goodbye, (
        f"a board whose power was cut cannot say goodbye, yet the broker recorded {said_goodbye} "
        f"[{ended.describe()}]"
    )
    if wire.readable("") is None:
        on_wire = [p.describe() for p in wire.packets("DISCONNECT", BOARD, since=since)]
        assert not on_wire, (
            f"a board whose power was cut sent {on_wire} on the wire; capture: {wire.pcap_path}"
        )
    # The board boots again by itself and comes back online, after the will.
    serial_log.expect_event("boot", timeout)
    connack = broker_records.wait_for(Connack, timeout, client=client, after=ended)
    assert connack.session_present, f"the broker lost the board's session: {connack.describe()}"
    serial_log.expect_event("connected", timeout, session_present=True)
    mqtt.wait_count(board.config.status_topic, b"online", 1, timeout, since=will.t)
