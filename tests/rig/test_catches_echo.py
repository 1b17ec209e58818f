"""The echo checks can fail: each mutant breaks the firmware in one way an echo can differ from
the injected message, or in one way the status and console contracts can be broken, and the HIL
test that guards it must fail with a message that names the cause (``tests.rig.mutation``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.firmware_config import own_contract
from tests.rig.mutation import Mutant, assert_caught, ids

# Each test runs the suite against broken firmware, in a pytest of its own: the mutation tier.
pytestmark = pytest.mark.mutation

ECHO_PUBLISH = "            whole_packet.publish(self, topic, msg)\n"
SIZES = "tests/hil/test_echo_message.py::test_echo_is_the_same_message_across_the_one_byte_length_boundary"
STATUS = "tests/hil/test_status.py::test_status_is_retained_after_each_change"

MUTANTS = [
    Mutant(
        "echoes retained",
        "echo_client.py",
        ECHO_PUBLISH,
        "            whole_packet.publish(self, topic, msg, True)\n",
        SIZES,
        "retain: the board's echo was published retained",
    ),
    Mutant(
        "echoes with QoS 1",
        "echo_client.py",
        ECHO_PUBLISH,
        "            MQTTClient.publish(self, topic, msg, False, 1)\n",
        SIZES,
        "qos: injected with QoS 0, echoed with QoS 1",
    ),
    Mutant(
        "truncates payloads above 127 bytes",
        "echo_client.py",
        ECHO_PUBLISH,
        "            whole_packet.publish(self, topic, msg[:127])\n",
        SIZES,
        "payload bytes: injected 128 bytes",
    ),
    Mutant(
        # With "hello" circulating, a burst makes a turn of more than two messages.
        "drops one payload of a burst",
        "echo_client.py",
        "        for topic, msg in messages:\n",
        "        for topic, msg in messages[:-1] if len(messages) > 2 else messages:\n",
        "tests/hil/test_echo_message.py::test_every_payload_of_a_burst_comes_back_the_same",
        "of the 8 payloads of a burst never came back",
    ),
    Mutant(
        "crashes on a payload above max_payload",
        "bounded_read.py",
        "    elif sz > settings.MAX_PAYLOAD:  # check the size before reading\n",
        "    elif sz > settings.MAX_PAYLOAD:  # check the size before reading\n"
        '        raise MemoryError("memory allocation failed, allocating %d bytes" % sz)\n',
        "tests/hil/test_echo_message.py::test_payload_above_max_payload_is_dropped_cleanly_and_the_loop_goes_on",
        f"did not drop the oversize payload of {own_contract().app['max_payload'] + 1} bytes cleanly",
    ),
    Mutant(
        "loops at twice its period",
        "settings.py",
        'PERIOD = config["loop_period"]\n',
        'PERIOD = config["loop_period"] * 2\n',
        "tests/hil/test_echo_loop.py::test_echo_cadence_is_the_loop_period",
        "is not the loop period 0.1s",
    ),
    Mutant(
        "publishes online not retained",
        "echo_client.py",
        'MQTTClient.publish(self, settings.STATUS_TOPIC, b"online", True)',
        'MQTTClient.publish(self, settings.STATUS_TOPIC, b"online", False)',
        STATUS,
        "'online' was not retained",
    ),
    Mutant(
        "publishes offline not retained",
        "clean_disconnect.py",
        'whole_packet.publish(c, status_topic, b"offline", True)',
        'whole_packet.publish(c, status_topic, b"offline", False)',
        STATUS,
        "'offline' was not retained",
    ),
    Mutant(
        "sets a will that is not retained",
        "echo_client.py",
        'self.set_last_will(settings.STATUS_TOPIC, b"lost", retain=True)',
        'self.set_last_will(settings.STATUS_TOPIC, b"lost", retain=False)',
        STATUS,
        "'lost' was not retained",
    ),
    Mutant(
        "does not print received messages",
        "main.py",
        "        print((topic, msg))\n",
        "        pass\n",
        "tests/hil/test_console.py::test_console_prints_every_received_message[text]",
        "the console does not print every received message",
    ),
    Mutant(
        "does not print the idle line",
        "main.py",
        '            print("other operator")\n',
        "            pass\n",
        "tests/hil/test_console.py::test_console_prints_the_idle_line_when_nothing_arrived",
        "the console does not show the idle line 'other operator'",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=ids(MUTANTS))
def test_echo_checks_fail_naming_the_cause(mutant: Mutant, tmp_path: Path) -> None:
    assert_caught(mutant, tmp_path)
