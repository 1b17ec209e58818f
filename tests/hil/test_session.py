"""The persistent session (clean_session=False) across board resets and broker restarts.

The broker's records decide (what it answered in CONNACK, whether it received a SUBSCRIBE); the
firmware's console lines are a second witness.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.access import HOST
from rig.broker.record_log import RecordLog
from rig.broker.records import BrokerStarted, Connack, Connect, Subscribe
from rig.fixtures.contract import console_witness
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from tests.hil.board_online import wait_online

pytestmark = pytest.mark.hil


def test_reset_finds_session_and_does_not_resubscribe(
    board: Board,
    broker_records: RecordLog,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    request: pytest.FixtureRequest,
) -> None:
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    console = console_witness(request.node, board.config.contract, "boot", "subscribed", what="the session")
    since = broker_records.mark()
    restarted = time.time()
    serial_log.from_now()
    board.soft_reset()
    # Back before any record is asked for (see tests/hil/board_online.py).
    wait_online(mqtt, board, timeout, since=restarted)
    connack = broker_records.wait_for(Connack, timeout, client=client, after=since)
    assert connack.session_present, (
        f"the broker kept no session for the board after a reset: {connack.describe()}; "
        f"its CONNECT: {[c.describe() for c in broker_records.connects(client, after=since)]}"
    )
    if console:
        boot = serial_log.expect_event("boot", timeout)
        serial_log.expect_event("connected", timeout, session_present=True)
        serial_log.expect_event("published", timeout, topic=board.config.echo_topic, hex=b"hello".hex())
    sent = time.time()
    mqtt.publish(board.config.echo_topic, b"11 22 3311")
    mqtt.wait_count(board.config.echo_topic, b"11 22 3311", 3, timeout, since=sent)
    # A SUBSCRIBE would come right after the CONNACK, long before three echoes circulated.
    again = broker_records.subscribes(client, after=connack)
    assert not again, (
        "the firmware subscribed again although the broker kept its session: the broker received "
        f"[{again[0].describe()}] after [{connack.describe()}]; records: {broker_records.path}"
    )
    if not console:
        return
    since_boot = [e for e in serial_log.events("subscribed") if e["t"] >= boot["t"]]
    assert not since_boot, f"the firmware subscribed again although the broker kept its session: {since_boot}"


def test_broker_restart_loses_session_and_firmware_resubscribes(
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A restarted broker has no session for the board: umqtt.robust reconnects, but only a
    firmware that then subscribes again will ever receive anything."""
    if broker.kind == "external":
        pytest.skip("an external broker cannot be restarted by the rig")
    timeout = rig_session.settings.timeout
    client = board.config.client_id
    since = broker_records.mark()
    broker.restart(timeout=timeout)
    # Only the new broker's records count. The old one may write some after the mark: amqtt
    # still takes connections while it shuts down, so the board may connect (and subscribe)
    # to it once more before it is gone.
    run = broker_records.wait_for(BrokerStarted, timeout, after=since).epoch
    # umqtt.robust retries after a second; the new broker answers "no session".
    connect = broker_records.wait_for(Connect, timeout + 3, client=client, epoch=run)
    connack = broker_records.wait_for(Connack, timeout, client=client, after=connect)
    assert not connect.clean_session, f"the board reconnected with a clean session: {connect.describe()}"
    assert not connack.session_present, f"a restarted broker still had a session: {connack.describe()}"
    console = console_witness(
        request.node, board.config.contract, "connected", "subscribed", what="resubscribing"
    )
    if console:
        serial_log.expect_event("connected", timeout, reconnect=True, session_present=False)
        serial_log.expect_event("subscribed", timeout, topic=board.config.echo_topic)
    # What the firmware says is a second witness: the broker must have received the SUBSCRIBE.
    subscribe = broker_records.wait_for(
        Subscribe,
        timeout,
        client=client,
        after=connack,
        epoch=run,
        where=lambda s: board.config.echo_topic in [f.topic for f in s.topics],
        what=f"topic {board.config.echo_topic!r}",
    )
    # Nothing circulates any more: the broker forgot the messages in flight.
    if console:
        serial_log.expect_event("idle", timeout)
    host = HostClient(
        broker.host,
        broker.port,
        f"rig-host2-{rig_session.run_id}",
        trace_path=rig_artifacts / "mqtt-after-restart.jsonl",
        login=broker.login(HOST),
    )
    host.connect(timeout)
    try:
        for topics in board.config.watch_filters():
            host.subscribe(topics)
        sent = time.time()
        host.publish(board.config.echo_topic, b"11 22 3311")
        host.wait_count(board.config.echo_topic, b"11 22 3311", 3, timeout, since=sent)
    finally:
        host.close()
    # Once is enough: a firmware that kept subscribing would flood the broker.
    subscribes = [s.describe() for s in broker_records.subscribes(client, epoch=run)]
    assert subscribes == [subscribe.describe()], (
        f"the firmware subscribed more than once to the restarted broker: {subscribes}; "
        f"records: {broker_records.path}"
    )
