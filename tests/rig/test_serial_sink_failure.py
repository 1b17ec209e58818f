"""A sink that raises inside the serial reader, on a real pty: the reader survives, and every
wait on a dead capture fails at once with an infrastructure error naming the cause, never with
a timeout that blames the board for staying silent."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.errors import InfrastructureError, WaitTimeout
from rig.serialio import BoardPort, CaptureFailed, SerialCapture, SerialLog
from tests.rig.fake_pty import FakeBoardEnd

# Far longer than any of these tests may take: a wait that reaches it has missed the failure.
PATIENT_S = 30.0
PROMPT_S = 5.0
# Writes to /dev/full fail with ENOSPC, as on a full disk: a real failing file, not a mock.
FULL_DISK = Path("/dev/full")


class DiskFullSink:
    """A sink whose storage is full: every feed raises ENOSPC. Records what the port told it."""

    def __init__(self) -> None:
        self.failures: list[CaptureFailed] = []
        self.told = threading.Event()

    def feed(self, t: float, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/var/log/board.log")

    def port_lost(self, t: float, error: BaseException) -> None:
        pass

    def sink_failed(self, failure: CaptureFailed) -> None:
        self.failures.append(failure)
        self.told.set()

    def __repr__(self) -> str:
        return "DiskFullSink(/var/log/board.log)"


@pytest.fixture
def board_end() -> Iterator[FakeBoardEnd]:
    end = FakeBoardEnd()
    yield end
    end.unplug()


@pytest.fixture
def opened(board_end: FakeBoardEnd) -> Iterator[BoardPort]:
    port = BoardPort(board_end.path, name="pty")
    yield port
    port.close()


def test_a_raising_sink_is_detached_and_the_reader_feeds_the_others(
    board_end: FakeBoardEnd, opened: BoardPort, tmp_path: Path
) -> None:
    broken = DiskFullSink()
    capture = SerialCapture("pty", tmp_path / "session.log")
    opened.add_sink(broken)
    opened.add_sink(capture)
    opened.open()
    log = SerialLog(capture, tmp_path / "test.log")
    try:
        board_end.say(b"first\n")
        assert broken.told.wait(PROMPT_S), "the raising sink was never told it failed"
        board_end.say(b"second\n")
        # The reader thread survived the sink's exception: the capture still gets every line.
        log.expect("second", PROMPT_S)
        assert [line.text for line in capture.lines()] == ["first", "second"]
    finally:
        log.close()
        capture.close()
    assert len(broken.failures) == 1  # detached after the first failure, not fed again
    failure = broken.failures[0]
    assert opened.sink_failures == [failure]
    assert isinstance(failure, InfrastructureError)
    assert isinstance(failure.error, OSError) and failure.error.errno == errno.ENOSPC
    assert "DiskFullSink(/var/log/board.log)" in str(failure)
    assert "No space left on device" in str(failure)


def test_a_capture_whose_session_log_fails_fails_every_wait_at_once(
    board_end: FakeBoardEnd, opened: BoardPort, tmp_path: Path
) -> None:
    capture = SerialCapture("pty", FULL_DISK)
    opened.add_sink(capture)
    opened.open()
    log = SerialLog(capture, tmp_path / "test.log")
    try:
        # A wait already under way when the log write fails is woken with the cause...
        speaker = threading.Timer(0.3, board_end.say, args=(b"hello from the board\n",))
        speaker.start()
        started = time.monotonic()
        with pytest.raises(CaptureFailed) as caught:
            log.expect("a line that never comes", timeout=PATIENT_S)
        speaker.join()
        assert time.monotonic() - started < PROMPT_S
        message = str(caught.value)
        assert f"session log {FULL_DISK}" in message  # the sink
        # The exception, naming the file it could not write.
        assert f"OSError: [Errno {errno.ENOSPC}] No space left on device: '{FULL_DISK}'" in message
        assert "/a line that never comes/" in message and str(tmp_path / "test.log") in message
        assert isinstance(caught.value.__cause__, CaptureFailed)
        assert isinstance(caught.value.error, OSError) and caught.value.error.errno == errno.ENOSPC

        # ... and every later wait fails at once too, even for a line the capture had.
        for pattern in ("hello from the board", "anything else"):
            started = time.monotonic()
            with pytest.raises(CaptureFailed):
                log.expect(pattern, timeout=PATIENT_S)
            assert time.monotonic() - started < PROMPT_S
        with pytest.raises(CaptureFailed):
            capture.check()
        assert opened.sink_failures and opened.sink_failures[0] is capture.failed
        assert opened.is_open  # the reader and the port live on; only the capture is dead
    finally:
        log.close()
        capture.close()


def test_without_a_failure_the_same_wait_is_a_timeout(
    board_end: FakeBoardEnd, opened: BoardPort, tmp_path: Path
) -> None:
    """The control for the test above: the same wait on a healthy capture times out."""
    capture = SerialCapture("pty", tmp_path / "session.log")
    opened.add_sink(capture)
    opened.open()
    log = SerialLog(capture, tmp_path / "test.log")
    try:
        board_end.say(b"hello from the board\n")
        log.expect("hello from the board", PROMPT_S)
        with pytest.raises(WaitTimeout):
            log.expect("a line that never comes", timeout=0.3)
        assert capture.failed is None and opened.sink_failures == []
    finally:
        log.close()
        capture.close()


def test_a_test_log_that_cannot_be_written_names_that_file(
    board_end: FakeBoardEnd, opened: BoardPort, tmp_path: Path
) -> None:
    capture = SerialCapture("pty", tmp_path / "session.log")
    opened.add_sink(capture)
    opened.open()
    log = SerialLog(capture, FULL_DISK)  # the per-test log, a listener of the capture
    try:
        board_end.say(b"hello from the board\n")
        started = time.monotonic()
        with pytest.raises(CaptureFailed) as caught:
            log.expect("a line that never comes", timeout=PATIENT_S)
        assert time.monotonic() - started < PROMPT_S
        assert f"No space left on device: '{FULL_DISK}'" in str(caught.value)
    finally:
        with pytest.raises(OSError):
            log.close()  # what is still buffered for /dev/full fails again: not hidden
        capture.close()
    assert "hello from the board" in (tmp_path / "session.log").read_text()
