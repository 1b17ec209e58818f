"""The responsive loop keeps its memory bounded however many payloads circulate."""

from __future__ import annotations

import time

import pytest

from rig.board import Board
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession

pytestmark = [pytest.mark.hil, pytest.mark.firmware_mode("responsive"), pytest.mark.loop_period(5)]


def test_many_circulating_payloads_overflow_the_hold_back_list_not_the_heap(
    board: Board, serial_log: SerialLog, mqtt: HostClient, rig_session: RigSession
) -> None:
    timeout = rig_session.settings.timeout
    # The cap is the board's own, from the config.json it was deployed with.
    cap = board.config.setting("max_held")
    payloads = [b"flood-%03d" % i for i in range(cap + 16)]
    sent_at: list[float] = []
    flood_start = time.time()
    # One at a time: each comes straight back once, and its next round is held for the 5 s
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
