"""Timestamped lines of what a board said, per session and per test, and waits on them."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from rig.deadline import Deadline
from rig.errors import BoardUnreachable, WaitTimeout
from rig.evidence.timeline import Timeline
from rig.serial_events import KNOWN_EVENTS, describe, event_matches, may_be, parse_event
from rig.serialio.errors import CaptureFailed
from rig.serialio.line_store import LINE_OVERHEAD, LineBatch, LineStore, Span
from rig.serialio.lines import Line, decode_line, format_line, format_lines, split_lines, write_flushed
from rig.serialio.redact import REDACTED, UNNAMED_SECRET, Redactor, SecretSighting

__all__ = [
    "LINE_OVERHEAD",
    "REDACTED",
    "UNNAMED_SECRET",
    "Line",
    "LineBatch",
    "SecretSighting",
    "SerialCapture",
    "SerialLog",
    "format_line",
    "format_lines",
]

TAIL_LINES = 15
# What the capture keeps in memory for waits and ``lines()``: the newest lines, about this many
# bytes of them, however long the session. A board that floods its console (the virtual board
# prints ~100k lines/s) must not exhaust the host's memory; the session log and each test's
# serial.log keep every line. A healthy session stays far below it.
MEMORY_BYTES = 64 * 1024 * 1024
# A board that prints without newlines still makes lines: one this long is cut and goes on in
# the next, so that the unfinished line (kept, split and decoded on every chunk) stays small.
# Never through a secret: the cut waits for the longest secret's bytes past it and moves back
# to the start of a secret that spans it (``Redactor.safe_cut``), so each piece is redacted whole.
LONGEST_LINE = 16 * 1024


class SerialCapture:
    """Everything a board sent in this session, split into lines. A ``ChunkSink``.

    Lifecycle: attached to a ``BoardPort`` for the whole session. It keeps the newest
    ``MEMORY_BYTES`` of lines in memory (for ``expect``; indexes go on counting, older lines are
    forgotten, never renumbered) and appends every line to ``session_log``. A line longer than
    ``LONGEST_LINE`` is cut in pieces, never through a secret. Every line and the unfinished
    last one are shown with their secrets hidden (``redact``), wherever they are shown: logs,
    waits, ``tail`` and so the timeouts' "last lines seen". Listeners (``add_listener``: one
    call per line, e.g. a monitor; ``add_batch_listener``: one call per chunk, the per-test
    ``SerialLog`` files) are called on the reader thread.

    Nothing is lost from the session log, in this sense: when ``feed`` returns, that is before
    the reader reads the next chunk and before any wait can return one of its lines, every line
    the chunk completed is in the session log, written and flushed to the operating system in
    one write per chunk. A run killed at any moment (SIGKILL, the OOM killer) thus leaves a log
    with every complete line the reader had read; it lacks only the unfinished last line (no
    newline yet, at most ``LONGEST_LINE`` bytes and a secret's length; ``partial()`` shows it)
    and what was still unread in the port. Flushed, not fsynced: a power cut of the host itself can lose more.
    The same holds for each ``SerialLog``.

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
        self._changes = 0  # bumped on every feed and change of state: a waiter's "anything new?"
        self._store = LineStore()
        self._partial = b""
        self._partial_t = 0.0
        self._partial_shown: str | None = None  # ``_partial`` redacted, made when first asked
        self._listeners: list[Callable[[Line], None]] = []
        self._batch_listeners: list[Callable[[LineBatch], None]] = []
        self._redactor = Redactor()
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
            if self._partial:
                data = self._partial + data
            else:
                self._partial_t = t
            cut = data.rfind(b"\n")
            texts = split_lines(data[:cut]) if cut >= 0 else []
            rest = data[cut + 1 :]
            carry = self._redactor.carry
            while len(rest) > LONGEST_LINE + carry:
                piece = self._redactor.safe_cut(rest, LONGEST_LINE)
                texts.append(decode_line(rest[:piece]))
                rest = rest[piece:]
            self._partial = rest
            self._partial_shown = None
            if texts:
                # Logged before any waiter wakes: a test that saw a line finds it in its log.
                self._add(texts, self._partial_t, t)
                self._partial_t = t
            self._changed()

    def port_lost(self, t: float, error: BaseException) -> None:
        with self._cond:
            self.lost = error
            self._add([f"[rig] serial port lost: {error}"], t, t)
            self._changed()

    def sink_failed(self, failure: CaptureFailed) -> None:
        with self._cond:
            self.failed = failure
            file, self._file = self._file, None
            if file is not None:
                # Closing flushes what is still buffered, which fails the same way (ENOSPC); that
                # failure is already on record in ``failed``.
                with contextlib.suppress(OSError):
                    file.close()
            self._changed()

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

    def _changed(self) -> None:
        self._changes += 1
        self._cond.notify_all()

    def port_reopened(self, url: str) -> None:
        """The board is back (it re-enumerated after a reset): waits may go on."""
        with self._cond:
            self.lost = None
            t = time.time()
            self._add([f"[rig] serial port reopened at {url}"], t, t)
            self._changed()

    def redact(self, secrets: Mapping[str, str] | Iterable[str]) -> None:
        """Never store, log or show these values: a firmware that prints its config must not
        put the Wi-Fi password into an artifact. Given as ``{name: value}``, every line that
        carried one is also recorded by name (``secret_sightings``), so that a test can fail
        naming the secret without showing it."""
        with self._cond:
            self._redactor.add(secrets)
            self._partial_shown = None

    def secret_sightings(self, start: int = 0) -> list[SecretSighting]:
        """Every line at or after capture index ``start`` that carried a secret, oldest first."""
        with self._cond:
            return [s for s in self._redactor.sightings if s.index >= start]

    def _add(self, texts: list[str], t_first: float, t_rest: float) -> None:
        """Store, log and publish the lines ``texts``; called under the lock."""
        store = self._store
        texts = self._redactor.hide(texts, store.end, t_first, t_rest)
        first = store.add(texts, t_first, t_rest)
        if store.kept > MEMORY_BYTES + MEMORY_BYTES // 4:
            # A quarter at a time, so that appending stays cheap. A wait from a forgotten index
            # starts at the oldest kept.
            store.forget(MEMORY_BYTES)
        span = store.span(first)
        # Formatted once, for the session log and every per-test log alike.
        text = span.logged() if self._file is not None or self._batch_listeners else ""
        if self._file is not None:
            write_flushed(self._file, self.session_log, text)
        if self._listeners:
            lines = span.lines()
            for listener in self._listeners:
                for line in lines:
                    listener(line)
        if self._batch_listeners:
            batch = LineBatch(span, text)
            for batch_listener in self._batch_listeners:
                batch_listener(batch)

    # -- readers -----------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Line], None]) -> None:
        """Call ``listener`` with each line from now on, on the reader thread."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Line], None]) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def add_batch_listener(self, listener: Callable[[LineBatch], None]) -> None:
        """Call ``listener`` once per chunk with the lines it completed, on the reader thread."""
        with self._cond:
            self._batch_listeners.append(listener)

    def remove_batch_listener(self, listener: Callable[[LineBatch], None]) -> None:
        with self._cond:
            if listener in self._batch_listeners:
                self._batch_listeners.remove(listener)

    @property
    def next_index(self) -> int:
        with self._cond:
            return self._store.end

    def lines(self, start: int = 0) -> list[Line]:
        """The lines from index ``start`` on, as far as they are still kept (``MEMORY_BYTES``)."""
        with self._cond:
            span = self._store.span(start)
        return span.lines()

    def partial(self) -> str:
        """The unfinished last line, redacted as lines are (``Redactor.unfinished``)."""
        with self._cond:
            return self._unfinished()

    def _unfinished(self) -> str:
        """``partial()``, made once per change of the line or of the secrets; under the lock."""
        if self._partial_shown is None:
            self._partial_shown = self._redactor.unfinished(self._partial)
        return self._partial_shown

    def tail(self, n: int = TAIL_LINES, start: int = 0) -> list[str]:
        """The last ``n`` lines from ``start`` on, and the unfinished one, all redacted: what a
        timeout shows in the terminal and the CI log."""
        with self._cond:
            store = self._store
            shown = store.texts[max(start - store.first, len(store.texts) - n, 0) :]
            if self._partial:
                shown.append(self._unfinished() + "  <no newline yet>")
            return shown

    def wait(
        self, test: Callable[[Line], bool], start: int, deadline: Deadline, include_partial: bool
    ) -> Line | None:
        """The first line at or after ``start`` that passes ``test``, or None once ``deadline``
        expires. Raises ``BoardUnreachable`` as soon as the port is lost, and ``CaptureFailed``
        as soon as the capture is dead (also for a line it had before).

        ``test`` runs on the caller's thread without the capture's lock, so that the reader
        never waits for a waiter's matching; a waiter that finds something new after its scan
        scans again before it sleeps, so nothing that arrived meanwhile is missed."""

        def scan(span: Span) -> Line | None:
            return next(filter(test, span.lines()), None)

        return self._await(scan, test, start, deadline, include_partial)

    def wait_text(
        self, test: Callable[[str], object], start: int, deadline: Deadline, include_partial: bool
    ) -> Line | None:
        """``wait`` for a test that needs only a line's text (``regex.search``, say): the same
        answer, but no ``Line`` is made for the lines that fail it, and a test written in C
        (a compiled pattern's ``search``) scans a flood with no Python frame per line."""

        def scan(span: Span) -> Line | None:
            hit = next(itertools.compress(itertools.count(span.first), map(test, span.texts)), None)
            return None if hit is None else span.line(hit)

        return self._await(scan, lambda line: bool(test(line.text)), start, deadline, include_partial)

    def _await(
        self,
        scan: Callable[[Span], Line | None],
        test: Callable[[Line], object],
        start: int,
        deadline: Deadline,
        include_partial: bool,
    ) -> Line | None:
        """The loop of ``wait``: ``scan`` finds the first match among new lines, ``test`` tells
        whether the unfinished line matches."""
        scanned = start
        while True:
            with self._cond:
                if self.failed is not None:
                    raise self.failed
                new = self._store.span(scanned)
                end = self._store.end
                partial = self._unfinished() if include_partial and self._partial else ""
                partial_t = self._partial_t
                seen = self._changes
            found = scan(new)
            if found is not None:
                return found
            scanned = max(scanned, end)
            if partial:
                # Redacted: a match on it is handed to the test, which may print it.
                candidate = Line(end, partial_t, partial)
                if test(candidate):
                    return candidate
            with self._cond:
                if self._changes != seen:
                    continue  # lines or a change of state since the scan: look at them first
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

    Lifecycle: created when the test starts; it sees every line from then on and writes the
    lines of each chunk to ``path`` as the chunk arrives, flushed, so that the file is whole (in
    the capture's sense) even if pytest is killed. ``close()`` at teardown detaches it.
    ``expect`` consumes: a second ``expect`` searches only after the line the first one matched,
    as pytest-embedded does.
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
        capture.add_batch_listener(self._on_batch)

    def _on_batch(self, batch: LineBatch) -> None:
        with self._file_lock:
            if self._file is not None:
                write_flushed(self._file, self.path, batch.text)
        if self.timeline is not None:
            for line in batch.lines:
                self._to_timeline(line)

    def _to_timeline(self, line: Line) -> None:
        assert self.timeline is not None
        event = parse_event(line.text)
        src = "rig" if line.text.startswith("[rig] ") else "serial"
        if event is None:
            self.timeline.add(line.t, src, line.text)
        else:
            event.pop("payload", None)  # bytes; the hex is there
            self.timeline.add(line.t, src, line.text, event=event)

    def note(self, text: str) -> None:
        """Write a line of the rig's own into this test's log, e.g. before an injection."""
        span = Span(-1, [f"[rig] {text}"], [(-1, time.time())])
        self._on_batch(LineBatch(span, span.logged()))

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
            if ev is not None and not may_be(line.text, ev):
                continue
            event = parse_event(line.text)
            if event is not None and (ev is None or event_matches(event, ev, fields)):
                event["t"] = line.t
                found.append(event)
        return found

    def expect(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str]:
        """Wait for a line matching ``pattern`` (searched, not anchored) and return the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        line = self._wait(regex.search, f"a line matching /{regex.pattern}/", timeout)
        match = regex.search(line.text)
        assert match is not None
        return match

    def expect_event(self, ev: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Wait for the firmware's ``@rig`` event ``ev`` whose fields equal ``fields``."""
        if ev not in KNOWN_EVENTS:
            raise ValueError(f"unknown firmware event {ev!r}; known: {sorted(KNOWN_EVENTS)}")

        def test(text: str) -> bool:
            if not may_be(text, ev):
                return False
            event = parse_event(text)
            return event is not None and event_matches(event, ev, fields)

        line = self._wait(test, describe(ev, fields), timeout, include_partial=False)
        event = parse_event(line.text)
        assert event is not None
        event["t"] = line.t
        return event

    def _wait(
        self, test: Callable[[str], object], awaited: str, timeout: float, include_partial: bool = True
    ) -> Line:
        try:
            line = self.capture.wait_text(test, self.cursor, Deadline(timeout), include_partial)
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
        self.capture.remove_batch_listener(self._on_batch)
        with self._file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
