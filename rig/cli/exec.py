"""``rig exec BOARD CODE``: run Python on the board in its raw REPL and show what it prints."""

from __future__ import annotations

import argparse
import codecs
import sys
import time
from typing import TextIO

from mpremote.transport import TransportError

from rig.cli import common

HELP = "run Python code on a board and print its output"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Runs CODE on the board in the raw REPL and prints its output as it comes. A Python error "
        "on the board prints the board's traceback on stderr and exits 1. The firmware is left "
        "stopped at the REPL afterwards, unless --reset soft-resets the board so main.py runs again."
    )
    common.add_board_argument(parser)
    parser.add_argument("code", metavar="CODE", help="Python source to run; '-' reads it from stdin")
    parser.add_argument(
        "--reset", action="store_true", help="soft-reset the board afterwards so that main.py runs again"
    )
    parser.add_argument(
        "--timeout",
        type=common.seconds,
        metavar="S",
        help="give up when the code prints nothing for S seconds: interrupt it (Ctrl-C on the board) "
        "and exit 1 (default: wait until it ends or you press Ctrl-C)",
    )


class _Output:
    """Board bytes to a text stream as they arrive: UTF-8 decoded across chunk boundaries, the
    raw REPL's \\r\\n turned into \\n, and mpremote's \\x04 end markers dropped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cr = ""  # a \r at the end of a chunk may be the first half of \r\n

    def write(self, data: bytes) -> None:
        self._emit(self._decoder.decode(data.replace(b"\x04", b"")))

    def _emit(self, text: str) -> None:
        text, self._cr = self._cr + text, ""
        if text.endswith("\r"):
            text, self._cr = text[:-1], "\r"
        if text:
            self.stream.write(text.replace("\r\n", "\n"))
            if "\n" in text:  # mpremote hands over one byte at a time: flush per line, not per byte
                self.stream.flush()

    def close(self) -> None:
        self._emit(self._decoder.decode(b"", final=True))
        if self._cr:
            self.stream.write(self._cr)
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    code: str = sys.stdin.read() if args.code == "-" else args.code
    timeout: float | None = args.timeout
    out = _Output(sys.stdout)
    with common.open_board(args, "rig exec") as (_spec, board):
        with board.repl() as transport:
            started = time.monotonic()
            try:
                _, error = transport.exec_raw(code, timeout=timeout, data_consumer=out.write)
            except KeyboardInterrupt:
                board.interrupt()  # a USB board would otherwise go on running the code
                raise
            except TransportError:
                if timeout is None or time.monotonic() - started < timeout:
                    raise  # the port or the REPL failed: board.repl reports it as unreachable
                board.interrupt()
                raise common.CommandFailed(
                    f"the code was still running after {timeout:g}s; interrupted it with Ctrl-C"
                ) from None
            finally:
                out.close()
        if args.reset:
            board.soft_reset()
    if error:
        err = _Output(sys.stderr)
        err.write(error)
        err.close()
        return common.EXIT_FAILED
    return common.EXIT_OK
