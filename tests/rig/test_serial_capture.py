"""The serial layer on a real pty: capture, per-test logs, expect, and a vanishing port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mpremote.transport_serial import SerialTransport

from rig.errors import BoardUnreachable, WaitTimeout
from rig.serialio import BoardPort, SerialCapture, SerialLog
from rig.serialio.tap import Tap
from tests.rig.fake_pty import FakeBoardEnd

Wire = tuple[FakeBoardEnd, BoardPort, SerialCapture]


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    end = FakeBoardEnd()
    capture = SerialCapture("pty", tmp_path / "session.log")
    port = BoardPort(end.path, name="pty")
    port.add_sink(capture)
    port.open()
    yield end, port, capture
    port.close()
    capture.close()


def test_lines_are_split_timestamped_and_logged(wire: Wire, tmp_path: Path) -> None:
    end, _port, capture = wire
    log = SerialLog(capture, tmp_path / "test.log")
    end.say(b"first line\r\nsecond ")
    end.say(b"half\nno newline yet")
    log.expect("second half", timeout=5)
    assert [line.text for line in log.lines()] == ["first line", "second half"]
    assert log.lines()[0].t <= log.lines()[1].t
    # The partial line is visible to expect, as a prompt is.
    log.expect("no newline yet", timeout=5)
    log.close()
    text = (tmp_path / "test.log").read_text()
    assert "first line" in text and "second half" in text
    assert "first line" in (tmp_path / "session.log").read_text()


def test_expect_consumes_and_events_parse(wire: Wire, tmp_path: Path) -> None:
    end, _port, capture = wire
    log = SerialLog(capture, tmp_path / "t.log")
    end.say(b'@rig {"ev": "received", "topic": "t", "hex": "00ff"}\n@rig {"ev": "idle"}\n')
    event = log.expect_event("received", 5, topic="t")
    assert event["payload"] == b"\x00\xff"
    log.expect_event("idle", 5)
    with pytest.raises(WaitTimeout):
        log.expect_event("received", 0.2)  # already consumed
    with pytest.raises(ValueError, match="unknown firmware event"):
        log.expect_event("recieved", 1)


def test_timeout_names_what_was_awaited_the_tail_and_the_log(wire: Wire, tmp_path: Path) -> None:
    end, _port, capture = wire
    log = SerialLog(capture, tmp_path / "t.log")
    for i in range(30):
        end.say(f"line {i}\n".encode())
    log.expect("line 29", 5)
    with pytest.raises(WaitTimeout) as info:
        log.expect("never said", timeout=0.3)
    message = str(info.value)
    assert "/never said/" in message
    assert "line 29" in message and "line 0\n" not in message
    assert str(tmp_path / "t.log") in message


def test_a_vanished_port_fails_the_wait_at_once(wire: Wire, tmp_path: Path) -> None:
    end, _port, capture = wire
    log = SerialLog(capture, tmp_path / "t.log")
    end.say(b"last words\n")
    log.expect("last words", 5)
    end.unplug()
    with pytest.raises(BoardUnreachable, match="lost"):
        log.expect("anything", timeout=30)
    assert "serial port lost" in (tmp_path / "t.log").read_text()


def test_mpremote_talks_through_a_tap_while_capture_sees_everything(wire: Wire) -> None:
    end, port, capture = wire
    tap = Tap(port, max_block=0.5)
    try:
        transport = SerialTransport(tap.url)
        transport.serial.write(b"ping")
        assert end.heard(4) == b"ping"
        end.say(b"pong\n")
        assert transport.read_until(1, b"pong\n", timeout=5) == b"pong\n"
        # A read that would block forever in mpremote is bounded by the tap.
        assert transport.serial.read(10) == b""
        transport.close()
    finally:
        tap.close()
    assert "pong" in [line.text for line in capture.lines()]
