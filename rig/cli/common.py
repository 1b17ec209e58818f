"""What every ``rig`` command shares: common options, the inventory, opening a board, exit codes.

The library raises typed errors and never prints; this module decides how each error class
reads on stderr and which exit code it gives, so that every command reports failures alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from serial.tools.list_ports_common import ListPortInfo

from rig.bench import BUILTIN_VIRTUAL, BenchBoard, choose_board
from rig.board.board import Board
from rig.discovery import ports as discovery_ports
from rig.errors import ConfigError, InfrastructureError, RigError
from rig.inventory import INVENTORY_ENV, BoardSpec, Inventory, default_inventory_path, load_inventory

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and what it ran failed: firmware, exec, deploy
EXIT_USAGE = 2  # argparse errors and ConfigError, as argparse itself uses 2
EXIT_INFRASTRUCTURE = 3  # board absent, busy or unreachable; broker failure
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the command ran and failed (firmware error, exec error, deploy error)
  2    usage or configuration error (bad option, unknown board, inventory error file:line: key)
  3    infrastructure: board absent, busy (names the holder) or unreachable; broker failure
  130  interrupted (Ctrl-C or SIGTERM)
"""

DEFAULT_WORKDIR = Path("artifacts") / "cli"
DEFAULT_LOCK_TIMEOUT = 10.0
VIRTUAL = BUILTIN_VIRTUAL.name


class CommandFailed(RigError):
    """What the command ran failed (exit 1), e.g. code on the board that never finished."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that every command's cleanup (stopping the virtual
    board, the broker) runs on both."""


def env(name: str) -> str | None:
    """``$name`` when set and not blank: an empty variable in a CI file means "not given"."""
    value = os.environ.get(name, "").strip()
    return value or None


def seconds(text: str) -> float:
    """argparse type for a duration: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def common_options() -> argparse.ArgumentParser:
    """The options every command takes, as a parent parser (argparse's ``parents=``)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--inventory",
        type=Path,
        metavar="PATH",
        help=f"the bench inventory (default: ${INVENTORY_ENV}, else boards.yaml in the current directory)",
    )
    group.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        metavar="DIR",
        help="where virtual-board flash, serial logs and the broker's files live (default: %(default)s)",
    )
    group.add_argument(
        "--lock-timeout",
        type=seconds,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="S",
        help="how long to wait for a board another process holds (default: %(default)gs)",
    )
    group.add_argument(
        "--debug", action="store_true", help="re-raise rig errors with their traceback instead of a message"
    )
    return parser


def add_firmware_options(parser: argparse.ArgumentParser) -> None:
    """The firmware tree and where its locked dependencies come from: the same flags, defaults and
    environment variables for every command that deploys or locks (``rig deploy``, ``rig deps``)."""
    parser.add_argument(
        "--firmware",
        type=Path,
        default=Path(env("RIG_FIRMWARE") or "firmware"),
        metavar="DIR",
        help="the firmware tree (default: $RIG_FIRMWARE, else %(default)s)",
    )
    parser.add_argument(
        "--deps-cache",
        type=Path,
        default=env("RIG_DEPS_CACHE"),
        metavar="DIR",
        help="firmware dependency cache (default: $RIG_DEPS_CACHE, else ~/.cache/micropython-mqtt-rig/deps)",
    )
    parser.add_argument(
        "--deps-index",
        "--index",
        dest="deps_index",
        type=Path,
        default=env("RIG_DEPS_INDEX"),
        metavar="DIR",
        help="a local mip v2 index directory (as `rig deps export` writes), the last source asked "
        "(default: $RIG_DEPS_INDEX)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        default=(env("RIG_OFFLINE") or "0").lower() in ("1", "true", "yes"),
        help="no network: dependencies from the cache and --deps-index only (default: $RIG_OFFLINE)",
    )


def board_options() -> argparse.ArgumentParser:
    """Options of the commands that open a board (deploy, monitor, exec)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--micropython",
        default=env("RIG_MICROPYTHON"),
        metavar="PATH",
        help="the unix port executable for a virtual board (default: $RIG_MICROPYTHON, else found)",
    )
    return parser


def add_board_argument(parser: argparse.ArgumentParser) -> None:
    # Optional so that $RIG_BOARD, the variable the pytest plugin reads, serves here too.
    parser.add_argument(
        "board",
        nargs="?",
        default=env("RIG_BOARD"),
        metavar="BOARD",
        help="an inventory board name, 'virtual', or 'auto' (the single USB board plugged in, "
        "else the virtual board); default: $RIG_BOARD",
    )


def list_ports() -> list[ListPortInfo]:
    """The serial ports present, looked up through the module at call time: tests replace
    ``rig.discovery.ports.list_serial_ports`` with fabricated records."""
    return discovery_ports.list_serial_ports()


def inventory_path(args: argparse.Namespace) -> Path:
    given: Path | None = args.inventory
    return given if given is not None else default_inventory_path(Path.cwd())


def load(args: argparse.Namespace) -> Inventory:
    """The inventory the command works on. Without --inventory and $RIG_INVENTORY, a missing
    boards.yaml is an empty bench (the built-in virtual board still works); a file asked for
    by name must exist."""
    path = inventory_path(args)
    if args.inventory is None and env(INVENTORY_ENV) is None and not path.exists():
        return Inventory(path, [])
    return load_inventory(path)


def board_name(args: argparse.Namespace) -> str:
    name: str | None = args.board
    if not name:
        raise ConfigError(
            "command line", "BOARD", "missing: give a board name, 'virtual' or 'auto' (or set $RIG_BOARD)"
        )
    return name


def resolve_board(inventory: Inventory, name: str) -> BoardSpec:
    """The board ``name`` stands for. ``virtual`` works even when the inventory has no such
    entry, as ``auto`` already falls back to the built-in virtual board."""
    if name == VIRTUAL and VIRTUAL not in inventory.names():
        return BUILTIN_VIRTUAL
    return choose_board(inventory, name, list_ports)


def flash_dir(spec: BoardSpec, workdir: Path) -> Path:
    # BenchBoard's naming: `list` must find the same lock as the command holding the board.
    return workdir / f"flash-{spec.name}"


def secret_values(spec: BoardSpec) -> list[str]:
    return [s.value for s in spec.secrets() if s.value]


@contextlib.contextmanager
def open_board(args: argparse.Namespace, purpose: str) -> Iterator[tuple[BoardSpec, Board]]:
    """The board named on the command line, locked and connected; closed (and a virtual board
    stopped) however the block ends."""
    spec = resolve_board(load(args), board_name(args))
    bench = BenchBoard(
        spec,
        args.workdir,
        purpose=purpose,
        lock_timeout=args.lock_timeout,
        micropython=args.micropython,
        lister=list_ports,
    )
    # Before anything is read from the port: a firmware that prints its config must not show them.
    bench.board.capture.redact(secret_values(spec))
    board = bench.open()
    try:
        yield spec, board
    except BaseException:
        with contextlib.suppress(RigError):  # the failure that ended the block is the one to report
            bench.close()
        raise
    bench.close()


def exit_code(error: RigError) -> int:
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    if isinstance(error, InfrastructureError):
        return EXIT_INFRASTRUCTURE
    return EXIT_FAILED


def report(error: BaseException) -> None:
    """One message on stderr, ``rig: error: `` first; the library's messages are written to be
    read as they are (BoardNotPresent lists the ports seen, BoardBusy names the holder)."""
    print(f"rig: error: {error}", file=sys.stderr)
