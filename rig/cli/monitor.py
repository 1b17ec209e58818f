"""``rig monitor BOARD``: the board's serial output, timestamped, with keystrokes sent back to it."""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from rig.board.board import Board
from rig.cli import common
from rig.deadline import Deadline
from rig.errors import BoardUnreachable
from rig.serial_events import parse_event
from rig.serialio.capture import Line, format_line

HELP = "show the board's serial output with timestamps and send it what you type (Ctrl-] quits)"

QUIT_KEY = b"\x1d"  # Ctrl-], as in telnet, miniterm and mpremote
# After stdin ends, keep showing what the input caused until the board has been quiet this long.
QUIET_S = 0.5
_POLL_S = 0.1


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Prints every line the board sends, prefixed with its arrival time, until you press Ctrl-] "
        "or stdin ends. What you type goes to the board as is (Ctrl-C included, to interrupt "
        "main.py). From a pipe, each line of stdin is sent as one line typed at the REPL. "
        "Lines show once complete: a prompt without a newline appears with the next line."
    )
    common.add_board_argument(parser)
    parser.add_argument(
        "--no-input", action="store_true", help="only print, send nothing; Ctrl-C stops (exit 0)"
    )
    parser.add_argument(
        "--linger",
        type=common.seconds,
        default=3.0,
        metavar="S",
        help=f"after stdin ends, go on printing for at most S seconds, stopping once the board is "
        f"quiet for {QUIET_S}s (default: %(default)gs)",
    )
    parser.add_argument(
        "--show-events",
        action="store_true",
        help="show the firmware's @rig event lines too (default: hidden, as in rig up)",
    )


class _Input:
    """Forwards stdin to the board on a thread of its own, and says why it stopped."""

    def __init__(self, board: Board, stdin: BinaryIO, raw_tty: bool) -> None:
        self.board = board
        self.stdin = stdin
        self.raw_tty = raw_tty
        self.ended = threading.Event()
        self.quit = False  # Ctrl-] rather than end of input
        self.error: BaseException | None = None
        self.ended_at = 0.0
        # Daemon: a read blocked on a terminal must not keep the process alive after Ctrl-].
        self._thread = threading.Thread(target=self._run, name="rig-monitor-input", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                data = os.read(self.stdin.fileno(), 1024) if self.raw_tty else self.stdin.readline()
                if not data:
                    break
                if not self.raw_tty:
                    # A terminal's Enter is \r; MicroPython's line editor ignores a bare \n.
                    data = data.rstrip(b"\r\n") + b"\r" if data.endswith(b"\n") else data
                head, quit_key, _ = data.partition(QUIT_KEY)
                if head:
                    self.board.write(head)
                if quit_key:
                    self.quit = True
                    break
        except BoardUnreachable as e:
            self.error = e
        except (OSError, ValueError):
            pass  # stdin closed or unreadable: the same as its end
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """Keystrokes one by one and unprocessed (Ctrl-C goes to the board, not to us), restored
    however the monitor ends."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(args: argparse.Namespace) -> int:
    stdin = sys.stdin
    raw_tty = not args.no_input and stdin.isatty()
    with common.open_board(args, "rig monitor") as (spec, board):
        keys = "Ctrl-C quits" if args.no_input else "Ctrl-] quits" if raw_tty else "end of input quits"
        hidden = "" if args.show_events else "; @rig lines hidden, --show-events shows them"
        print(f"rig: monitoring {spec.name} ({keys}{hidden})", file=sys.stderr, flush=True)
        terminal = _raw_terminal(stdin.fileno()) if raw_tty else contextlib.nullcontext()
        with terminal:
            # In raw mode the terminal no longer turns \n into \r\n.
            return _monitor(args, board, stdin, raw_tty, "\r\n" if raw_tty else "\n")


def _monitor(args: argparse.Namespace, board: Board, stdin: TextIO, raw_tty: bool, eol: str) -> int:
    capture = board.capture
    lines: queue.Queue[Line] = queue.Queue()
    # The listener runs on the port's reader thread under the capture's lock: it only queues,
    # so a slow terminal can never hold up the capture.
    capture.add_listener(lines.put)
    shown = -1

    def show(line: Line) -> None:
        nonlocal shown
        if line.index <= shown:  # the snapshot below and the queue may both hold a line
            return
        shown = line.index
        if args.show_events or parse_event(line.text) is None:
            sys.stdout.write(format_line(line) + eol)
            sys.stdout.flush()

    try:
        for line in capture.lines():  # what the board said while it was being opened
            show(line)
        feeder = None if args.no_input else _Input(board, stdin.buffer, raw_tty)
        if feeder is not None:
            feeder.start()
        last_line = time.monotonic()
        linger: Deadline | None = None
        while True:
            try:
                show(lines.get(timeout=_POLL_S))
                last_line = time.monotonic()
                continue
            except queue.Empty:
                pass
            capture.check()  # a lost port or a dead capture ends the monitor with its cause
            if feeder is None or not feeder.ended.is_set():
                continue
            if feeder.error is not None:
                raise feeder.error
            if feeder.quit:
                return common.EXIT_OK
            linger = linger or Deadline(args.linger)
            if linger.expired or time.monotonic() - max(last_line, feeder.ended_at) >= QUIET_S:
                return common.EXIT_OK
    except KeyboardInterrupt:
        if args.no_input:
            return common.EXIT_OK  # the documented way to end --no-input
        raise
    finally:
        capture.remove_listener(lines.put)
