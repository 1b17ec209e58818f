"""Which groups of boards the gate runs the tests of several boards on: the rule, as data.

A test of several boards (``@pytest.mark.boards``, ``rig.multiboard``) runs once per group of
the gate's boards that can play its roles. The rule, deterministic for one inventory:

- only the boards the gate runs count (present and in rotation), in inventory order;
- each group takes first the boards no group has yet, in inventory order, then, to fill its
  roles, boards of earlier groups, the latest in inventory order first; a new group is made
  while it can take in a board no group has: so with roles ``a=any, b=any`` four boards give
  (1, 2), (3, 4) and five give (1, 2), (3, 4), (4, 5);
- the tests whose roles give the same group run together, one run per group.

A test no group can play is not run, and ``Unmet`` says what it needed and which boards were
left out. Nothing here runs anything: ``rig.gate.several`` does, with these groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rig.errors import ConfigError
from rig.inventory import BoardSpec, Inventory
from rig.multiboard.claim import assign
from rig.multiboard.roles import BoardsRequest, Role, candidates

# A group's run folder and JUnit suite: ``boards-vb-1+vb-2`` (rig.gate.layout).
GROUP_PREFIX = "boards-"


@dataclass(frozen=True)
class BoardsTest:
    """One test of several boards as a board run collected it: its node id, the argument that
    selects it in another pytest run (its file's absolute path and the rest of the node id), and
    what its ``boards`` marker asks for."""

    nodeid: str
    arg: str
    request: BoardsRequest


@dataclass(frozen=True)
class BoardsGroup:
    """Boards that run some tests of several boards together, in inventory order."""

    boards: tuple[str, ...]
    tests: tuple[BoardsTest, ...]

    @property
    def name(self) -> str:
        """``boards-vb-1+vb-2``: the group's run folder and JUnit suite."""
        return GROUP_PREFIX + "+".join(self.boards)


@dataclass(frozen=True)
class Unmet:
    """Tests no group of the gate's boards can play: what they needed and why it was not there."""

    needed: str
    tests: tuple[str, ...]
    why: str

    def line(self) -> str:
        """``needed boards a=any, b=any (2 boards) for 4 tests: ...``."""
        count = f"{len(self.tests)} test" + ("s" if len(self.tests) != 1 else "")
        return f"needed boards {self.needed} for {count}: {self.why}"


@dataclass(frozen=True)
class GroupPlan:
    groups: tuple[BoardsGroup, ...]
    unmet: tuple[Unmet, ...]


def form_groups(
    tests: Sequence[BoardsTest], inventory: Inventory, running: Sequence[str], left_out: Mapping[str, str]
) -> GroupPlan:
    """The groups of ``running`` (the boards the gate runs, in inventory order) for ``tests``
    (see the module). ``left_out`` (board: why) is said in an ``Unmet``'s reason."""
    bench = Inventory(inventory.path, [spec for spec in inventory.boards if spec.name in running])
    order = [spec.name for spec in bench.boards]
    by_boards: dict[tuple[str, ...], list[BoardsTest]] = {}
    unmet: dict[tuple[str, str], list[str]] = {}
    for test in tests:
        try:
            groups = _groups_for(test.request, bench, order)
            why = "" if groups else _too_few(test.request, order, left_out)
        except ConfigError as e:  # a name or tag none of the running boards has
            groups, why = [], f"{e}; {_boards_text(order, left_out)}"
        if not groups:
            unmet.setdefault((_needed(test.request), why), []).append(test.nodeid)
        for group in groups:
            by_boards.setdefault(group, []).append(test)
    position = {name: i for i, name in enumerate(order)}
    ordered = sorted(by_boards, key=lambda boards: [position[name] for name in boards])
    return GroupPlan(
        tuple(BoardsGroup(boards, tuple(by_boards[boards])) for boards in ordered),
        tuple(Unmet(needed, tuple(nodeids), why) for (needed, why), nodeids in unmet.items()),
    )


def _groups_for(request: BoardsRequest, bench: Inventory, order: list[str]) -> list[tuple[str, ...]]:
    # The gate's own boards only: ``candidates`` would add virtual boards made for the test on a
    # bench too small, which is what a plain pytest run does, not what a gate of a bench means.
    roles = [
        (role, [spec for spec in specs if spec.name in order]) for role, specs in candidates(request, bench)
    ]
    groups: list[tuple[str, ...]] = []
    covered: set[str] = set()
    while True:
        found = _next_group(roles, order, covered)
        if found is None:
            return groups
        groups.append(tuple(name for name in order if name in found))
        covered |= found


def _next_group(
    roles: list[tuple[Role, list[BoardSpec]]], order: list[str], covered: set[str]
) -> set[str] | None:
    """The boards of the next group: the first board no group has that some group can take in,
    with the roles filled by boards no group has first (inventory order), then by the latest
    boards of earlier groups; None when no board is left that a group can take in."""
    fresh = [name for name in order if name not in covered]
    preference = fresh + [name for name in reversed(order) if name in covered]
    rank = {name: i for i, name in enumerate(preference)}
    ranked = [(role, sorted(specs, key=lambda spec: rank[spec.name])) for role, specs in roles]
    for name in fresh:
        for i, (_, specs) in enumerate(ranked):
            fixed = [spec for spec in specs if spec.name == name]
            if not fixed:
                continue
            trial = [*ranked[:i], (ranked[i][0], fixed), *ranked[i + 1 :]]
            found = assign(trial, set(preference))
            if found is not None:
                return {spec.name for spec in found.values()}
    return None


def _needed(request: BoardsRequest) -> str:
    count = len(request.roles)
    return f"{request.describe()} ({count} board{'s' if count != 1 else ''})"


def _too_few(request: BoardsRequest, order: list[str], left_out: Mapping[str, str]) -> str:
    return f"no group of the gate's boards can play these roles; {_boards_text(order, left_out)}"


def _boards_text(order: list[str], left_out: Mapping[str, str]) -> str:
    running = f"the gate runs {len(order)}: {', '.join(order)}" if order else "the gate runs no board"
    skipped = "; ".join(f"{name} {why}" for name, why in left_out.items())
    return running + (f"; left out: {skipped}" if skipped else "")
