"""The status contract: ``online``, ``offline`` and the will ``lost`` are retained, so a client
that subscribes after the event sees the board's current state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rig.board import Board
from rig.broker import Broker
from rig.broker.access import HOST
from rig.broker.record_log import RecordLog
from rig.fixtures.contract import console_witness, not_checked
from rig.host_client import HostClient, Message, retained_on
from rig.serialio import SerialLog
from rig.session import RigSession
from tests.hil.witnesses_agree import assert_console_agrees_with_broker, assert_status_only_changes

pytestmark = pytest.mark.hil


class LateSubscriber:
    """Connects a fresh client after each event and reports the first status message it gets."""

    def __init__(self, broker: Broker, rig_session: RigSession, board: Board, folder: Path) -> None:
        self.broker = broker
        self.rig_session = rig_session
        self.topic = board.config.status_topic
        self.trace = folder / "mqtt-late-subscribers.jsonl"
        self.count = 0

    def first(self) -> Message | None:
        self.count += 1
        got = retained_on(
            self.broker.host,
            self.broker.port,
            f"rig-late-{self.rig_session.run_id}-status{self.count}",
            self.topic,
            self.rig_session.settings.timeout,
            self.trace,
            login=self.broker.login(HOST),
        )
        return got[0] if got else None

    def assert_sees(self, expected: bytes, after: str) -> None:
        first = self.first()
        assert first is not None and first.retain and first.payload == expected, (
            f"{expected.decode()!r} was not retained: a client subscribing to {self.topic!r} {after} "
            f"got {first.describe() if first else 'no retained status'} first, "
            f"not {expected!r} (retained); full log: {self.trace}"
        )


@pytest.mark.hard_reset  # the will needs a power cut
def test_status_is_retained_after_each_change(
    board: Board,
    broker: Broker,
    broker_records: RecordLog,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    rig_artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    timeout = rig_session.settings.timeout
    status = board.config.status_topic  # "not checked" for a firmware without one
    board.config.contract.require_will("'lost' retained after a power cut")
    # The status topic's own messages decide; the console's event lines are a second witness.
    console = console_witness(
        request.node, board.config.contract, "disconnected", "connected", what="presence"
    )
    late = LateSubscriber(broker, rig_session, board, rig_artifacts)

    def last_status(received: list[Message]) -> bytes | None:
        said = [m.payload for m in received if m.topic == status]
        return said[-1] if said else None

    # If the board fixture restarted the firmware, its "online" may still be on the way.
    mqtt.wait_for(
        lambda r: last_status(r) == b"online",
        f"the board's last status to be 'online' on {status!r}",
        timeout,
    )
    # From here on every status message must answer a change the broker saw (judged at the end).
    mark = broker_records.mark() if broker.records_unavailable is None else None
    began = time.time()
    late.assert_sees(b"online", "while the board runs")

    # A clean goodbye: "offline".
    since = time.time()
    serial_log.from_now()
    board.interrupt()
    if console:
        serial_log.expect_event("disconnected", timeout, clean=True)
    mqtt.wait_count(status, b"offline", 1, timeout, since=since)
    late.assert_sees(b"offline", "after the board said goodbye")

    since = time.time()
    board.soft_reset()
    if console:
        serial_log.expect_event("connected", timeout)
    mqtt.wait_count(status, b"online", 1, timeout, since=since)
    late.assert_sees(b"online", "after the board came back")

    # A power cut: the broker publishes the will, "lost". The virtual board boots and is online
    # again ~25 ms later, and its new "online" would hide whether "lost" was retained. So the late
    # subscriber is connected beforehand and subscribes the moment the host client sees the will,
    # from that client's network thread (well under a millisecond).
    armed = HostClient(
        broker.host,
        broker.port,
        f"rig-late-{rig_session.run_id}-lost",
        trace_path=late.trace,
        login=broker.login(HOST),
    )
    armed.connect(timeout)
    try:
        subscribed: list[int] = []

        def subscribe_on_will(message: Message) -> None:
            if message.topic == status and message.payload == b"lost" and not subscribed:
                subscribed.append(armed.subscribe_nowait(status, qos=2))

        mqtt.on_message(subscribe_on_will)
        since = time.time()
        serial_log.from_now()
        board.power_cycle()
        will = mqtt.wait_count(status, b"lost", 1, timeout, since=since)[0]
        # What came before the SUBACK is not for this subscription (amqtt hands a connecting
        # client the retained messages of other clients' subscriptions).
        acked = armed.wait_suback(subscribed[0], status, timeout)
        received = armed.wait_for(
            lambda ms: any(m.t >= acked for m in ms),
            f"the first message on {status!r} after the will",
            timeout,
        )
    finally:
        armed.close()
    first = next(m for m in received if m.t >= acked)
    assert first.retain and first.payload == b"lost", (
        f"'lost' was not retained: a client subscribing to {status!r} right after the will got "
        f"{first.describe()} first, not b'lost' (retained); full log: {late.trace}"
    )
    if console:
        serial_log.expect_event("connected", timeout)
    mqtt.wait_count(status, b"online", 1, timeout, since=will.t)
    late.assert_sees(b"online", "after the board came back from the power cut")
    if mark is None:
        not_checked(
            request.node, f"status messages against the broker's records: {broker.records_unavailable}"
        )
        return
    assert_status_only_changes(mqtt, broker_records, board, mark=mark, since=began)
    if console:
        assert_console_agrees_with_broker(
            serial_log, broker_records, board.config.client_id, mark=mark, since=began, timeout=timeout
        )
