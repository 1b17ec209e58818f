"""An echo is the same message as the one injected (topic, payload bytes, QoS, not retained), at
every size up to the largest payload the firmware documents, and for every payload of a burst;
past that size the firmware drops the message cleanly and the loop goes on."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.echo_verdict import (
    HEAD,
    INJECT_QOS,
    assert_echo_is_the_same,
    assert_no_retained_echo,
    echo_of,
    echo_witness,
    judge_echo_qos,
)
from rig.host_client import HostClient, Message
from rig.serialio import SerialLog
from rig.session import RigSession
from rig.wire.witness import WireWitness

pytestmark = pytest.mark.hil

# A payload circulates for good once injected. A big one would keep the board and the broker busy
# for the rest of the run (each turn prints it twice as hex), so tests that inject them restart
# the firmware when done: the broker drops the QoS 0 messages in flight to a disconnected client.
# Each circulation of an N-byte payload puts about 8N characters on the console (the tuple print,
# the "received" and "published" hex): on a board's 115200-baud UART (11,520 chars/s) that bounds
# how fast it can go, so waits on big payloads allow for it.
CONSOLE_CHARS_PER_BYTE = 8
UART_CHARS_PER_S = 11_520
BURST = 8


def payload_size_for_remaining_length(topic: str, remaining: int) -> int:
    """The payload size that gives a QoS 0 PUBLISH on ``topic`` this remaining length: two bytes
    of topic length, the topic, the payload (QoS 0 has no packet identifier)."""
    return remaining - 2 - len(topic.encode())


def payload(tag: str, size: int) -> bytes:
    """``size`` bytes: a head unique to ``tag`` (HEAD bytes, so echo_of tells payloads apart),
    then every byte value in turn, so a changed, lost or reordered byte shows."""
    head = f"{size}:{tag}:".encode().ljust(HEAD, b".")[:HEAD]  # the size first: it must stay
    body = bytes(range(256)) * (size // 256 + 1)
    return (head + body)[:size]


def allowance(size: int) -> float:
    return CONSOLE_CHARS_PER_BYTE * size / UART_CHARS_PER_S


@pytest.fixture
def witness(
    broker: Broker, rig_session: RigSession, board: Board, rig_artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[HostClient]:
    with echo_witness(broker, rig_session, board, rig_artifacts, request.node.name) as client:
        yield client


@pytest.fixture
def ends_circulation(board: Board, mqtt: HostClient, rig_session: RigSession) -> Iterator[None]:
    """Restarts the board after the test, ending the circulation of what the test injected.

    A power cut rather than Ctrl-C: the unix port raises KeyboardInterrupt asynchronously, even
    inside a garbage collection, and with big payloads circulating the GC runs often enough that
    Ctrl-C can leave the heap locked and the firmware's own cleanup dies ("heap is locked").
    The board is back when its hello reaches the host (any firmware: no console line needed)."""
    yield
    since = time.time()
    board.power_cycle()
    hello = board.config.contract.hello or b"hello"
    mqtt.wait_count(board.config.echo_topic, hello, 1, rig_session.settings.timeout, since=since)


def inject_and_check(
    mqtt: HostClient, witness: HostClient, board: Board, data: bytes, timeout: float
) -> None:
    since = time.time()
    mqtt.publish(board.config.echo_topic, data, qos=INJECT_QOS)
    assert_echo_is_the_same(witness, board, data, since, timeout + allowance(len(data)))


def test_echo_is_the_same_message_across_the_one_byte_length_boundary(
    board: Board,
    broker: Broker,
    mqtt: HostClient,
    witness: HostClient,
    wire: WireWitness,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Remaining length 127 fits MQTT's one-byte length field, 128 needs two; and payloads of 127
    and 128 bytes themselves, for a firmware that confuses the two."""
    timeout = rig_session.settings.timeout
    topic = board.config.echo_topic
    sizes = [
        payload_size_for_remaining_length(topic, 127),
        payload_size_for_remaining_length(topic, 128),
        127,
        128,
    ]
    since = time.time()
    for size in sizes:
        inject_and_check(mqtt, witness, board, payload("one-byte-len", size), timeout)
    judge_echo_qos(witness, wire, board, request.node, sizes, since, timeout)
    assert_no_retained_echo(broker, rig_session, board, rig_artifacts, "len1")


