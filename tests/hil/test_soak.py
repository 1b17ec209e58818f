"""The board's heap over many echoes: a firmware that keeps something per message runs out.

A fixed working set of payloads circulates in responsive mode at a short loop period, so the
firmware's live state stays the same size and every echo is a full round trip board -> broker
-> board. The firmware reports its free heap after ``gc.collect()`` every ``STATS_EVERY``
echoes (its ``stats`` event); a least-squares line through those samples gives the bytes lost
per message, and a steady fall past ``BOUND`` fails the test.
"""

from __future__ import annotations

import math
import time

import pytest

from rig.board import Board
from rig.health.heap import DRIFT_BOUND, HeapSample, check_drift, samples_from
from rig.host_client import HostClient
from rig.serialio import SerialLog
from rig.session import RigSession

PERIOD = 0.02
STATS_EVERY = 20
WORKING_SET = 16

pytestmark = [
    pytest.mark.hil,
    pytest.mark.soak,
    pytest.mark.firmware_mode("responsive"),
    pytest.mark.loop_period(PERIOD),
    pytest.mark.firmware_config(stats_every=STATS_EVERY),
]

# The bound, and how it was measured, live with the check (rig.health.heap), for the benchmarks too.
BOUND = DRIFT_BOUND
# The first samples are left out: the firmware's hold-back list and its record of when each
# payload was last echoed grow to the working set's size before the state is steady.
WARMUP_MESSAGES = 100
# The slowest circulation the timeout allows for (messages/s); measured
SLOWEST_RATE = 50.0


def test_heap_holds_steady_over_many_echoes(
    board: Board,
    serial_log: SerialLog,
    mqtt: HostClient,
    rig_session: RigSession,
    soak_messages: int,
    request: pytest.FixtureRequest,
) -> None:
    config = board.config
    assert config.setting("stats_every") == STATS_EVERY
    timeout = rig_session.settings.timeout
    began = time.time()
    working_set = [b"soak-%02d" % i for i in range(WORKING_SET)]
    for payload in working_set:
        mqtt.publish(config.echo_topic, payload)
    # The state is steady only once every payload of the working set circulates: the broker may
    # hand the board the last of them some hundreds of echoes after the first (amqtt did), and
    # the state growing then is no leak. So the warm-up counts from the board's first echo of
    # the last of them.
    for payload in working_set:
        serial_log.expect_event("published", timeout, hex=payload.hex())
    before = samples_from(serial_log.events("stats"))
    start = before[-1].handled if before else 0
    target = math.ceil((start + WARMUP_MESSAGES + soak_messages) / STATS_EVERY) * STATS_EVERY
    serial_log.expect_event("stats", timeout + (target - start) / SLOWEST_RATE, handled=target)
    took = time.time() - began
    samples: list[HeapSample] = [
        s for s in samples_from(serial_log.events("stats")) if start + WARMUP_MESSAGES < s.handled <= target
    ]
    drift = check_drift(samples, BOUND)
    # For the report and the benchmarks: the figure next to its bound.
    request.node.user_properties.append(("heap_bytes_per_message", f"{drift.bytes_per_message:.2f}"))
    request.node.user_properties.append(("heap_bound_bytes_per_message", f"{BOUND:g}"))
    serial_log.note(f"soak: {target - start} echoes in {took:.1f}s; heap drift {drift.describe()}")
