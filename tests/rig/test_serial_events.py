"""The ``@rig`` line parser (rig.serial_events): what a line holds, whatever came before it."""

from __future__ import annotations

from rig.serial_events import parse_event


def test_an_event_line() -> None:
    assert parse_event('@rig {"ev": "disconnected", "clean": true}') == {"ev": "disconnected", "clean": True}


def test_an_event_after_what_the_repl_left_on_the_line() -> None:
    assert parse_event('>>> @rig {"ev": "idle"}') == {"ev": "idle"}


def test_an_event_after_an_event_line_a_ctrl_c_cut_short() -> None:
    # Seen on the virtual board: Ctrl-C in the middle of printing "received", then the goodbye.
    line = '@rig {"ev": "received", "topic": "rig/v/echo", "hex": "@rig {"clean": true, "ev": "disconnected"}'
    assert parse_event(line) == {"clean": True, "ev": "disconnected"}


def test_a_cut_line_alone_is_no_event() -> None:
    assert parse_event('@rig {"ev": "received", "topic": "rig/v/echo", "hex": "3131') is None


def test_a_payload_printed_by_the_tutorial_is_no_event() -> None:
    # print((topic, msg)) of a payload that looks like an event: the repr's quotes end the JSON.
    assert parse_event("""(b'foo_topic', b'@rig {"ev": "disconnected", "clean": true}')""") is None
