"""What every ``rig`` command shares: common options, the inventory, opening a board, exit codes.

The library raises typed errors and never prints; this module decides how each error class
reads on stderr and which exit code it gives, so that every command reports failures alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from serial.tools.list_ports_common import ListPortInfo

from rig import settings
from rig.board.board import Board
from rig.board_choice import AUTO, BUILTIN_VIRTUAL, BenchBoard, choose_board
from rig.discovery import ports as discovery_ports
from rig.errors import ConfigError, InfrastructureError, RigError
from rig.inventory import BoardSpec, Inventory, default_inventory_path, load_inventory

INVENTORY = settings.option("inventory")

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and what it ran failed: firmware, exec, deploy
EXIT_USAGE = 2  # argparse errors and ConfigError, as argparse itself uses 2
EXIT_INFRASTRUCTURE = 3  # board absent, busy or unreachable; broker failure
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

EXIT_CODES_HELP = """\
exit codes (the same mistake gives the same code in every command):
  0    success
  1    the command ran and what it ran failed (firmware error, exec error, deploy error)
  2    usage or configuration mistake, found before anything runs: a bad option or variable,
       an unknown board, an inventory error (file:line: key), a missing firmware folder
  3    infrastructure: board absent, busy (names the holder) or unreachable; broker failure
  130  interrupted (Ctrl-C or SIGTERM)
"""

DEFAULT_WORKDIR = Path("artifacts") / "cli"
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
    """argparse type for a duration of a command's own (not a table setting): a number >= 0."""
    try:
        return settings.parse_seconds(text, "command line", "seconds")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(e.problem) from None


class _FromEnvironment(str):
    """A default argparse got from ``$RIG_NAME``: a bad one is reported naming the variable."""


# A converter of the settings table's kind: text, where it came from, the setting's name.
Convert = Callable[[str, str, str], object]


def _as_text(text: str, source: str, name: str) -> str:
    return text


def _as_path(text: str, source: str, name: str) -> Path:
    return Path(text).expanduser()


def _as_seconds(text: str, source: str, name: str) -> float:
    return settings.parse_seconds(text, source, name)


def as_directory(text: str, source: str, name: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ConfigError(source, name, f"{text} is not a directory")
    return path


def as_choice(choices: tuple[str, ...]) -> Convert:
    def choice(text: str, source: str, name: str) -> str:
        return settings.parse_choice(text, source, name, choices)

    return choice


def _argparse_type(entry: settings.Option, convert: Convert) -> Callable[[str], object]:
    """``convert`` as argparse's ``type``: a value from the command line gives argparse's usage
    error (exit 2); a default from the environment raises ConfigError naming the variable (the
    same exit code, through ``rig.cli.main``)."""

    def argparse_type(text: str) -> object:
        if isinstance(text, _FromEnvironment):
            return convert(text, f"${entry.env}", entry.name)
        try:
            return convert(text, entry.cli or entry.flag, entry.name)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.problem) from None

    argparse_type.__name__ = entry.name  # argparse names it in "invalid NAME value"
    return argparse_type


def source_of(name: str, value: object) -> str:
    """Where the value of table entry ``name`` came from, for messages: its variable or its flag."""
    entry = settings.option(name)
    return f"${entry.env}" if isinstance(value, _FromEnvironment) else (entry.cli or entry.flag)


def embedded_broker(broker: str) -> str:
    """The broker ``rig up`` and ``rig broker`` run: the settings table's choice (``--broker``,
    ``$RIG_BROKER``), but never an external one: these commands run their own broker, and
    ``RIG_BROKER=external`` is set for test runs against a lab's broker."""
    return "auto" if broker == "external" else broker


def table_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    *aliases: str,
    convert: Convert = _as_text,
    help: str,
    **kwargs: object,
) -> None:
    """The argument of the settings table's entry ``name`` (``rig.settings``): its flag, its
    variable and its default come from the table, so that pytest and ``rig`` never disagree.
    A positional entry (``BOARD``) is optional, defaulting to the variable, then the table."""
    entry = settings.option(name)
    assert entry.cli is not None, f"{name} has no command-line argument in the settings table"
    from_env = entry.from_environment()
    default: object = _FromEnvironment(from_env) if from_env is not None else entry.default
    shown = f"${entry.env}, else {entry.default}" if entry.default is not None else f"${entry.env}"
    if entry.switch:
        # A switch's default is decided now: argparse converts no default of a store_true.
        source = f"${entry.env}" if from_env is not None else f"{entry.cli} (default)"
        default = settings.parse_flag(from_env or entry.default or "0", source, name)
        kwargs.setdefault("action", "store_true")
    else:
        kwargs["type"] = _argparse_type(entry, convert)
    if entry.cli.startswith("-"):
        parser.add_argument(entry.cli, *aliases, default=default, help=f"{help} (default: {shown})", **kwargs)  # type: ignore[arg-type]
    else:
        parser.add_argument(
            name.replace("-", "_"),
            nargs="?",
            default=default,
            metavar=entry.cli,
            help=f"{help} (default: {shown})",
            **kwargs,  # type: ignore[arg-type]
        )


