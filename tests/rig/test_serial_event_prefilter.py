"""The pre-filter that spares a wait parsing lines that cannot be its event (rig.serial_events.may_be)
never skips a line that parses to it, however the firmware spells the name."""

from __future__ import annotations

import pytest

from rig.serial_events import may_be, parse_event

LINES = [
    '@rig {"ev": "stats", "handled": 20, "mem_free": 2034048}',
    '@rig {"handled": 20, "ev": "stats"}',
    '@rig {"ev":"stats"}',
    '@rig {"ev": "\\u0073tats", "handled": 40}',  # a JSON escape spells the name
    '@rig {"ev": "st\\u0061ts"}',
    '@rig {"ev": "published", "hex": "00"}',
    '@rig {"ev": "received", "topic": "stats", "hex": "00"}',
    "(b'rig/vb-1/echo', b'soak-02')",
    "stats without an event",
]


@pytest.mark.parametrize("text", LINES)
def test_a_line_skipped_is_never_the_event(text: str) -> None:
    event = parse_event(text)
    if event is not None and event["ev"] == "stats":
        assert may_be(text, "stats"), text


def test_lines_of_other_events_are_skipped() -> None:
    assert not may_be('@rig {"ev": "published", "hex": "00"}', "stats")
    assert not may_be("(b'rig/vb-1/echo', b'soak-02')", "stats")
