"""Timestamped lines of what a board said, per session and per test, and waits on them."""

from __future__ import annotations

import contextlib
import datetime
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rig.deadline import Deadline
from rig.errors import BoardUnreachable, WaitTimeout
from rig.events import KNOWN_EVENTS, describe, event_matches, parse_event
from rig.evidence.timeline import Timeline
from rig.serialio.errors import CaptureFailed

TAIL_LINES = 15
# What the capture keeps in memory for waits and ``lines()``: the newest lines, about this many
# bytes of them, however long the session. A board that floods its console (the virtual board
# prints ~100k lines/s) must not exhaust the host's memory; the session log and each test's
# serial.log keep every line. A healthy session stays far below it.
MEMORY_BYTES = 64 * 1024 * 1024
LINE_OVERHEAD = 200  # what a kept Line costs besides its text: the object, its str, the list slot
# A board that prints without newlines still makes lines: one this long is cut and goes on in
# the next, so that the unfinished line (kept, split and decoded on every chunk) stays small.
LONGEST_LINE = 16 * 1024
# What a secret is called when the caller gave only its value.
UNNAMED_SECRET = "secret"
# What stands for a secret in every line the capture keeps.
REDACTED = "***"


@dataclass(frozen=True)
class Line:
    """One line of serial output; ``t`` is the wall-clock arrival of its first byte."""

    index: int
    t: float
    text: str


@dataclass(frozen=True)
class SecretSighting:
    """A line in which the board printed a secret: its capture index, its arrival, and the
    secret's name (``wifi_password``, ``broker_password``...), never its value."""

    index: int
    t: float
    key: str


def _cost(line: Line) -> int:
    return len(line.text) + LINE_OVERHEAD


def format_line(line: Line) -> str:
    stamp = datetime.datetime.fromtimestamp(line.t).isoformat(timespec="microseconds")
    return f"{stamp} {line.text}"


def _write_line(file: IO[str], path: Path | None, line: Line) -> None:
    """Append ``line`` to ``file`` and flush it, so the log is whole up to here even if the
    process dies. A failed write (disk full) names the file: the reader's report of a dead
    capture then says which log could not be written."""
    try:
        file.write(format_line(line) + "\n")
        file.flush()
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e