def common_options() -> argparse.ArgumentParser:
    """The options every command takes, as a parent parser (argparse's ``parents=``)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    # No default here: a file named (here or by the variable) must exist, the default one need not.
    group.add_argument(
        "--inventory",
        type=Path,
        metavar="PATH",
        help=f"the bench inventory (default: ${INVENTORY.env}, else {INVENTORY.default} in the current "
        "directory)",
    )
    group.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        metavar="DIR",
        help="where serial logs and the broker's files live; a virtual board's flash is kept for it in "
        "a private folder outside it ($RIG_STATE_DIR) (default: %(default)s)",
    )
    table_argument(
        group,
        "lock-timeout",
        convert=_as_seconds,
        metavar="S",
        help="how long to wait for a board another process holds, in seconds",
    )
    group.add_argument(
        "--debug", action="store_true", help="re-raise rig errors with their traceback instead of a message"
    )
    return parser


def add_firmware_options(parser: argparse.ArgumentParser) -> None:
    """The firmware tree and where its locked dependencies come from: the same flags, defaults and
    environment variables for every command that deploys or locks (``rig deploy``, ``rig deps``,
    ``rig up``). A firmware folder that does not exist is a usage mistake (exit 2) in each."""
    table_argument(parser, "firmware", convert=as_directory, metavar="DIR", help="the firmware tree")
    table_argument(parser, "deps-cache", convert=_as_path, metavar="DIR", help="firmware dependency cache")
    table_argument(
        parser,
        "deps-index",
        "--index",
        convert=_as_path,
        metavar="DIR",
        help="a local mip v2 index directory (as `rig deps export` writes), the last source asked",
    )
    table_argument(parser, "offline", help="no network: dependencies from the cache and --deps-index only")


def board_options() -> argparse.ArgumentParser:
    """Options of the commands that open a board (deploy, monitor, exec, up)."""
    parser = argparse.ArgumentParser(add_help=False)
    table_argument(
        parser,
        "micropython",
        metavar="PATH",
        help="the unix port executable for a virtual board (else found)",
    )
    return parser


def add_board_argument(parser: argparse.ArgumentParser) -> None:
    """BOARD, as ``--rig-board`` takes it: nothing named means auto, the one USB board of the
    inventory plugged in, else the virtual board."""
    table_argument(
        parser,
        "board",
        help="an inventory board name, 'virtual', or 'auto' (the single USB board plugged in, "
        "else the virtual board)",
    )


def list_ports() -> list[ListPortInfo]:
    """The serial ports present, looked up through the module at call time: tests replace
    ``rig.discovery.ports.list_serial_ports`` with fabricated records."""
    return discovery_ports.list_serial_ports()


def inventory_path(args: argparse.Namespace) -> Path:
    given: Path | None = args.inventory
    return given if given is not None else default_inventory_path(Path.cwd())


def inventory_named(args: argparse.Namespace) -> bool:
    """Named on the command line or by the variable: then the file must exist."""
    return args.inventory is not None or INVENTORY.from_environment() is not None


def load(args: argparse.Namespace) -> Inventory:
    """The inventory the command works on. Without --inventory and $RIG_INVENTORY, a missing
    boards.yaml is an empty bench (the built-in virtual board still works); a file asked for
    by name must exist."""
    path = inventory_path(args)
    if not inventory_named(args) and not path.exists():
        return Inventory(path, [])
    return load_inventory(path)


def board_name(args: argparse.Namespace) -> str:
    name: str = args.board or settings.option("board").default or AUTO
    return name


def resolve_board(inventory: Inventory, name: str) -> BoardSpec:
    """The board ``name`` stands for. ``virtual`` works even when the inventory has no such
    entry, as ``auto`` already falls back to the built-in virtual board."""
    if name == VIRTUAL and VIRTUAL not in inventory.names():
        return BUILTIN_VIRTUAL
    return choose_board(inventory, name, list_ports)


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
