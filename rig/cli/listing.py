"""``rig list``: the inventory, one line per board, with whether each can be used right now."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from serial.tools.list_ports_common import ListPortInfo

from rig.bench import BUILTIN_VIRTUAL, lock_identity
from rig.cli import common
from rig.discovery import BoardAmbiguous, BoardNotPresent, find_port
from rig.inventory import BoardSpec, Inventory
from rig.lock import BoardLock

HELP = "list the inventory's boards and whether each is present, locked or lacks a variable"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "One line per inventory board: name, kind, how it is found, tags and status. The status "
        "is 'present (PORT)', 'absent', 'available' (virtual), 'locked by ...' (another process "
        "holds it) and 'missing env VAR' when a variable the board refers to is unset."
    )


def run(args: argparse.Namespace) -> int:
    inventory = common.load(args)
    boards = list(inventory.boards)
    builtin = common.VIRTUAL not in inventory.names()
    if builtin:
        boards.append(BUILTIN_VIRTUAL)
    ports = common.list_ports() if any(b.kind != "virtual" for b in boards) else []
    rows = [("NAME", "KIND", "FOUND BY", "TAGS", "STATUS")]
    for spec in boards:
        found_by = "virtual" if spec.kind == "virtual" else spec.match.describe()
        if spec is BUILTIN_VIRTUAL and builtin:
            found_by = "virtual (built in)"
        tags = ",".join(sorted(spec.tags)) or "-"
        rows.append((spec.name, spec.kind, found_by, tags, status(spec, inventory, ports, args)))
    where = (
        inventory.path if inventory.path.exists() else f"{inventory.path} (not found: built-in board only)"
    )
    print(f"inventory: {where}")
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]]))
    return common.EXIT_OK


def status(
    spec: BoardSpec, inventory: Inventory, ports: Sequence[ListPortInfo], args: argparse.Namespace
) -> str:
    parts = [presence(spec, ports)]
    lock = BoardLock(lock_identity(spec, common.flash_dir(spec, args.workdir)))
    if lock.is_locked():
        holder = lock.holder()
        locked = f"locked by {holder.describe()}" if holder else "locked (holder record unreadable)"
        # A locked virtual board is not available; a locked USB board is still worth locating.
        parts = [locked] if spec.kind == "virtual" else [*parts, locked]
    missing = inventory.missing_env(spec.name) if spec.name in inventory.names() else []
    if missing:
        parts.append("missing env " + ", ".join(missing))
    return "; ".join(parts)


def presence(spec: BoardSpec, ports: Sequence[ListPortInfo]) -> str:
    if spec.kind == "virtual":
        return "available"
    if spec.match.url:
        return f"at {spec.match.url} (a URL: not probed)"
    try:
        return f"present ({find_port(spec, ports)})"
    except BoardNotPresent:
        return "absent"
    except BoardAmbiguous as e:
        return f"ambiguous: {len(e.candidates)} ports match ({', '.join(e.candidates)})"
