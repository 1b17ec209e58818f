"""The Ctrl-C checks catch a firmware that closes with a message unread, on every run
(``tests.rig.mutation``).

The mutant is the tutorial's ``c.disconnect()``: DISCONNECT, then close at once. The kernel ends
such a close with RST when bytes are unread. The checks used to press Ctrl-C after letting
echoes circulate, which met that moment by chance. Now they make it: a message is delivered to
the board, as the wire records, and Ctrl-C is pressed then (tests/hil/in_flight.py). The loop
reads on its own schedule (a turn every period), so the message, or the echo of it that comes
straight back, is still unread. tests/rig/test_catches_wire.py has the same mutant for the
wire's own test on amqtt; this one runs the broker's test (test_disconnect.py, which now hears
the wire too) on mosquitto.

Not in responsive mode: that loop reads each message the moment it arrives, so its socket is
empty at a Ctrl-C unless bytes land during the close itself, which no test can time from
outside. The same mutant there escaped 1 run of 3.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

CTRL_C_TEST = "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires"

MUTANTS = [
    Mutant(
        "closes at once after DISCONNECT",
        "clean_disconnect.py",
        "    c.link.timeout(EOF_TIMEOUT)\n",
        "    c.sock.close()\n    emit('disconnected', clean=True)\n    return\n",
        CTRL_C_TEST,
        "not FIN: the board closed a socket with bytes unread",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_a_close_with_a_message_unread_is_caught(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
