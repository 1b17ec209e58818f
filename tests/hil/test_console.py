"""The console contract: what the tutorial prints for people, checked on the serial log itself
(not only on the firmware's ``@rig`` event lines): every received message as the tuple
``(topic, msg)``, and ``other operator`` on a turn when nothing arrived."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.record_log import RecordLog
from rig.broker.records import Connect
from rig.contract import NotDeclared
from rig.fixtures.contract import console_witness
from rig.health.failures import HeapDrift
from rig.health.heap import HeapSample, check_drift
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession
from tests.hil.board_online import wait_online

pytestmark = pytest.mark.hil


def printed(topic: str, payload: bytes) -> str:
    """The line ``print((topic, msg))`` writes: MicroPython's repr of a tuple of two bytes
    objects, which is CPython's for these payloads."""
    return repr((topic.encode(), payload))


@pytest.mark.parametrize(
    "payload",
    [b"11 22 3311 console", bytes([0, 255, 10, 13, 39, 34, 92]) + b"console"],
    ids=["text", "binary"],
)
def test_console_prints_every_received_message(
    board: Board,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    payload: bytes,
    request: pytest.FixtureRequest,
) -> None:
    timeout = rig_session.settings.timeout
    contract = board.config.contract
    if contract.received_print != "tuple":
        raise NotDeclared(f"the firmware does not print what it receives ({contract.path})")
    payload += uuid.uuid4().hex[:6].encode()  # circulating once, so each print is this injection's
    topic = board.config.echo_topic
    # Never inject into a board that is still booting: the message would be lost, not echoed.
    wait_online(mqtt, board, timeout)
    since = time.time()
    mqtt.publish(topic, payload)
    # Three arrivals at the board: the injected message and two echoes of it.
    mqtt.wait_count(topic, payload, 3, timeout, since=since)
    line = printed(topic, payload)
    if not console_witness(request.node, contract, "received", what="how many messages arrived"):
        # The wire says it instead: every echo the board sent proves a message it received. One
        # more echo later, the prints of the first two are on the console.
        echoes = len(mqtt.messages(topic, payload, since=since)) - 1
        mqtt.wait_count(topic, payload, echoes + 2, timeout, since=since)
        shown = [ln for ln in serial_log.lines() if ln.text == line]
        assert len(shown) >= echoes, (
            f"the console does not print every received message: the board echoed {payload!r} "
            f"{echoes} time(s), so received it as often, but printed {len(shown)} line(s) {line!r}; "
            f"full log: {serial_log.path}"
        )
        return
    # The tutorial's callback prints before the firmware's "received" event line, so every event
    # line captured has its print captured before it.
    events = serial_log.events("received", topic=topic, hex=payload.hex())
    shown = [ln for ln in serial_log.lines() if ln.text == line]
    assert events, f"no 'received' event for {payload!r}: the board never got it; full log: {serial_log.path}"
    assert len(shown) >= len(events), (
        f"the console does not print every received message: {len(events)} 'received' events for "
        f"{payload!r} but {len(shown)} line(s) {line!r}; full log: {serial_log.path}"
    )


# Idle turns watched after the board is back (at the test period, 0.1 s: 1.2 s), and how many
# of the first are left out of the heap's fit: the reconnect's own allocations settle on them.
IDLE_TURNS = 12
IDLE_SETTLE = 2
# Bytes of free heap lost per idle turn above which the heap is said to leak on idle turns, beyond
# the fit's noise (rig.health.heap.SIGMAS standard errors). Nothing is kept on an idle turn: the
# correct firmware's slope is 0 (every sample the same, virtual board, mosquitto and amqtt); a
# firmware that keeps one small tuple per turn (its ping history, say) loses 40 B a turn.
IDLE_DRIFT_BOUND = 2.0


def assert_heap_steady_on_idle_turns(idle: list[dict[str, Any]], serial_log: SerialLog) -> None:
    """The free heap after collection, which each ``idle`` event carries, does not fall from one
    idle turn to the next: the stats events sample the heap only while the board echoes."""
    samples = [
        HeapSample(turn, e["mem_free"], float(e["t"]))
        for turn, e in enumerate(idle)
        if isinstance(e.get("mem_free"), int)
    ]
    if len(samples) < 3:
        return  # a firmware that does not report its heap when idle: nothing to fit
    try:
        check_drift(samples, IDLE_DRIFT_BOUND)
    except HeapDrift as e:
        raise AssertionError(
            f"the heap leaks on idle turns, when nothing arrives: {e} (a 'message' here is an idle "
            f"turn); full log: {serial_log.path}"
        ) from e


def test_console_prints_the_idle_line_when_nothing_arrived(
    board: Board,
    broker: Broker,
    serial_log: SerialLog,
    rig_session: RigSession,
    broker_records: RecordLog,
    request: pytest.FixtureRequest,
) -> None:
    """Messages circulate for good once injected (the board's own "hello" too), so the board is
    idle only when the circulation is lost: a restarted broker forgets the messages in flight."""
    if broker.kind == "external":
        pytest.skip("an external broker cannot be restarted by the rig, and only that ends the circulation")
    timeout = rig_session.settings.timeout
    contract = board.config.contract
    idle_line = contract.idle_line
    if idle_line is None:
        raise NotDeclared(f"the firmware declares no idle line ({contract.path})")
    mark = broker_records.mark()
    serial_log.from_now()
    broker.restart(timeout=timeout)
    if not console_witness(request.node, contract, "connected", "idle", what="the idle turns"):
        # The broker's record says when the board is back; from then on it must go on turning
        # and showing its idle line, a turn after another.
        broker_records.wait_for(Connect, timeout + 3, client=board.config.client_id, after=mark)
        serial_log.from_now()
        exact = re.compile(f"^{re.escape(idle_line)}$")
        serial_log.expect(exact, timeout)
        serial_log.expect(exact, timeout)
        return
    serial_log.expect_event("connected", timeout + 3, reconnect=True)
    # Idle turns, enough to see the heap on them (each idle line carries the free heap).
    idle_turns = [serial_log.expect_event("idle", timeout) for _ in range(IDLE_TURNS)]
    assert_heap_steady_on_idle_turns(idle_turns[IDLE_SETTLE:], serial_log)
    # The tutorial prints its line, then the firmware reports the idle turn: every event line
    # captured has its print captured before it.
    events = serial_log.events("idle")
    shown = [ln for ln in serial_log.lines() if ln.text == idle_line]
    assert len(shown) >= len(events), (
        f"the console does not show the idle line {idle_line!r} on every idle turn: {len(events)} "
        f"'idle' events but {len(shown)} such line(s); full log: {serial_log.path}"
    )
