"""How the firmware leaves the broker: cleanly on Ctrl-C, and with its will on a power cut."""

from __future__ import annotations

import time

import pytest

from rig.board import Board
from rig.broker import Broker, EventKind
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession

pytestmark = pytest.mark.hil


def status_payloads(mqtt: HostClient, board: Board, since: float) -> list[bytes]:
    return [m.payload for m in mqtt.messages(board.config.status_topic, since=since)]


def test_ctrl_c_disconnects_cleanly_and_no_will_fires(
    board: Board, broker: Broker, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    client_id = board.config.client_id
    # Let messages circulate first: the RST trap only bites with echoes in flight.
    since = time.time()
    mqtt.publish(board.config.echo_topic, b"11 22 3311")
    mqtt.wait_count(board.config.echo_topic, b"11 22 3311", 2, timeout, since=since)
    mark = broker.log_mark()
    since = time.time()

    serial_log.from_now()
    board.interrupt()
    serial_log.expect_event("disconnected", timeout, clean=True)

    if broker.supports_disconnect_audit:
        broker.wait_for_client_event(client_id, EventKind.DISCONNECT_RECEIVED, timeout, since=mark)
    # It can connect again at once, and the broker hands it its session.
    board.soft_reset()
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
        f"broker log: {broker.log_path}"
    )
    assert statuses[:2] == [b"offline", b"online"], f"unexpected status sequence {statuses}"
    if broker.supports_disconnect_audit:
        unclean = [
            e.line for e in broker.client_events(client_id, since=mark) if e.kind is EventKind.CLOSED_UNCLEAN
        ]
        assert not unclean, f"the broker saw an unclean close: {unclean}"


def test_power_cut_fires_the_will(
    board: Board, broker: Broker, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    mark = broker.log_mark()
    since = time.time()
    serial_log.from_now()
    board.power_cycle()
    will = mqtt.wait_count(board.config.status_topic, b"lost", 1, timeout, since=since)[0]
    if broker.supports_disconnect_audit:
        broker.wait_for_client_event(board.config.client_id, EventKind.CLOSED_UNCLEAN, timeout, since=mark)
    # The board boots again by itself and comes back online, after the will.
    serial_log.expect_event("boot", timeout)
    serial_log.expect_event("connected", timeout, session_present=True)
    mqtt.wait_count(board.config.status_topic, b"online", 1, timeout, since=will.t)
