"""The topics the edge scenarios deploy the board with (topic-utf8, topic-longest), and the
config file that carries them to the board byte-exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig.contract import load_contract
from rig.scripted_broker import packets
from rig.scripted_broker.scenarios import LONGEST_TOPIC, MULTI_BYTE, PAST_ONE_BYTE_TOPIC, edge_topic_prefix


def test_edge_prefix_gives_the_longest_echo_topic_with_multi_byte_characters() -> None:
    prefix = edge_topic_prefix("rig/virtual/abc123")
    echo = (prefix + "/echo").encode()
    assert len(echo) == LONGEST_TOPIC
    assert MULTI_BYTE.encode() in echo
    # umqtt.simple 1.3.4's one-byte SUBSCRIBE length: 2 + 2 + topic + 1 must stay below 128.
    assert 2 + 2 + len(echo) + 1 == 127


def test_one_byte_past_needs_a_two_byte_subscribe_length() -> None:
    # topic-past-one-byte: the SUBSCRIBE's remaining length is 128, which umqtt.simple 1.3.4
    # writes as the single byte 0x80 ("more follows").
    echo = (edge_topic_prefix("rig/virtual/abc123", length=PAST_ONE_BYTE_TOPIC) + "/echo").encode()
    assert len(echo) == PAST_ONE_BYTE_TOPIC
    assert packets.remaining_length(2 + 2 + len(echo) + 1) == b"\x80\x01"


def test_a_prefix_too_long_is_named() -> None:
    with pytest.raises(ValueError, match=r"'rig/x+' is too long for an echo topic of 122 bytes"):
        edge_topic_prefix("rig/" + "x" * 200)


def test_config_file_carries_utf8_as_is() -> None:
    # MicroPython's json reads a \ud83d\ude00 escape pair as two lone surrogates: ill-formed UTF-8.
    contract = load_contract(Path(__file__).parents[2] / "firmware")
    text = contract.config_bytes({}, {"topic_prefix": "rig/" + MULTI_BYTE}).decode()
    assert "\\u" not in text
    assert json.loads(text)["topic_prefix"] == "rig/" + MULTI_BYTE
