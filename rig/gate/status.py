"""The gate's live status: one line per board while the boards run, instead of their output.

``LiveStatus`` holds each board's line as data: fed by the gate's events (started, finished,
retrying) and by the progress file each board's pytest keeps (``rig.gate.progress``: the test
running now, the counts so far). ``StatusDisplay`` writes it to a stream the caller gives:

- on a terminal, the block of lines is redrawn in place, once a ``TICK`` and at every event;
- otherwise (CI, a log file), one line each time a board's line changes, never a redraw.

Both are thread-safe: the gate's events come from the threads that run the boards, the ticks
from the display's own thread. Every wait here is bounded by ``TICK``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from rig.gate.progress import ProgressView, read_progress
from rig.gate.results import FIRMWARE, PASS, Attempt, BoardStarted, GateEvent

PROGRESS_FILE = "progress.json"
# How often the display rereads the progress files (and, on a terminal, redraws).
TICK = 0.5
_ORDER = ("passed", "flaky", "failed", "error", "skipped", "quarantined")
# ANSI: cursor to the start of the line N lines up; erase the whole line.
_UP = "\x1b[{}F"
_ERASE = "\x1b[2K"


def counts_text(counts: dict[str, int]) -> str:
    """``10 passed, 1 failed``: the counts in pytest's order, the zero ones left out."""
    return ", ".join(f"{counts[k]} {k}" for k in _ORDER if counts.get(k)) or "no tests"


def outcome_text(attempt: Attempt) -> str:
    """What an attempt came to, in a few words: ``10 passed``, ``firmware failure (...)``..."""
    category = attempt.category
    if category == PASS:
        return counts_text(attempt.counts)
    if category == FIRMWARE:
        return f"firmware failure ({counts_text(attempt.counts)})"
    if attempt.config_problem is not None:
        return f"not run: {attempt.config_problem}"
    return f"infrastructure failure: {attempt.infrastructure_reason}"


def short_test(nodeid: str) -> str:
    """``test_echo_loop.py::test_cadence[x]`` for ``tests/hil/test_echo_loop.py::test_cadence[x]``."""
    path, sep, rest = nodeid.partition("::")
    return f"{Path(path).name}{sep}{rest}"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.1f}s"


def show_path(path: Path) -> str:
    """A path as short as it reads well: relative to the current directory when inside it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


@dataclass
class BoardLine:
    """One board's line as data."""

    board: str
    position: int = 0
    total: int = 0
    state: str = "waiting"  # waiting, running, done
    retry: int = 0
    folder: Path | None = None
    started: float | None = None
    ended: float | None = None
    progress: ProgressView | None = None
    outcome: str = ""
    will_retry: bool = False

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else now) - self.started

    def text(self, now: float, width: int = 0) -> str:
        """``[2/4] vb-2: running 12.0s: 3/38 tests, 3 passed — test_x.py::test_y``; ``width``
        pads the board name so that the lines of a block align."""
        where = f"[{self.position}/{self.total}] " if self.total else ""
        head = f"{where}{(self.board + ':').ljust(width + 1)} "
        if self.state == "waiting":
            return f"{head}waiting for a free job (--jobs)"
        elapsed = seconds_text(self.elapsed(now))
        if self.state == "done":
            then = "; retrying once" if self.will_retry else ""
            return f"{head}done in {elapsed}: {self.outcome}{then}"
        what = "retrying" if self.retry else "running"
        p = self.progress
        if p is None or p.collected is None:
            folder = f" -> {show_path(self.folder)}" if self.folder is not None else ""
            return f"{head}{what}{folder}"
        done = sum(p.counts.values())
        counts = counts_text(p.counts) if p.counts else "0 passed"
        now_running = f" — {short_test(p.current)}" if p.current else ""
        return f"{head}{what} {elapsed}: {done}/{p.collected} tests, {counts}{now_running}"


class LiveStatus:
    """Every board's line. ``on_event`` takes the gate's events, ``refresh`` rereads the
    progress files of the boards running now; each returns the boards whose line changed."""

    def __init__(self, boards: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._lines = {name: BoardLine(name, i + 1, len(boards)) for i, name in enumerate(boards)}

    def on_event(self, event: GateEvent) -> list[str]:
        with self._lock:
            if isinstance(event, BoardStarted):
                # A group of boards (rig.gate.several) gets its line when its run starts.
                line = self._lines.setdefault(event.board, BoardLine(event.board))
                line.state, line.retry, line.folder = "running", event.retry, event.folder
                line.position, line.total = event.position, event.total
                line.started, line.ended, line.progress = self._clock(), None, None
                line.outcome, line.will_retry = "", False
            else:
                line = self._lines.setdefault(event.attempt.board, BoardLine(event.attempt.board))
                line.state, line.ended = "done", self._clock()
                line.outcome, line.will_retry = outcome_text(event.attempt), event.will_retry
                # The last word of the run: its counts as the progress file left them.
                line.progress = self._read(line) or line.progress
            return [line.board]

    def refresh(self) -> list[str]:
        changed = []
        with self._lock:
            for line in self._lines.values():
                if line.state != "running":
                    continue
                progress = self._read(line)
                if progress is not None and progress != line.progress:
                    line.progress = progress
                    changed.append(line.board)
        return changed

    def lines(self, boards: Sequence[str] | None = None) -> list[str]:
        """The lines of ``boards`` (default: all, in order), aligned."""
        now = self._clock()
        with self._lock:
            width = max((len(name) for name in self._lines), default=0)
            chosen = self._lines if boards is None else boards
            return [self._lines[name].text(now, width) for name in chosen]

    @staticmethod
    def _read(line: BoardLine) -> ProgressView | None:
        return read_progress(line.folder / PROGRESS_FILE) if line.folder is not None else None


class StatusDisplay:
    """Writes a ``LiveStatus`` to ``stream`` while the gate runs: a block redrawn in place when
    ``redraw`` (a terminal), else one line per change. Use it as a context manager around the
    run and give ``on_event`` to ``run_gate`` as its progress callback; leaving the block stops
    the display's thread (within one ``TICK``) and leaves the final lines on screen."""

    def __init__(self, status: LiveStatus, stream: IO[str], *, redraw: bool, tick: float = TICK) -> None:
        self.status = status
        self.stream = stream
        self.redraw = redraw
        self.tick = tick
        self._drawn = 0  # lines of the block on screen (redraw mode)
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gate-status", daemon=True)

    def __enter__(self) -> StatusDisplay:
        self._show([])
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(self.tick * 4)
        self._show(self.status.refresh())

    def on_event(self, event: GateEvent) -> None:
        self._show(self.status.on_event(event))

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self._show(self.status.refresh())

    def _show(self, changed: Sequence[str]) -> None:
        # The lines are made under the same lock they are written under: otherwise a line made
        # before an event could be written after the event's own, and say the older thing last.
        with self._write_lock:
            if self.redraw:
                # Every tick, changed or not: the elapsed times go on. Cut to the terminal's
                # width: a wrapped line would throw the cursor arithmetic off.
                lines = self.status.lines()
                width = max(20, shutil.get_terminal_size().columns - 1)
                up = _UP.format(self._drawn) if self._drawn else ""
                self.stream.write(up + "".join(f"{_ERASE}{line[:width]}\n" for line in lines))
                self._drawn = len(lines)
            elif changed:
                self.stream.write("".join(f"{line}\n" for line in self.status.lines(changed)))
            self.stream.flush()
