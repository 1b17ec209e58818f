"""The health checks can fail: one mutant per kind (a reboot the rig did not ask for, a secret on
the console, a heap that leaks per message, a board that never pings), each caught by the test
that watches for it, with a message naming the cause (``tests.rig.mutation``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

TUTORIAL_TEST = "tests/hil/test_echo_loop.py::test_injected_message_keeps_circulating[tutorial]"
HELLO_TEST = "tests/hil/test_echo_loop.py::test_boots_connects_and_publishes_hello"
SOAK_TEST = "tests/hil/test_soak.py::test_heap_holds_steady_over_many_echoes"
KEEPALIVE_TEST = "tests/hil/test_keepalive.py::test_idle_board_stays_connected_over_several_keepalives"

MUTANTS = [
    Mutant(
        # A store to address 0: SIGSEGV on the unix port (its supervisor restarts MicroPython),
        # a StoreProhibited panic and a reset on an ESP32.
        "crashes and reboots once it has echoed an injected message",
        "echo_client.py",
        "            self.handled += 1\n",
        "            self.handled += 1\n"
        "            if msg == b'11 22 3311':\n"
        "                import uctypes\n"
        "                uctypes.bytearray_at(0, 4)[0] = 1\n",
        TUTORIAL_TEST,
        "the firmware ended by itself and the board restarted it (a crash",
    ),
    Mutant(
        "prints its broker password",
        "main.py",
        "    c.set_callback(sub_cb)\n",
        "    c.set_callback(sub_cb)\n"
        "    print('mqtt login', settings.BROKER_USER, settings.BROKER_PASSWORD)\n",
        HELLO_TEST,
        "printed its secret broker_password on the console",
    ),
    Mutant(
        "keeps every payload it receives",
        "echo_client.py",
        "        self.inbox.append((topic, msg))\n",
        "        self.inbox.append((topic, msg))\n        KEPT.append(msg)\n",
        SOAK_TEST,
        "bytes lost per message",
        more=(("echo_client.py", "import gc\n", "import gc\n\nKEPT = []\n"),),
    ),
    Mutant(
        # The broker's drop is the cause named, so the case is mosquitto's: amqtt drops no silent
        # client. There the wire judges the same mutant (test_catches_wire.py, "never pings").
        "never pings",
        "link_watch.py",
        "                c.ping()\n",
        "                pass\n",
        KEEPALIVE_TEST,
        "KeepaliveExpired: the broker ended the board's connection",
        args=("--rig-broker=mosquitto",),
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_health_check_fails_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
