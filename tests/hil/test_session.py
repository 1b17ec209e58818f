"""The persistent session (clean_session=False) across board resets and broker restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession

pytestmark = pytest.mark.hil


def test_reset_finds_session_and_does_not_resubscribe(
    board: Board, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    serial_log.from_now()
    board.soft_reset()
    boot = serial_log.expect_event("boot", timeout)
    serial_log.expect_event("connected", timeout, session_present=True)
    serial_log.expect_event("published", timeout, topic=board.config.echo_topic, hex=b"hello".hex())
    since = time.time()
    mqtt.publish(board.config.echo_topic, b"11 22 3311")
    mqtt.wait_count(board.config.echo_topic, b"11 22 3311", 3, timeout, since=since)
    since_boot = [e for e in serial_log.events("subscribed") if e["t"] >= boot["t"]]
    assert not since_boot, f"the firmware subscribed again although the broker kept its session: {since_boot}"


def test_broker_restart_loses_session_and_firmware_resubscribes(
    board: Board, broker: Broker, serial_log: SerialLog, rig_session: RigSession, rig_artifacts: Path
) -> None:
    """A restarted broker has no session for the board: umqtt.robust reconnects, but only a
    firmware that then subscribes again will ever receive anything."""
    if broker.kind == "external":
        pytest.skip("an external broker cannot be restarted by the rig")
    timeout = rig_session.settings.timeout
    broker.restart(timeout=timeout)
    serial_log.expect_event("connected", timeout + 3, reconnect=True, session_present=False)
    serial_log.expect_event("subscribed", timeout, topic=board.config.echo_topic)
    # Nothing circulates any more: the broker forgot the messages in flight.
    serial_log.expect_event("idle", timeout)
    client = HostClient(
        broker.host,
        broker.port,
        f"rig-host2-{rig_session.run_id}",
        trace_path=rig_artifacts / "mqtt-after-restart.jsonl",
    )
    client.connect(timeout)
    try:
        client.subscribe(f"{board.config.topic_prefix}/#")
        since = time.time()
        client.publish(board.config.echo_topic, b"11 22 3311")
        client.wait_count(board.config.echo_topic, b"11 22 3311", 3, timeout, since=since)
    finally:
        client.close()
