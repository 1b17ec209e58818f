"""``rig list``: the inventory, one line per board, with whether each can be used right now."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from serial.tools.list_ports_common import ListPortInfo

from rig.board.kinds import kind_of
from rig.board_choice import BUILTIN_VIRTUAL
from rig.cli import common
from rig.errors import RigError
from rig.inventory import BoardSpec, Inventory
from rig.lab.client import list_places
from rig.lab.places import PlaceState, coordinator_of
from rig.lock import BoardLock

HELP = "list the inventory's boards and whether each is present, locked or lacks a variable"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "One line per inventory board: name, kind, how it is found, tags and status. The status "
        "is 'present (PORT)', 'absent', 'available' (virtual), 'locked by ...' (another process "
        "holds it) and 'missing env VAR' when a variable the board refers to is unset. A labgrid "
        "place shows its state at the coordinator: free, or held by whom since when."
    )


def run(args: argparse.Namespace) -> int:
    inventory = common.load(args)
    boards = list(inventory.boards)
    builtin = common.VIRTUAL not in inventory.names()
    if builtin:
        boards.append(BUILTIN_VIRTUAL)
    # The port list is asked for only when a board is to be found on it.
    ports = common.list_ports() if any(not b.traits.started_here for b in boards) else []
    places = lab_states(boards, args.workdir)
    rows = [("NAME", "KIND", "FOUND BY", "TAGS", "STATUS")]
    for spec in boards:
        found_by = kind_of(spec).found_by(spec)
        if spec is BUILTIN_VIRTUAL and builtin:
            found_by = "virtual (built in)"
        tags = ",".join(sorted(spec.tags)) or "-"
        state = status(spec, inventory, ports, args)
        if spec.name in places:
            state = state.replace(kind_of(spec).presence(spec, ports), places[spec.name], 1)
        rows.append((spec.name, spec.kind, found_by, tags, state))
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
    lock = BoardLock(kind.lock_identity(spec, args.workdir))  # as BenchBoard's: the same lock
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


def lab_states(boards: Sequence[BoardSpec], workdir: Path) -> dict[str, str]:
    """Board name -> the state of its labgrid place(s), asking each coordinator once."""
    wanted = [spec for spec in boards if spec.labgrid is not None]
    by_coordinator: dict[str, list[PlaceState] | str] = {}
    states = {}
    for spec in wanted:
        assert spec.labgrid is not None
        coordinator = coordinator_of(spec.labgrid)
        if coordinator not in by_coordinator:
            try:
                by_coordinator[coordinator] = list_places(coordinator, workdir / "labgrid-list.log")
            except RigError as e:
                by_coordinator[coordinator] = f"coordinator {coordinator}: {str(e).splitlines()[0]}"
        found = by_coordinator[coordinator]
        if isinstance(found, str):
            states[spec.name] = found
            continue
        lab = spec.labgrid
        matching = [
            p
            for p in found
            if (p.name == lab.place if lab.place else all(p.tags.get(k) == v for k, v in lab.tags))
        ]
        if not matching:
            states[spec.name] = f"no such place at {coordinator}"
        elif lab.place:
            states[spec.name] = f"place {matching[0].name} {matching[0].describe()}"
        else:
            states[spec.name] = "; ".join(f"place {p.name} {p.describe()}" for p in matching)
    return states
