"""The echo loop of the reference tutorial, checked end to end on a board (virtual or USB)."""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.host_client import HostClient, Message
from rig.serialio import SerialLog
from rig.session import RigSession

pytestmark = pytest.mark.hil

TUTORIAL_PAYLOAD = b"11 22 3311"
CIRCULATIONS = 3


def wait_circulating(
    mqtt: HostClient, board: Board, payload: bytes, since: float, timeout: float
) -> list[Message]:
    """Wait until ``payload`` came back from the board ``CIRCULATIONS`` times after injection.

    The host is subscribed to the echo topic too, so the broker also hands it the injected
    message itself: that first arrival is not an echo.
    """
    seen = mqtt.wait_count(board.config.echo_topic, payload, CIRCULATIONS + 1, timeout, since=since)
    return seen[1:]


def assert_about_loop_period(arrivals: list[Message], period: float) -> None:
    """Echoes come back once per loop turn: not as fast as the broker can return them (the
    firmware would be flooding) and not stalled. The bound is loose on purpose: this checks
    behaviour, and speed belongs to the benchmarks."""
    gaps = [b.t - a.t for a, b in itertools.pairwise(arrivals)]
    median = statistics.median(gaps)
    assert 0.5 * period <= median <= 3 * period + 0.5, (
        f"echo interval median {median:.3f}s is not about the loop period {period}s (gaps {gaps})"
    )


def test_boots_connects_and_publishes_hello(
    board: Board, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    since = time.time()
    serial_log.from_now()
    board.soft_reset()
    boot = serial_log.expect_event("boot", timeout)
    assert boot["fw"], "the boot line carries no firmware version"
    serial_log.expect_event("connected", timeout, reconnect=False)
    serial_log.expect_event("published", timeout, topic=board.config.echo_topic, hex=b"hello".hex())
    mqtt.wait_count(board.config.echo_topic, b"hello", 1, timeout, since=since)
    mqtt.wait_count(board.config.status_topic, b"online", 1, timeout, since=since)


@pytest.mark.parametrize(
    "payload",
    [TUTORIAL_PAYLOAD, b"", bytes([0, 255, 1, 128, 13, 10]) + b"binary"],
    ids=["tutorial", "empty", "binary"],
)
def test_injected_message_keeps_circulating(
    board: Board, serial_log: SerialLog, mqtt: HostClient, payload: bytes, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    since = time.time()
    serial_log.note(f"injecting {payload!r} on {board.config.echo_topic}")
    mqtt.publish(board.config.echo_topic, payload)
    arrivals = wait_circulating(mqtt, board, payload, since, timeout)
    serial_log.expect_event("received", timeout, topic=board.config.echo_topic, hex=payload.hex())
    serial_log.expect_event("published", timeout, topic=board.config.echo_topic, hex=payload.hex())
    assert_about_loop_period(arrivals, board.config.loop_period)


@pytest.mark.reference_period
def test_circulates_at_the_reference_one_second_period(
    board: Board, mqtt: HostClient, rig_session: RigSession
) -> None:
    assert board.config.loop_period == 1.0
    since = time.time()
    mqtt.publish(board.config.echo_topic, TUTORIAL_PAYLOAD)
    arrivals = wait_circulating(mqtt, board, TUTORIAL_PAYLOAD, since, rig_session.settings.timeout + 3 * 1.0)
    assert_about_loop_period(arrivals, 1.0)


def test_injection_over_websocket(
    board: Board, broker: Broker, mqtt: HostClient, rig_session: RigSession, rig_artifacts: Path
) -> None:
    """The tutorial's web page speaks MQTT over WebSocket; inject the way it does."""
    if broker.ws_port is None:
        pytest.skip(f"the {broker.kind} broker offers no WebSocket listener")
    timeout = rig_session.settings.timeout
    web = HostClient(
        broker.host,
        broker.ws_port,
        f"rig-web-{rig_session.run_id}",
        transport="websockets",
        trace_path=rig_artifacts / "mqtt-websocket.jsonl",
    )
    web.connect(timeout)
    try:
        since = time.time()
        web.publish(board.config.echo_topic, TUTORIAL_PAYLOAD)
        wait_circulating(mqtt, board, TUTORIAL_PAYLOAD, since, timeout)
    finally:
        web.close()