@pytest.mark.hard_reset  # ends the circulation with a power cut (ends_circulation)
@pytest.mark.usefixtures("ends_circulation")
def test_echo_is_the_same_message_across_the_two_byte_length_boundary_up_to_max_payload(
    board: Board,
    broker: Broker,
    mqtt: HostClient,
    witness: HostClient,
    wire: WireWitness,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Remaining length 16383 fits two length bytes, 16384 needs three; then the largest payload
    the firmware documents (max_payload in its config.json, 16 KiB: the unix port's heap holds
    it many times over, and an ESP32's once; see rig/firmware_config.py)."""
    timeout = rig_session.settings.timeout
    topic = board.config.echo_topic
    limit = board.config.setting("max_payload")
    sizes = [payload_size_for_remaining_length(topic, 16383), payload_size_for_remaining_length(topic, 16384)]
    if limit < sizes[-1]:
        pytest.skip(f"the board's max_payload {limit} is below the 16384 remaining-length boundary")
    since = time.time()
    for size in [*sizes, limit]:
        inject_and_check(mqtt, witness, board, payload("two-byte-len", size), timeout)
    judge_echo_qos(witness, wire, board, request.node, [*sizes, limit], since, timeout)
    assert_no_retained_echo(broker, rig_session, board, rig_artifacts, "len2")


def test_payload_above_max_payload_is_dropped_cleanly_and_the_loop_goes_on(
    board: Board,
    mqtt: HostClient,
    witness: HostClient,
    serial_log: SerialLog,
    rig_session: RigSession,
) -> None:
    """One byte past max_payload: the firmware reads the payload in small chunks without keeping
    it, says so in an error line naming the size, does not reboot, and still echoes."""
    timeout = rig_session.settings.timeout
    size = board.config.setting("max_payload") + 1
    started = time.time()
    serial_log.from_now()
    mqtt.publish(board.config.echo_topic, payload("oversize", size))
    # The next event that is an error or a boot says how the firmware took it.
    line = serial_log.expect(re.compile(r'^@rig .*"ev": "(error|boot)"'), timeout + allowance(size))
    event = json.loads(line.string[len("@rig ") :])
    assert event.get("ev") == "error" and event.get("type") == "PayloadTooLarge", (
        f"the firmware did not drop the oversize payload of {size} bytes cleanly: its next error or "
        f"boot line was {line.string!r}; full log: {serial_log.path}"
    )
    assert event.get("size") == size, (
        f"the error line names size {event.get('size')!r}, not the {size} bytes injected: {line.string!r}"
    )
    # The loop goes on: a normal message still circulates, and the board did not reboot.
    normal = payload("after-oversize", 40)
    since = time.time()
    inject_and_check(mqtt, witness, board, normal, timeout)
    mqtt.wait_count(board.config.echo_topic, normal, 3, timeout, since=since)  # and again
    reboots = [e for e in serial_log.events("boot") if e["t"] >= started]
    assert not reboots, f"the board rebooted after an oversize payload of {size} bytes: {reboots}"
    # The broker's side: the injected message passed the witness once, and nothing of it came
    # back; not whole, and not a truncated copy either (an error line saying "dropped" is only
    # the board's word).
    head = payload("oversize", size)[:HEAD]
    copies = [m for m in witness.messages(since=started) if m.payload[:HEAD] == head]
    echoed = [f"{len(m.payload)} bytes on {m.topic!r}" for m in copies[1:]]
    assert not echoed, (
        f"the firmware reported the oversize payload of {size} bytes dropped, yet the broker got "
        f"it back from the board: {echoed}; full log: {witness.trace_path}"
    )


def inject_burst(
    mqtt: HostClient, witness: HostClient, board: Board, tag: str, size: int, timeout: float
) -> list[int]:
    """Inject ``size`` distinct payloads at once, check each echo; their sizes."""
    topic = board.config.echo_topic
    burst = [payload(f"{tag}{i}", 20 + i) for i in range(size)]
    since = time.time()
    for data in burst:
        mqtt.publish(topic, data, qos=INJECT_QOS)

    def missing(received: list[Message]) -> list[bytes]:
        return [d for d in burst if echo_of(received, topic, d, since) is None]

    # A firmware that reads one message a turn (the tutorial) echoes the last of them a turn per
    # message later, the hello circulating among them: the wait allows for that many turns.
    wait = timeout + (size + 1) * board.config.effective_loop_period
    try:
        witness.wait_for(lambda r: not missing(r), f"the echo of each of {size} payloads of a burst", wait)
    except AssertionError as e:
        lost = missing(witness.messages())
        raise AssertionError(
            f"{len(lost)} of the {size} payloads of a burst never came back: {lost}\n{e}"
        ) from e
    for data in burst:
        assert_echo_is_the_same(witness, board, data, since, timeout)
    return [len(data) for data in burst]


@pytest.mark.hard_reset  # ends the circulation with a power cut (ends_circulation)
@pytest.mark.usefixtures("ends_circulation")
def test_every_payload_of_a_burst_comes_back_the_same(
    board: Board,
    broker: Broker,
    mqtt: HostClient,
    witness: HostClient,
    wire: WireWitness,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Several distinct payloads injected at once (none waits for an echo): each comes back, the
    same message, in whatever order. Any echo firmware: however many a turn reads, the rest wait
    in the socket for the next."""
    timeout = rig_session.settings.timeout
    since = time.time()
    sizes = inject_burst(mqtt, witness, board, "burst", BURST, timeout)
    judge_echo_qos(witness, wire, board, request.node, sizes, since, timeout)
    assert_no_retained_echo(broker, rig_session, board, rig_artifacts, "burst")


@pytest.fixture
def max_messages_per_turn(board: Board) -> int:
    """The most messages the firmware reads in one turn; a firmware without the setting skips as
    "not checked" here, before ``ends_circulation`` would restart a board the test never used."""
    return int(board.config.setting("max_messages_per_turn"))


@pytest.mark.hard_reset  # ends the circulation with a power cut (ends_circulation)
def test_a_burst_larger_than_one_turn_reads_comes_back_whole(
    max_messages_per_turn: int,
    ends_circulation: None,
    board: Board,
    mqtt: HostClient,
    witness: HostClient,
    wire: WireWitness,
    rig_session: RigSession,
    request: pytest.FixtureRequest,
) -> None:
    """A burst larger than the firmware reads in one turn (max_messages_per_turn, and 8 more):
    what a turn leaves unread is read on the next, and nothing of the burst is lost however the
    turns split it (a firmware that keeps only the last 8 of a turn fails here)."""
    timeout = rig_session.settings.timeout
    since = time.time()
    sizes = inject_burst(mqtt, witness, board, "big", max_messages_per_turn + BURST, timeout)
    judge_echo_qos(witness, wire, board, request.node, sizes, since, timeout)
