"""``rig flash BOARD [--image FILE]``: put the pinned MicroPython runtime on a board."""

from __future__ import annotations

import argparse
from pathlib import Path

from rig.cli import common
from rig.errors import ConfigError
from rig.flashing.defaults import DEFAULT_BAUD, DEFAULT_CHIP, EXTRA

HELP = "flash the pinned MicroPython runtime onto a board, then check what it runs"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Checks the image offline (its sha256 against the board's runtime pin; for an ESP32 its "
        "header, checksum, digest and chip), compares it with what the board's flash holds (an MD5 "
        "over the image's region, read by the chip) and writes only when they differ; then "
        "verifies the region, restarts the board and reads its runtime over the REPL against the "
        "pin. ESP32 boards are flashed through esptool; the virtual board's runtime slot gets the "
        "pinned micropython executable, and its filesystem is emptied by --erase. A failed flash, "
        "or a board that does not come back with a REPL and its pinned runtime, exits 3 "
        "(infrastructure); a bad image exits 2, naming the file."
    )
    parser.add_argument("board", metavar="BOARD", help="an inventory board name, or 'virtual'")
    parser.add_argument(
        "--image",
        type=Path,
        metavar="FILE",
        help="the image to write (default: the board's runtime pin in the inventory); with a pin, "
        "it must have the pinned sha256",
    )
    parser.add_argument(
        "--erase",
        action="store_true",
        help="erase the whole flash first, the filesystem with it (the write is then never skipped)",
    )
    parser.add_argument(
        "--chip",
        default=DEFAULT_CHIP,
        metavar="CHIP",
        help="the Espressif chip, as esptool names it: esp32, esp32s3, esp32c3, ... (default: %(default)s)",
    )
    parser.add_argument(
        "--baud",
        type=int,
        default=DEFAULT_BAUD,
        metavar="N",
        help="the serial speed for the data, once esptool's stub runs (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        from rig.flashing.board import flash_board, image_for, pin_of
    except ImportError as e:
        if e.name is None or not e.name.startswith("esptool"):
            raise
        raise ConfigError("rig flash", "esptool", f"is not installed: {EXTRA}") from e
    spec = common.resolve_board(common.load(args), args.board)
    pin = pin_of(spec)
    image = image_for(spec, pin, args.image, args.chip)
    pinned = f", pinned {pin.describe()}" if pin is not None else ", no runtime pin"
    print(f"flashing {spec.name}: {image.describe()}{pinned}", flush=True)
    outcome = flash_board(
        spec,
        image,
        args.workdir,
        pin=pin,
        erase=args.erase,
        lock_timeout=args.lock_timeout,
        lister=common.list_ports,
        chip=args.chip,
        baud=args.baud,
    )
    print(outcome.summary())
    return common.EXIT_OK
