"""``rig list``: the inventory, one line per board, with whether each can be used right now."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from serial.tools.list_ports_common import ListPortInfo

from rig.bench import BUILTIN_VIRTUAL
from rig.board.kinds import kind_of
from rig.cli import common
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
    # The port list is asked for only when a board is to be found on it.
    ports = common.list_ports() if any(not b.traits.started_here for b in boards) else []
    rows = [("NAME", "KIND", "FOUND BY", "TAGS", "STATUS")]
    for spec in boards:
        found_by = kind_of(spec).found_by(spec)
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
    kind = kind_of(spec)
    parts = [kind.presence(spec, ports)]
    lock = BoardLock(kind.lock_identity(spec, common.flash_dir(spec, args.workdir)))
    if lock.is_locked():
        holder = lock.holder()
        locked = f"locked by {holder.describe()}" if holder else "locked (holder record unreadable)"
        # A locked board the rig starts is not available; a locked USB board is still worth
        # locating.
        parts = [locked] if spec.traits.started_here else [*parts, locked]
    missing = inventory.missing_env(spec.name) if spec.name in inventory.names() else []
    if missing:
        parts.append("missing env " + ", ".join(missing))
    return "; ".join(parts)
