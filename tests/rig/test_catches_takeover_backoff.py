"""The take-over backoff can fail: two boards with one client id must take the id from each other
at the backoff's pace (firmware/connect_retry.py), and a firmware that connects again at once
after its connection was taken over must fail the collision test of
tests/hil/test_several_boards.py, naming the storm (``tests.rig.mutation``).

The mutant keeps its console honest-looking: it still reports each wait ("short_connection"),
but does not wait. The test counts the CONNECTs each board sent, on its link and at the broker,
so the console's word changes nothing. On mosquitto only: amqtt 0.12.1 does not end the
connection once the id is taken back, so there is no storm there for a mutant to make.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

pytestmark = pytest.mark.mutation

MUTANTS = [
    Mutant(
        "connects again at once after a take-over, saying it waits",
        "connect_retry.py",
        "    time.sleep(soon_wait)\n",
        "",
        "tests/hil/test_several_boards.py::test_two_boards_with_one_client_id_take_the_connection_from_each_other",
        "a reconnect storm",
        args=("--rig-broker=mosquitto",),
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_takeover_backoff_check_catches(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
