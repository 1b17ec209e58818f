"""The ``boards`` marker, read and checked: which roles a test needs and what may play each.

``@pytest.mark.boards(a="tag:wifi", b="any")``: each keyword is a role, its value what may
play it: ``any`` (every board of the inventory), ``tag:NAME`` (the boards carrying it), or a
board's name. Three marker options, each naming roles, say where a test departs from "every
board on its own": ``share_topics=("a", "b")`` (those boards use one topic prefix, and the
broker grants exactly that), ``same_client_id=("a", "b")`` (they connect with one client id, as
the tutorial's fixed ``umqtt_client`` makes every board do), ``permute=True`` (the test runs
once per order of the roles, as MicroPython's run-multitests.py -p does).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from rig.board_choice import BUILTIN_VIRTUAL, TAG_PREFIX
from rig.errors import ConfigError
from rig.inventory import BoardSpec, Inventory

ANY = "any"
MARKER = "boards"
OPTIONS = ("share_topics", "same_client_id", "permute")


@dataclass(frozen=True)
class Role:
    """One role of a test: its name (``a``) and what may play it (``tag:wifi``, ``any``, a name)."""

    name: str
    wants: str

    def candidates(self, inventory: Inventory) -> list[BoardSpec]:
        """The boards of ``inventory`` that may play this role, in the inventory's order."""
        if self.wants == ANY:
            return list(inventory.boards)
        if self.wants.startswith(TAG_PREFIX):
            tag = self.wants[len(TAG_PREFIX) :].strip()
            found = inventory.with_tags(tag)
            if not found:
                known = sorted({t for spec in inventory.boards for t in spec.tags})
                raise ConfigError(
                    f"{MARKER} marker",
                    self.name,
                    f"no board of {inventory.path} carries tag {tag!r} (tags: {', '.join(known) or 'none'})",
                )
            return found
        return [inventory.get(self.wants)]


@dataclass(frozen=True)
class BoardsRequest:
    """What a test's ``boards`` marker asks for (see the module)."""

    roles: tuple[Role, ...]
    share_topics: tuple[str, ...] = ()
    same_client_id: tuple[str, ...] = ()
    permute: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(role.name for role in self.roles)

    def describe(self) -> str:
        """``a=tag:wifi, b=any``: what the test needed, for a skip reason."""
        return ", ".join(f"{role.name}={role.wants}" for role in self.roles)

    def orders(self) -> list[tuple[str, ...]]:
        """The orders of the roles the test runs in: the marker's, and with ``permute`` every other."""
        if not self.permute:
            return [self.names]
        return list(itertools.permutations(self.names))


def read_marker(args: Sequence[object], kwargs: Mapping[str, object]) -> BoardsRequest:
    """The request of ``@pytest.mark.boards(**kwargs)``; a ``ConfigError`` naming the marker and
    the key for anything else than roles and the three options."""
    if args:
        raise ConfigError(f"{MARKER} marker", "arguments", f"roles are keywords (a='any'), got {args!r}")
    roles: list[Role] = []
    options: dict[str, object] = {}
    for key, value in kwargs.items():
        if key in OPTIONS:
            options[key] = value
            continue
        if not key.isidentifier() or key.startswith("_"):
            raise ConfigError(f"{MARKER} marker", key, "a role is a plain name, as a=...")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{MARKER} marker", key, f"expected 'any', 'tag:NAME' or a board's name, got {value!r}"
            )
        roles.append(Role(key, value.strip()))
    if len(roles) < 2:
        raise ConfigError(
            f"{MARKER} marker", "roles", f"a test of several boards names two roles or more, got {len(roles)}"
        )
    names = {role.name for role in roles}
    share = _role_names(options.get("share_topics", ()), "share_topics", names)
    same = _role_names(options.get("same_client_id", ()), "same_client_id", names)
    permute = options.get("permute", False)
    if not isinstance(permute, bool):
        raise ConfigError(f"{MARKER} marker", "permute", f"expected True or False, got {permute!r}")
    return BoardsRequest(tuple(roles), share, same, permute)


def _role_names(value: object, key: str, roles: set[str]) -> tuple[str, ...]:
    if value in ((), None):
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{MARKER} marker", key, f"expected a tuple of roles, got {value!r}")
    given = tuple(str(v) for v in value)
    unknown = [name for name in given if name not in roles]
    if unknown or len(set(given)) < 2:
        raise ConfigError(
            f"{MARKER} marker", key, f"expected two roles or more of {sorted(roles)}, got {list(given)!r}"
        )
    return given


def candidates(
    request: BoardsRequest,
    inventory: Inventory,
    unavailable: Mapping[str, str] | None = None,
    lent: Collection[str] = (),
) -> list[tuple[Role, list[BoardSpec]]]:
    """Each role of ``request`` with the boards that may play it, leaving out the boards of
    ``unavailable`` (name: why; ``rig.multiboard.claim.unavailable``), which cannot appear.
    The boards of ``lent`` (this run's own, ``rig.multiboard.claim.held_here``, left out as
    unavailable) come back last in each role they may play: played only when the others cannot.

    ``any`` on a bench with fewer boards than the test has roles takes virtual boards made for
    the test: a virtual board is a flash folder the rig starts, so there can be one per role
    (``virtual-a``, ``virtual-b``), copies of the inventory's virtual board or the built-in one.
    That is how a test of several boards runs on a machine with no board at all (the default
    tox run). A bench with enough boards gives its own, and runs then compete for them; the
    boards that cannot appear (not plugged in, the run's own) do not count."""
    left_out = unavailable or {}
    # A labgrid board plays a role only when the role names it or its tag, never as ``any``: its
    # place is known only once taken, and a reservation by tag may land on this run's own place
    # or on another role's (two inventory names, one place), which the claim's locks cannot see.
    by_name_or_tag_only = {spec.name for spec in inventory.boards if spec.kind == "labgrid"}

    def may_play(role: Role) -> list[BoardSpec]:
        return [
            spec
            for spec in role.candidates(inventory)
            if not (role.wants == ANY and spec.name in by_name_or_tag_only)
        ]

    found = [(role, [spec for spec in may_play(role) if spec.name not in left_out]) for role in request.roles]
    usable = [s for s in inventory.boards if s.name not in left_out and s.name not in by_name_or_tag_only]
    if len(usable) < len(request.roles):
        virtual = next((spec for spec in inventory.boards if spec.kind == "virtual"), BUILTIN_VIRTUAL)
        # One copy per role, each open to every ``any`` role: so that roles can swap boards (permute).
        made = [dataclasses.replace(virtual, name=f"{virtual.name}-{role.name}") for role in request.roles]
        found = [(role, [*specs, *made]) if role.wants == ANY else (role, specs) for role, specs in found]
    # The run's own board does not count above, and comes last: made boards, free at once, and
    # the bench's free boards are played before it (lending it stops it for the session).
    return [
        (role, [*specs, *(spec for spec in may_play(role) if spec.name in lent and spec.name in left_out)])
        for role, specs in found
    ]
