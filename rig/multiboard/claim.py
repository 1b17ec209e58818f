"""All the boards of a test, claimed at once or not at all, without deadlock.

Two runs that each need two boards out of three must never each hold one and wait for the
other. So a claim never waits while it holds: it tries the boards' locks without waiting, in
one global order (by lock file), stops as soon as the boards it holds can play every role, and
otherwise gives back all it took and tries again after a random pause (so that two runs that
collided do not collide again in step), until its bound expires. A run never holds a lock it
waits behind, so no cycle of waiters can form, whatever the number of runs, workers or terminals.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rig.board.kinds import PortLister
from rig.board_choice import list_ports
from rig.deadline import Deadline
from rig.discovery import BoardNotPresent, find_port
from rig.errors import InfrastructureError
from rig.inventory import BoardSpec
from rig.lock import BoardBusy, BoardLock
from rig.multiboard.roles import Role

# The pause between two tries is drawn from this range (s): short against a test's length, long
# enough that two claimants do not keep taking the same first board at the same instant.
RETRY_PAUSE_S = (0.05, 0.4)


class NotEnoughBoards(InfrastructureError):
    """The boards a test needs could not all be had within the bound. ``summary`` is one line
    for the skip reason: what the test needed, and what was busy or absent at the last try."""

    def __init__(
        self, needed: str, waited: float, busy: dict[str, BoardBusy], absent: dict[str, BoardNotPresent]
    ) -> None:
        self.needed = needed
        self.busy = busy
        self.absent = absent
        why = [f"{name} in use" for name in busy] + [f"{name} not plugged in" for name in absent]
        self.summary = f"needed boards {needed}, could not have them all within {waited:g}s: " + (
            "; ".join(why) or "too few boards can play these roles"
        )
        details = [f"  {name}: {e}" for name, e in busy.items()]
        details += [f"  {name}: {e.summary}" for name, e in absent.items()]
        super().__init__("\n".join([self.summary, *details]))


@dataclass
class Claim:
    """The boards of one test, each locked: ``boards`` maps a role to its board, ``locks`` a
    board's name to its held lock. ``release()`` gives them all back (idempotent)."""

    boards: dict[str, BoardSpec]
    locks: dict[str, BoardLock]

    def release(self) -> None:
        for lock in self.locks.values():
            lock.release()

    def take_lock(self, board: str) -> BoardLock:
        """The held lock of ``board``, handed to whoever releases it from now on."""
        return self.locks.pop(board)


def unavailable(
    specs: Sequence[BoardSpec],
    lock_of: Callable[[BoardSpec], BoardLock],
    lister: PortLister = list_ports,
) -> dict[str, str]:
    """The boards of ``specs`` that cannot appear for this test, each with why: a board found on
    a port that is not plugged in, and a board this very process holds (its run's own board, for
    the whole session). A claim never waits for these: no other run will give them back."""
    why: dict[str, str] = {}
    present = list(lister()) if any(not s.traits.started_here for s in specs) else []
    for spec in specs:
        if not spec.traits.started_here:
            try:
                find_port(spec, present)
            except BoardNotPresent:
                why[spec.name] = f"{spec.name} not plugged in"
                continue
        holder = lock_of(spec).holder()
        if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
            why[spec.name] = f"{spec.name} held by this run ({holder.purpose or 'its own board'})"
    return why


def claim_group(
    roles: Sequence[tuple[Role, Sequence[BoardSpec]]],
    lock_of: Callable[[BoardSpec], BoardLock],
    bound: float,
    *,
    needed: str,
    lister: PortLister = list_ports,
) -> Claim:
    """A board for each role (``roles``: each with the boards that may play it), no board twice,
    all locked; see the module for how. ``lock_of(spec)`` is the board's lock (not held).
    Raises ``NotEnoughBoards`` naming ``needed`` and the busy boards after ``bound`` seconds."""
    deadline = Deadline(bound)
    boards = {spec.name: spec for _, specs in roles for spec in specs}
    locks = {name: lock_of(spec) for name, spec in boards.items()}
    order = sorted(boards, key=lambda name: str(locks[name].path))  # the one global order
    while True:
        busy: dict[str, BoardBusy] = {}
        absent: dict[str, BoardNotPresent] = {}
        present = list(lister()) if any(not s.traits.started_here for s in boards.values()) else []
        held: list[str] = []
        found: dict[str, BoardSpec] | None = None
        for name in order:
            spec = boards[name]
            if not spec.traits.started_here:
                try:
                    find_port(spec, present)
                except BoardNotPresent as e:
                    absent[name] = e
                    continue
            try:
                locks[name].acquire(0)
            except BoardBusy as e:
                busy[name] = e
                continue
            held.append(name)
            found = assign(roles, set(held))
            if found is not None:
                break
        if found is not None:
            used = {spec.name for spec in found.values()}
            for name in held:
                if name not in used:
                    locks[name].release()
            return Claim(found, {name: locks[name] for name in used})
        for name in held:  # not enough: give back everything, never wait while holding
            locks[name].release()
        if deadline.expired:
            raise NotEnoughBoards(needed, bound, busy, absent)
        time.sleep(deadline.remaining_or(random.uniform(*RETRY_PAUSE_S)))


def assign(roles: Sequence[tuple[Role, Sequence[BoardSpec]]], free: set[str]) -> dict[str, BoardSpec] | None:
    """A board of ``free`` for each role, none twice, trying boards in each role's order; None
    when there is no such assignment (a small search: a test has a handful of roles)."""
    chosen: dict[str, BoardSpec] = {}

    def place(i: int) -> bool:
        if i == len(roles):
            return True
        role, specs = roles[i]
        taken = {spec.name for spec in chosen.values()}
        for spec in specs:
            if spec.name in free and spec.name not in taken:
                chosen[role.name] = spec
                if place(i + 1):
                    return True
                del chosen[role.name]
        return False

    return dict(chosen) if place(0) else None
