"""All the boards of a test, claimed at once or not at all, without deadlock.

Two runs that each need two boards out of three must never each hold one and wait for the
other. So a claim never waits while it holds: it tries the boards' locks without waiting, in
one global order (by lock file), stops as soon as the boards it holds can play every role, and
otherwise gives back all it took and tries again after a random pause (so that two runs that
collided do not collide again in step), until its bound expires. A run never holds a lock it
waits behind, so no cycle of waiters can form, whatever the number of runs, workers or terminals.

This run's own board (its session's, held for the whole run: an xdist worker claims one of the
pool when it starts) may be lent to the test: its lock stays the session's (``LentLock``), it is
tried last, so that it plays a role only when the boards free now cannot, and the session stops
it for the test and starts it again for its next test of one board. The only locks a claim then
holds while it waits are the sessions' own, which it would hold anyway; every wait is bounded.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from rig import netns
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
    for the skip reason: what the test needed, and what was busy or absent at the last try, and
    this run's own boards that could have played a role but are not lent (``kept``: why)."""

    def __init__(
        self,
        needed: str,
        waited: float,
        busy: dict[str, BoardBusy],
        absent: dict[str, BoardNotPresent],
        kept: Mapping[str, str] | None = None,
    ) -> None:
        self.needed = needed
        self.busy = busy
        self.absent = absent
        self.kept = dict(kept or {})
        why = [f"{name} in use" for name in busy] + [f"{name} not plugged in" for name in absent]
        why += [f"{name} this run's own, not lent ({reason})" for name, reason in self.kept.items()]
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
    # The boards of this run's session lent to the test (``LentLock``): the session stops them
    # before the test and starts them again after it.
    lent: frozenset[str] = field(default_factory=frozenset)

    def release(self) -> None:
        for lock in self.locks.values():
            lock.release()

    def take_lock(self, board: str) -> BoardLock:
        """The held lock of ``board``, handed to whoever releases it from now on."""
        return self.locks.pop(board)


class LentLock(BoardLock):
    """The lock of a board this run's session holds for the whole run, lent to one test: held
    all along by the session's own lock object, so never taken nor given back through this one.
    (Two lock objects exclude each other even in one process, ``rig.lock``: the test cannot take
    the session's lock, it borrows it.)"""

    def __init__(self, lock: BoardLock) -> None:
        super().__init__(lock.identity, lock.lock_dir, purpose=lock.purpose)

    @property
    def held(self) -> bool:
        return True

    def acquire(self, timeout: float, poll: float = 0.1) -> None:
        return None  # the session holds it

    def release(self) -> None:
        return None  # the session keeps it


def held_here(specs: Sequence[BoardSpec], lock_of: Callable[[BoardSpec], BoardLock]) -> set[str]:
    """The boards of ``specs`` whose lock this very process holds: its run's own board."""
    here: set[str] = set()
    for spec in specs:
        holder = lock_of(spec).holder()
        if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
            here.add(spec.name)
    return here


def not_lent(spec: BoardSpec) -> str | None:
    """Why this run's own board ``spec`` is never lent to a test, or None when it may be: a board
    whose lock is all there is to holding it (a USB board; a virtual one on this machine's
    network) may be."""
    if spec.kind == "labgrid":
        # Stopped, its keeper gives the place back to the coordinator, where any client may
        # acquire it before the test takes it again.
        return "a labgrid place is never lent"
    if spec.kind == "virtual" and netns.unavailable() is None:
        # Stopped, its network is removed, and the /30 it had may go to another run's board
        # meanwhile (a new network takes a subnet no interface shows); started again with its
        # old addresses, two links would carry one address and neither board would reach its
        # broker (seen under two xdist workers).
        return "a virtual board in a network namespace of its own is never lent"
    return None


def own_boards(
    specs: Sequence[BoardSpec], lock_of: Callable[[BoardSpec], BoardLock]
) -> tuple[set[str], dict[str, str]]:
    """This run's own boards among ``specs`` (``held_here``): those it may lend to a test, and
    those it keeps, each with why (``not_lent``)."""
    here = held_here(specs, lock_of)
    lent: set[str] = set()
    kept: dict[str, str] = {}
    for spec in specs:
        if spec.name in here:
            why = not_lent(spec)
            if why is None:
                lent.add(spec.name)
            else:
                kept[spec.name] = why
    return lent, kept


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
    here = held_here(specs, lock_of)
    for spec in specs:
        if not spec.traits.started_here:
            try:
                find_port(spec, present)
            except BoardNotPresent:
                why[spec.name] = f"{spec.name} not plugged in"
                continue
        if spec.name in here:
            holder = lock_of(spec).holder()
            why[spec.name] = f"{spec.name} held by this run ({holder.purpose if holder else 'its own board'})"
    return why


def claim_group(
    roles: Sequence[tuple[Role, Sequence[BoardSpec]]],
    lock_of: Callable[[BoardSpec], BoardLock],
    bound: float,
    *,
    needed: str,
    lister: PortLister = list_ports,
    lent: Collection[str] = (),
    kept: Mapping[str, str] | None = None,
) -> Claim:
    """A board for each role (``roles``: each with the boards that may play it), no board twice,
    all locked; see the module for how. ``lock_of(spec)`` is the board's lock (not held);
    ``lent`` names the boards this run's session holds and lends (``LentLock``, tried last),
    ``kept`` those it holds and does not lend, with why (named when the claim fails).
    Raises ``NotEnoughBoards`` naming ``needed`` and the busy boards after ``bound`` seconds."""
    deadline = Deadline(bound)
    boards = {spec.name: spec for _, specs in roles for spec in specs}
    locks = {
        name: LentLock(lock_of(spec)) if name in lent else lock_of(spec) for name, spec in boards.items()
    }
    # The one global order; the lent boards last, so that they play a role only when the
    # boards free now cannot (lending one stops it for the session's next test).
    order = sorted(boards, key=lambda name: (name in lent, str(locks[name].path)))
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
            return Claim(found, {name: locks[name] for name in used}, frozenset(used & set(lent)))
        for name in held:  # not enough: give back everything, never wait while holding
            locks[name].release()
        if deadline.expired:
            raise NotEnoughBoards(needed, bound, busy, absent, kept)
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
