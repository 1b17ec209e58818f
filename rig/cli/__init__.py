"""The ``rig`` command line: the one place that prints and chooses exit codes.

Commands are data, as in mpremote: ``COMMANDS`` maps each name to its handler, the function that
adds its arguments, and its one-line help. Handlers return an exit code; library errors they let
through are turned into one ``rig: error:`` line and an exit code here (``common.exit_code``).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import NamedTuple

from rig.cli import (
    broker,
    common,
    deploy,
    deps,
    doctor,
    flash,
    gate,
    history,
    lab,
    listing,
    monitor,
    page,
    release,
    scan,
    trends,
    up,
)
from rig.cli import exec as exec_command
from rig.errors import ConfigError, RigError


class Command(NamedTuple):
    handler: Callable[[argparse.Namespace], int]
    setup: Callable[[argparse.ArgumentParser], None]
    help: str


COMMANDS: dict[str, Command] = {
    "up": Command(up.run, up.setup, up.HELP),
    "page": Command(page.run, page.setup, page.HELP),
    "scan": Command(scan.run, scan.setup, scan.HELP),
    "list": Command(listing.run, listing.setup, listing.HELP),
    "deploy": Command(deploy.run, deploy.setup, deploy.HELP),
    "deps": Command(deps.run, deps.setup, deps.HELP),
    "flash": Command(flash.run, flash.setup, flash.HELP),
    "monitor": Command(monitor.run, monitor.setup, monitor.HELP),
    "broker": Command(broker.run, broker.setup, broker.HELP),
    "exec": Command(exec_command.run, exec_command.setup, exec_command.HELP),
    "gate": Command(gate.run, gate.setup, gate.HELP),
    "lab": Command(lab.run, lab.setup, lab.HELP),
    "history": Command(history.run, history.setup, history.HELP),
    "trends": Command(trends.run, trends.setup, trends.HELP),
    "release": Command(release.run, release.setup, release.HELP),
    "doctor": Command(doctor.run, doctor.setup, doctor.HELP),
}
# Commands that open a board take the board options too.
_BOARD_COMMANDS = ("up", "deploy", "monitor", "exec", "doctor")


class _Formatter(argparse.HelpFormatter):
    """Wraps prose paragraphs to the terminal, as argparse does, but keeps a paragraph with
    indented lines (the exit code table) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.split("\n\n")
        return "\n\n".join(
            "".join(indent + line for line in p.splitlines(keepends=True))
            if "\n " in p
            else super(_Formatter, self)._fill_text(p, width, indent)
            for p in paragraphs
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rig",
        description="The MicroPython MQTT test rig's bench tools: find boards, deploy, watch, run code.",
        epilog=common.EXIT_CODES_HELP,
        formatter_class=_Formatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    shared = common.common_options()
    board = common.board_options()
    for name, command in COMMANDS.items():
        parents = [shared, board] if name in _BOARD_COMMANDS else [shared]
        sub = subparsers.add_parser(
            name,
            help=command.help,
            parents=parents,
            epilog=common.EXIT_CODES_HELP,
            formatter_class=_Formatter,
        )
        command.setup(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) and usage errors (2): a code to return, not to raise
        return e.code if isinstance(e.code, int) else common.EXIT_USAGE
    except ConfigError as e:  # a bad $RIG_* variable, told apart from a bad flag by its name
        common.report(e)
        return common.EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("rig: error: a command is required (see rig --help)", file=sys.stderr)
        return common.EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    with _sigterm_as_interrupt():
        try:
            return handler(args)
        except RigError as e:
            if args.debug:
                raise
            common.report(e)
            return common.exit_code(e)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print("rig: interrupted", file=sys.stderr)
            return common.EXIT_INTERRUPTED


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``common.Terminated`` (a KeyboardInterrupt) so that commands clean up
    exactly as on Ctrl-C. Signal handlers can only be set from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise common.Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["COMMANDS", "Command", "build_parser", "main"]
