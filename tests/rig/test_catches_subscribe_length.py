"""A SUBSCRIBE to a topic one byte past what umqtt.simple 1.3.4 can frame must be checked on the
wire (docs/broker-scenarios.md, topic-past-one-byte): with umqtt.simple's one-byte remaining
length put back into the firmware's SUBSCRIBE (firmware/whole_packet.py), the test of
tests/rig/test_broker_subscribe.py must fail naming the malformed SUBSCRIBE the broker read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig.mutation import Mutant, assert_caught

pytestmark = pytest.mark.mutation

MUTANT = Mutant(
    "writes a SUBSCRIBE's remaining length in one byte (umqtt.simple 1.3.4)",
    "whole_packet.py",
    "    remaining_length(packet, 2 + 2 + len(topic) + 1)\n",
    "    packet.append((2 + 2 + len(topic) + 1) & 0xFF)\n",
    "tests/rig/test_broker_subscribe.py::test_a_topic_one_byte_past_umqtts_subscribe_length_is_subscribed",
    "is not what the broker read after each CONNECT",
)


def test_subscribe_length_fails_naming_the_cause(tmp_path: Path) -> None:
    assert_caught(MUTANT, tmp_path)
