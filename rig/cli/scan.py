"""``rig scan``: the USB serial devices plugged in, which inventory board each is, and
ready ``boards.yaml`` entries for the others (``--write`` appends them to the inventory)."""

from __future__ import annotations

import argparse

from rig.cli import common
from rig.discovery import ScanEntry, merge_into_inventory, render_entries, scan

HELP = "list the USB serial devices present and propose boards.yaml entries for new ones"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Lists the USB serial devices present, marks known MicroPython boards and common USB-serial "
        "bridges, and names the inventory board each one matches. For every device no board "
        "matches it prints a ready boards.yaml entry; --write appends those to the inventory."
    )
    parser.add_argument(
        "--write", action="store_true", help="append the entries for unmatched devices to the inventory file"
    )


def run(args: argparse.Namespace) -> int:
    inventory = common.load(args)
    ports = common.list_ports()
    entries = scan(ports, inventory.boards)
    others = len(ports) - len(entries)
    if not entries:
        print(
            "no USB serial devices found"
            + (f" ({others} other serial port(s) without USB ids)" if others else "")
        )
        return common.EXIT_OK
    print("USB serial devices:")
    for entry in entries:
        print(f"  {entry.comment()}  [{role(entry)}]")
    if others:
        print(f"  ({others} other serial port(s) without USB ids left out)")
    new = [e for e in entries if e.matched_board is None]
    if not new:
        print("every device is already in the inventory")
        return common.EXIT_OK
    path = common.inventory_path(args)
    if args.write:
        added = merge_into_inventory(path, new)
        print(f"added to {path}: {', '.join(added)}" if added else f"nothing added to {path}")
        return common.EXIT_OK
    print(f"\nentries to paste under boards: in {path} (or run rig scan --write):")
    print(render_entries(new), end="")
    return common.EXIT_OK


def role(entry: ScanEntry) -> str:
    if entry.known is None:
        return "unknown device"
    if entry.likely_micropython:
        return "MicroPython"
    return {"bridge": "USB-serial bridge", "native-usb": "chip's native USB"}[entry.known.role]
