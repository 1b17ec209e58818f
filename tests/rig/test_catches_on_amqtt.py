"""The mutants whose own case is mosquitto's, caught on amqtt by another test (issue 20: the
verdicts must not depend on which embedded broker runs).

A case that names a broker's own word as the cause says it is that broker's
(``args=("--rig-broker=mosquitto",)``) and skips under ``RIG_BROKER=amqtt`` (``tox -e
mutation-amqtt``). Each such mutant is caught on amqtt too, here, by the test that sees it there:
- "never pings" (test_catches_health.py): the wire's PINGREQs, test_catches_wire.py "never pings";
- "gives the client id up after a take-over" (test_catches_several_boards.py): amqtt 0.12.1 ends
  no connection taken back, so the collision test never makes a board lose its connection twice;
  the second broker restart of test_session.py does, and the board never connects again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids
from tests.rig.test_catches_several_boards import MUTANTS as SEVERAL_BOARDS

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

RESTART_TEST = "tests/hil/test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes"
GIVES_UP = next(m for m in SEVERAL_BOARDS if m.name == "gives the client id up after a take-over")

MUTANTS = [
    Mutant(
        f"{GIVES_UP.name}, on amqtt",
        GIVES_UP.file,
        GIVES_UP.original,
        GIVES_UP.replacement,
        RESTART_TEST,
        "waiting for the broker's CONNECT record of client",
        GIVES_UP.more,
        ("--rig-broker=amqtt",),
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_caught_on_amqtt_by_another_test(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
