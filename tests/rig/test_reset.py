"""Reset through the modem lines, recorded on a pyserial URL handler (a pty has no DTR/RTS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rig.board.reset import esp32_hard_reset, no_hard_reset
from rig.errors import BoardUnreachable
from rig.serialio import BoardPort
from rig.serialio.urlhandlers.protocol_rigrecord import RECORDINGS

# The port, and what the recording URL handler saw happen on its lines.
Recorded = tuple[BoardPort, list[tuple[str, object]]]


@pytest.fixture
def recorded_port(request: pytest.FixtureRequest) -> Iterator[Recorded]:
    name = request.node.name.replace("_", "")
    RECORDINGS.pop(name, None)
    port = BoardPort(f"rigrecord://{name}", name="esp")
    port.open()
    yield port, RECORDINGS[name]
    port.close()


def test_opening_the_port_does_not_reset_an_esp32(
    recorded_port: tuple[BoardPort, list[tuple[str, object]]],
) -> None:
    _, events = recorded_port
    opened = events.index(("open", True))
    before = events[:opened]
    assert ("dtr-before-open", False) in before and ("rts-before-open", False) in before
    assert ("rts", True) not in events and ("dtr", True) not in events, f"a line was asserted: {events}"


def test_esp32_hard_reset_pulses_en_with_io0_released(
    recorded_port: tuple[BoardPort, list[tuple[str, object]]],
) -> None:
    port, events = recorded_port
    start = len(events)
    esp32_hard_reset(port)
    lines = [e for e in events[start:] if e[0] in ("dtr", "rts")]
    rts = [value for name, value in lines if name == "rts"]
    assert rts[-2:] == [True, False], f"EN (RTS) must go low then high: {lines}"
    assert all(value is False for name, value in lines if name == "dtr"), f"IO0 (DTR) asserted: {lines}"


def test_a_generic_board_has_no_hard_reset(recorded_port: Recorded) -> None:
    port, _ = recorded_port
    with pytest.raises(BoardUnreachable, match="no reset line"):
        no_hard_reset(port)