class SerialCapture:
    """Everything a board sent in this session, split into lines. A ``ChunkSink``.

    Lifecycle: attached to a ``BoardPort`` for the whole session. It keeps the newest
    ``MEMORY_BYTES`` of lines in memory (for ``expect``; indexes go on counting, older lines are
    forgotten, never renumbered) and appends every line to ``session_log`` as it completes,
    flushed at once, so the log is whole up to the last byte even if the process dies. A line
    longer than ``LONGEST_LINE`` is cut in pieces. Listeners (the per-test
    ``SerialLog`` files) are called on the reader thread for each completed line.

    If storing a line fails (the session log's disk is full, a listener raises), the port's
    reader detaches the capture and calls ``sink_failed``: from then on the capture is dead, and
    every wait raises ``CaptureFailed`` naming the cause at once, never a timeout.
    """

    def __init__(self, name: str, session_log: Path | None = None) -> None:
        self.name = name
        self.session_log = session_log
        self.lost: BaseException | None = None
        self.failed: CaptureFailed | None = None
        self._cond = threading.Condition()
        self._lines: list[Line] = []
        self._first = 0  # the index of _lines[0]: the lines before it were forgotten
        self._kept = 0  # what _lines costs, as counted by _cost
        self._partial = b""
        self._partial_t = 0.0
        self._listeners: list[Callable[[Line], None]] = []
        # (value, name), longest value first so that a secret containing another is hidden whole.
        self._secrets: list[tuple[str, str]] = []
        self._sightings: list[SecretSighting] = []
        self._file: IO[str] | None = None
        if session_log is not None:
            session_log.parent.mkdir(parents=True, exist_ok=True)
            self._file = session_log.open("a", encoding="utf-8")

    def __repr__(self) -> str:
        return f"SerialCapture({self.name!r}, session log {self.session_log})"

    # -- ChunkSink ---------------------------------------------------------------------------

    def feed(self, t: float, data: bytes) -> None:
        with self._cond:
            if self.failed is not None:
                return  # dead: a capture with a hole in it must not look whole again
            if not self._partial:
                self._partial_t = t
            pieces = (self._partial + data).split(b"\n")
            self._partial = pieces.pop()
            while len(self._partial) > LONGEST_LINE:
                pieces.append(self._partial[:LONGEST_LINE])
                self._partial = self._partial[LONGEST_LINE:]
            for raw in pieces:
                # Logged before any waiter wakes: a test that saw a line finds it in its log.
                self._publish(self._append(raw, self._partial_t))
                self._partial_t = t
            self._cond.notify_all()

    def port_lost(self, t: float, error: BaseException) -> None:
        with self._cond:
            self.lost = error
            self._publish(self._append(f"[rig] serial port lost: {error}".encode(), t))
            self._cond.notify_all()

    def sink_failed(self, failure: CaptureFailed) -> None:
        with self._cond:
            self.failed = failure
            file, self._file = self._file, None
            if file is not None:
                # Closing flushes what is still buffered, which fails the same way (ENOSPC); that
                # failure is already on record in ``failed``.
                with contextlib.suppress(OSError):
                    file.close()
            self._cond.notify_all()

    def check(self) -> None:
        """Raise what a wait would raise now: ``CaptureFailed`` once the capture is dead,
        ``BoardUnreachable`` while the port is lost."""
        with self._cond:
            self._check()

    def _check(self) -> None:
        if self.failed is not None:
            raise self.failed
        if self.lost is not None:
            raise BoardUnreachable(f"{self.name}: serial port lost while waiting: {self.lost}")

    def port_reopened(self, url: str) -> None:
        """The board is back (it re-enumerated after a reset): waits may go on."""
        with self._cond:
            self.lost = None
            self._publish(self._append(f"[rig] serial port reopened at {url}".encode(), time.time()))
            self._cond.notify_all()

    def redact(self, secrets: Mapping[str, str] | Iterable[str]) -> None:
        """Never store, log or show these values: a firmware that prints its config must not
        put the Wi-Fi password into an artifact. Given as ``{name: value}``, every line that
        carried one is also recorded by name (``secret_sightings``), so that a test can fail
        naming the secret without showing it."""
        named = (
            list(secrets.items()) if isinstance(secrets, Mapping) else [(UNNAMED_SECRET, s) for s in secrets]
        )
        with self._cond:
            known = dict((value, key) for value, key in self._secrets)
            for key, value in named:
                if value and (value not in known or known[value] == UNNAMED_SECRET):
                    known[value] = key
            self._secrets = sorted(known.items(), key=lambda item: len(item[0]), reverse=True)

    def secret_sightings(self, start: int = 0) -> list[SecretSighting]:
        """Every line at or after capture index ``start`` that carried a secret, oldest first."""
        with self._cond:
            return [s for s in self._sightings if s.index >= start]

    def _append(self, raw: bytes, t: float) -> Line:
        text = raw.rstrip(b"\r").decode("utf-8", errors="backslashreplace")
        index = self._first + len(self._lines)
        for secret, key in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
                self._sightings.append(SecretSighting(index, t, key))
        line = Line(index, t, text)
        self._lines.append(line)
        self._kept += _cost(line)
        if self._kept > MEMORY_BYTES + MEMORY_BYTES // 4:
            self._forget()
        return line

    def _forget(self) -> None:
        """Drop the oldest lines down to ``MEMORY_BYTES``; a quarter at a time, so that appending
        stays cheap. Indexes are kept: a wait from a forgotten index starts at the oldest kept."""
        dropped = 0
        while self._kept > MEMORY_BYTES:
            self._kept -= _cost(self._lines[dropped])
            dropped += 1
        del self._lines[:dropped]
        self._first += dropped

    def _publish(self, line: Line) -> None:
        """Write a completed line to the session log and every listener; called under the lock."""
        if self._file is not None:
            _write_line(self._file, self.session_log, line)
        for listener in self._listeners:
            listener(line)

    # -- readers -----------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Line], None]) -> None:
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Line], None]) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    @property
    def next_index(self) -> int:
        with self._cond:
            return self._first + len(self._lines)

    def lines(self, start: int = 0) -> list[Line]:
        """The lines from index ``start`` on, as far as they are still kept (``MEMORY_BYTES``)."""
        with self._cond:
            return self._lines[max(0, start - self._first) :]

    def partial(self) -> str:
        with self._cond:
            return self._partial.decode("utf-8", errors="backslashreplace")

    def tail(self, n: int = TAIL_LINES, start: int = 0) -> list[str]:
        with self._cond:
            shown = [line.text for line in self._lines[max(start - self._first, len(self._lines) - n, 0) :]]
            if self._partial:
                shown.append(self._partial.decode("utf-8", errors="backslashreplace") + "  <no newline yet>")
            return shown

    def wait(
        self, test: Callable[[Line], bool], start: int, deadline: Deadline, include_partial: bool
    ) -> Line | None:
        """The first line at or after ``start`` that passes ``test``, or None once ``deadline``
        expires. Raises ``BoardUnreachable`` as soon as the port is lost, and ``CaptureFailed``
        as soon as the capture is dead (also for a line it had before)."""
        with self._cond:
            scanned = start
            while True:
                if self.failed is not None:
                    raise self.failed
                for line in self._lines[max(0, scanned - self._first) :]:
                    if test(line):
                        return line
                end = self._first + len(self._lines)
                scanned = max(scanned, end)
                if include_partial and self._partial:
                    candidate = Line(end, self._partial_t, self._partial.decode(errors="replace"))
                    if test(candidate):
                        return candidate
                self._check()
                left = deadline.remaining()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SerialLog:
    """One test's view of the board's serial output, with its own log file.

    Lifecycle: created when the test starts; it sees every line from then on and writes each to
    ``path`` the moment it completes, flushed, so the file is whole even if pytest is killed.
    ``close()`` at teardown detaches it. ``expect`` consumes: a second ``expect`` searches only
    after the line the first one matched, as pytest-embedded does.
    """

    def __init__(self, capture: SerialCapture, path: Path, timeline: Timeline | None = None) -> None:
        self.capture = capture
        self.path = path
        self.timeline = timeline
        self.start = capture.next_index
        self.cursor = self.start
        path.parent.mkdir(parents=True, exist_ok=True)
        # The reader thread writes board lines, the test thread writes notes: one at a time.
        self._file_lock = threading.Lock()
        self._file: IO[str] | None = path.open("a", encoding="utf-8")
        capture.add_listener(self._on_line)

    def _on_line(self, line: Line) -> None:
        with self._file_lock:
            if self._file is not None:
                _write_line(self._file, self.path, line)
        if self.timeline is not None:
            event = parse_event(line.text)
            src = "rig" if line.text.startswith("[rig] ") else "serial"
            if event is None:
                self.timeline.add(line.t, src, line.text)
            else:
                event.pop("payload", None)  # bytes; the hex is there
                self.timeline.add(line.t, src, line.text, event=event)

    def note(self, text: str) -> None:
        """Write a line of the rig's own into this test's log, e.g. before an injection."""
        self._on_line(Line(-1, time.time(), f"[rig] {text}"))

    def from_now(self) -> None:
        """Make ``expect`` look only at what the board says after this call: before a reset,
        so that the boot of an earlier reset (the fixture's own deploy, say) cannot match."""
        self.cursor = self.capture.next_index

    def lines(self) -> list[Line]:
        return self.capture.lines(self.start)

    def events(self, ev: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Every event since the test started, optionally only those of one kind and fields."""
        found = []
        for line in self.lines():
            event = parse_event(line.text)
            if event is not None and (ev is None or event_matches(event, ev, fields)):
                event["t"] = line.t
                found.append(event)
        return found

    def expect(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str]:
        """Wait for a line matching ``pattern`` (searched, not anchored) and return the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        line = self._wait(
            lambda ln: regex.search(ln.text) is not None, f"a line matching /{regex.pattern}/", timeout
        )
        match = regex.search(line.text)
        assert match is not None
        return match

    def expect_event(self, ev: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Wait for the firmware's ``@rig`` event ``ev`` whose fields equal ``fields``."""
        if ev not in KNOWN_EVENTS:
            raise ValueError(f"unknown firmware event {ev!r}; known: {sorted(KNOWN_EVENTS)}")

        def test(ln: Line) -> bool:
            event = parse_event(ln.text)
            return event is not None and event_matches(event, ev, fields)

        line = self._wait(test, describe(ev, fields), timeout, include_partial=False)
        event = parse_event(line.text)
        assert event is not None
        event["t"] = line.t
        return event

    def _wait(
        self, test: Callable[[Line], bool], awaited: str, timeout: float, include_partial: bool = True
    ) -> Line:
        try:
            line = self.capture.wait(test, self.cursor, Deadline(timeout), include_partial)
        except BoardUnreachable as e:
            raise BoardUnreachable(f"{e} (awaiting {awaited}; full log: {self.path})") from e
        except CaptureFailed as e:
            raise e.while_awaiting(awaited, self.path) from e
        if line is None:
            raise WaitTimeout(
                awaited,
                timeout,
                self.capture.tail(start=self.start),
                self.path,
                self.timeline.path if self.timeline else None,
            )
        self.cursor = line.index + 1
        return line

    def close(self) -> None:
        self.capture.remove_listener(self._on_line)
        with self._file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
