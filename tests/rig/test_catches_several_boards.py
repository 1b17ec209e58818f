"""The several-boards checks can fail: each mutant breaks the firmware in one way that shows only
with more than one board, and the test of tests/hil/test_several_boards.py that guards it must
fail naming the cause (``tests.rig.mutation``).

The isolation test (a message for A never reaches B) has no firmware mutant: the broker's ACL
keeps boards apart whatever the firmware does (a firmware that ignores its prefix cannot even
say hello, the board fixture's set-up fails); tests/rig/test_multiboard_claim.py checks the grants.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught, ids

pytestmark = pytest.mark.mutation

HIL = "tests/hil/test_several_boards.py::"

MUTANTS = [
    Mutant(
        "reads without a per-turn limit",
        "settings.py",
        'MAX_MESSAGES_PER_TURN = config["max_messages_per_turn"]\n',
        'MAX_MESSAGES_PER_TURN = config["max_messages_per_turn"] * 100\n',
        HIL + "test_two_echo_boards_on_one_topic_multiply_a_message_up_to_their_per_turn_limit",
        "messages in one turn (limit 4)",
    ),
    Mutant(
        "keeps 4 KiB of every echo",
        "echo_client.py",
        '        emit_payload("published", topic, msg)\n',
        '        emit_payload("published", topic, msg)\n'
        '        self.kept = getattr(self, "kept", [])\n'
        "        self.kept.append(bytearray(4096))\n",
        HIL + "test_two_echo_boards_on_one_topic_multiply_a_message_up_to_their_per_turn_limit",
        "free heap fell from",
    ),
    Mutant(
        "gives the client id up after a take-over",
        "echo_client.py",
        "        for pending in self.per_connection:\n            pending.clear()\n",
        "        for pending in self.per_connection:\n            pending.clear()\n"
        "        while not self.connected:\n            time.sleep(1)\n"
        "        self.connected = False\n",
        HIL + "test_two_boards_with_one_client_id_take_the_connection_from_each_other",
        "the boards taking the shared client id back from each other three times",
        # mosquitto's: amqtt 0.12.1 ends no connection taken back (MQTT-3.1.4-2), so no board
        # loses a connection twice in this test and the mutant's hang never comes. On amqtt the
        # same mutant fails test_session.py's second broker restart (no CONNECT in its run 3).
        args=("--rig-broker=mosquitto",),
    ),
    Mutant(
        "sets no will",
        "echo_client.py",
        '        self.set_last_will(settings.STATUS_TOPIC, b"lost", retain=True)\n',
        "",
        HIL + "test_one_boards_power_cut_reaches_the_other_as_lost_then_online",
        "'lost' then 'online' on",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_several_boards_checks_catch(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
