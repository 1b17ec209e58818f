"""The responsive loop keeps its memory bounded however many payloads circulate."""

from __future__ import annotations

import time

import pytest

from rig.board import Board
from rig.errors import WaitTimeout
from rig.host_client import HostClient, Message
from rig.serialio import SerialLog
from rig.session import RigSession

# The period each repeat is held for: longer than the flood takes (80 payloads, one round trip
# each: 0.1 s on the virtual board with mosquitto, 0.2 s with amqtt; a board on Wi-Fi, some tens
# of ms a round trip). The check that dropped payloads stay dropped watches for up to a period.
HOLD_PERIOD = 2

pytestmark = [pytest.mark.hil, pytest.mark.firmware_mode("responsive"), pytest.mark.loop_period(HOLD_PERIOD)]


def test_many_circulating_payloads_overflow_the_hold_back_list_not_the_heap(
    board: Board, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    # The cap is the board's own, from the config.json it was deployed with.
    cap = board.config.setting("max_held")
    payloads = [b"flood-%03d" % i for i in range(cap + 16)]
    sent_at: list[float] = []
    flood_start = time.time()
    # One at a time: each comes straight back once, and its next round is held for the
    # period, past the cap. (All at once, a broker that makes the firmware drain its own
    # subscription before reading its next publish - amqtt does - can deadlock with umqtt's
    # blocking writes; that is a limit of the firmware's socket use, not what this checks.)
    for payload in payloads:
        sent_at.append(time.time())
        mqtt.publish(board.config.echo_topic, payload)
        mqtt.wait_count(board.config.echo_topic, payload, 2, timeout)
    overflow = serial_log.expect_event("error", timeout, type="HeldOverflow")
    # Not before: up to the cap, every payload (and "hello") must find room.
    injected = sum(1 for t in sent_at if t < overflow["t"])
    assert injected >= cap, (
        f"the board dropped a held payload after {injected} distinct payloads, "
        f"below the cap max_held={cap} of its config.json"
    )
    # Still alive and still echoing at once: a fresh payload comes back well before the period.
    since = time.time()
    mqtt.publish(board.config.echo_topic, b"after-flood")
    mqtt.wait_count(board.config.echo_topic, b"after-flood", 2, timeout, since=since)
    reboots = [e for e in serial_log.events("boot") if e["t"] >= flood_start]
    assert not reboots, f"the board rebooted under the flood: {reboots}"
    assert_dropped_payloads_stop(mqtt, board, serial_log)


# How long after its period is up a held repeat may take to reach the host (a busy host).
DUE_MARGIN_S = 0.5


def assert_dropped_payloads_stop(mqtt: HostClient, board: Board, serial_log: SerialLog) -> None:
    """The broker's side of "dropped": a payload the board says it dropped from the hold-back
    list never comes back from it again. Its one copy was held until its period was up, one
    period after the board last echoed it; still held, it would come back then. Watched until
    the first of them was due."""
    period = board.config.effective_loop_period
    topic = board.config.echo_topic
    dropped: dict[bytes, float] = {}
    for e in serial_log.events("error", type="HeldOverflow"):
        dropped.setdefault(bytes.fromhex(e["hex"]), e["t"])  # each one's first drop
    if not dropped:
        return
    last_echoed = {
        p: max((m.t for m in mqtt.messages(topic, p) if m.t <= t), default=t) for p, t in dropped.items()
    }
    due = min(last_echoed.values()) + period + DUE_MARGIN_S

    def came_back(received: list[Message]) -> bool:
        return any(m.topic == topic and m.payload in dropped and m.t > dropped[m.payload] for m in received)

    try:
        mqtt.wait_for(came_back, "a dropped payload coming back", max(0.0, due - time.time()))
    except WaitTimeout:
        return  # none did
    again = sorted({m.payload for m in mqtt.messages(topic) if came_back([m])})
    raise AssertionError(
        f"the board reported {len(dropped)} payload(s) dropped from its hold-back list "
        f"(HeldOverflow), yet it echoed {again} after dropping them: the list goes on growing "
        f"past max_held={board.config.setting('max_held')}; full log: {serial_log.path}"
    )
