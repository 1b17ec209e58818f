"""The Ctrl-C checks catch a firmware that closes with a message unread, on every run
(``tests.rig.mutation``).

The mutant is the tutorial's ``c.disconnect()``: DISCONNECT, then close at once. The kernel ends
such a close with RST when bytes are unread. The checks used to press Ctrl-C after letting
echoes circulate, which met that moment by chance. Now they make it: a stream of messages goes
to the board, the first is delivered as the wire records, a burst follows and Ctrl-C is pressed
then, and the stream goes on until the connection ended (tests/hil/in_flight.py). The reference
loop reads on its own schedule (a turn every period), so messages are still unread.
tests/rig/test_catches_wire.py has the same mutant for the wire's own test on amqtt; this one
runs the broker's test (test_disconnect.py, which now hears the wire too) on mosquitto.

In responsive mode too: that loop reads each message the moment it arrives, so one message
delivered before the Ctrl-C was read by then, and the mutant escaped 5 runs in 5. A stream of
messages, with a burst just before the Ctrl-C, leaves some unread while it closes (caught 20 of
20).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

CTRL_C_TEST = "tests/hil/test_disconnect.py::test_ctrl_c_disconnects_cleanly_and_no_will_fires"

CLOSES_AT_ONCE = Mutant(
    "closes at once after DISCONNECT",
    "clean_disconnect.py",
    "    c.link.timeout(EOF_TIMEOUT)\n",
    "    c.sock.close()\n    emit('disconnected', clean=True)\n    return\n",
    CTRL_C_TEST,
    "not FIN: the board closed a socket with bytes unread",
)

MUTANTS = [
    CLOSES_AT_ONCE,
    dataclasses.replace(
        CLOSES_AT_ONCE,
        name="closes at once after DISCONNECT, in a loop that reads each message as it arrives",
        args=("--rig-firmware-mode=responsive",),
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_a_close_with_a_message_unread_is_caught(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
