"""The take-over backoff caught on any broker: the mutant of test_catches_takeover_backoff.py that
connects again at once after its connection was taken over (still reporting each wait on its
console) must fail the scripted broker's taken-over-backoff scenario
(tests/rig/test_broker_takeover.py), naming the storm, on the broker's own timings. The collision
test catches it on mosquitto only: amqtt 0.12.1 makes no take-over storm. Two more mutants break
the scenario's other checks: the row never started again after a connection that lasted, and
waits that do not grow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids
from tests.rig.test_catches_takeover_backoff import MUTANTS as COLLISION_MUTANTS

pytestmark = pytest.mark.mutation

TEST = "tests/rig/test_broker_takeover.py::test_a_board_taken_over_again_and_again_waits_longer_each_time"

# The same edit of the firmware, judged by the scenario instead of the collision test; no broker
# pinned: the scripted broker is the board's broker there, whichever embedded broker the run has.
STORM = [
    dataclasses.replace(
        mutant,
        test=TEST,
        cause="the board did not wait after its second connection in a row lost soon",
        args=(),
    )
    for mutant in COLLISION_MUTANTS
    if mutant.name.startswith("connects again at once after a take-over")
]

# The scenario's other checks, each with the defect it guards.
MUTANTS: list[Mutant] = [
    *STORM,
    Mutant(
        "never starts the row of short connections again after one that lasted",
        "connect_retry.py",
        "    if lasted >= 3 * soon_wait * 1000 or setting_up:\n",
        "    if setting_up:\n",
        TEST,
        "the board did not connect again at once after close #1 (the first short connection after one "
        "that lasted)",
    ),
    Mutant(
        "waits as long after every short connection in a row (no backoff)",
        "connect_retry.py",
        "    soon_wait = min(soon_wait * 2, settings.BACKOFF_MAX)\n",
        "    soon_wait = settings.BACKOFF_INITIAL\n",
        TEST,
        "the board's waits after short connections in a row did not grow",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_takeover_scenario_catches(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
