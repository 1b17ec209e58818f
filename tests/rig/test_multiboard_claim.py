"""Several boards in one test: the marker read and checked, the claim (all at once or none, no
deadlock, a skip reason naming what was needed and what was busy), the broker's grants.

Claims run in this process: two BoardLock objects exclude each other as two processes do
(rig.lock), so threads stand for runs here; tests/rig/test_multiboard_runs.py runs the real thing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.board_choice import board_lock
from rig.broker.access import HOST, board_role
from rig.errors import ConfigError
from rig.inventory import BoardSpec, Inventory, load_inventory
from rig.lock import BoardLock
from rig.multiboard.claim import NotEnoughBoards, assign, claim_group, unavailable
from rig.multiboard.grants import group_naming, group_policy
from rig.multiboard.roles import Role, candidates, read_marker

BOARDS = """\
boards:
  - name: vb
    kind: virtual
    count: 3
    tags: [pair]
  - name: lone
    kind: virtual
    tags: [wifi]
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "boards.yaml"
    path.write_text(BOARDS)
    return load_inventory(path, env={})


def lock_maker(tmp_path: Path, purpose: str) -> Callable[[BoardSpec], BoardLock]:
    def lock_of(spec: BoardSpec) -> BoardLock:
        return board_lock(spec, tmp_path / "artifacts" / spec.name / "session", purpose, tmp_path / "locks")

    return lock_of


def pair(inventory: Inventory) -> list[tuple[Role, list[BoardSpec]]]:
    return candidates(read_marker((), {"a": "tag:pair", "b": "tag:pair"}), inventory)


# -- the marker ------------------------------------------------------------------------------------


def test_the_marker_names_roles_and_options_and_a_mistake_is_named() -> None:
    request = read_marker((), {"a": "tag:wifi", "b": "any", "share_topics": ("a", "b"), "permute": True})
    assert request.describe() == "a=tag:wifi, b=any"
    assert request.share_topics == ("a", "b")
    assert request.orders() == [("a", "b"), ("b", "a")]
    with pytest.raises(ConfigError, match="two roles or more, got 1"):
        read_marker((), {"a": "any"})
    with pytest.raises(
        ConfigError, match=r"share_topics.*two roles or more of \['a', 'b'\], got \['a', 'c'\]"
    ):
        read_marker((), {"a": "any", "b": "any", "share_topics": ("a", "c")})
    with pytest.raises(ConfigError, match="roles are keywords"):
        read_marker(("any",), {})
    with pytest.raises(ConfigError, match=r"b.*expected 'any', 'tag:NAME'"):
        read_marker((), {"a": "any", "b": 3})


def test_a_role_takes_a_tag_a_name_or_any_and_a_small_bench_gets_virtual_boards(
    inventory: Inventory, tmp_path: Path
) -> None:
    found = candidates(read_marker((), {"a": "tag:wifi", "b": "any"}), inventory)
    assert [[s.name for s in specs] for _, specs in found] == [["lone"], ["vb-1", "vb-2", "vb-3", "lone"]]
    with pytest.raises(ConfigError, match=r"no board .* carries tag 'usb' \(tags: pair, wifi\)"):
        candidates(read_marker((), {"a": "tag:usb", "b": "any"}), inventory)
    # A machine with no bench file: a virtual board per role, each open to every "any" role.
    empty = Inventory(tmp_path / "none.yaml", [])
    made = candidates(read_marker((), {"a": "any", "b": "any"}), empty)
    assert [[s.name for s in specs] for _, specs in made] == [["virtual-a", "virtual-b"]] * 2


def test_assign_gives_each_role_its_own_board_or_none() -> None:
    x, y = BoardSpec(name="x", kind="virtual"), BoardSpec(name="y", kind="virtual")
    roles = [(Role("a", "any"), [x, y]), (Role("b", "name"), [x])]
    chosen = assign(roles, {"x", "y"})
    assert chosen is not None and {r: s.name for r, s in chosen.items()} == {"a": "y", "b": "x"}
    assert assign(roles, {"y"}) is None


# -- the claim -------------------------------------------------------------------------------------


def test_a_claim_takes_all_its_boards_or_none_and_names_what_was_busy(
    inventory: Inventory, tmp_path: Path
) -> None:
    first = claim_group(pair(inventory), lock_maker(tmp_path, "run one"), 0, needed="a=tag:pair, b=tag:pair")
    assert sorted(s.name for s in first.boards.values()) == ["vb-1", "vb-2"]
    try:
        with pytest.raises(NotEnoughBoards) as caught:
            claim_group(
                pair(inventory), lock_maker(tmp_path, "run two"), 0.3, needed="a=tag:pair, b=tag:pair"
            )
        error = caught.value
        assert error.summary == (
            "needed boards a=tag:pair, b=tag:pair, could not have them all within 0.3s: "
            "vb-1 in use; vb-2 in use"
        )
        assert "purpose run one" in str(error)
        # Not one board kept: vb-3 was free, taken during the tries, and given back.
        assert not lock_maker(tmp_path, "probe")(inventory.get("vb-3")).is_locked()
    finally:
        first.release()
    again = claim_group(pair(inventory), lock_maker(tmp_path, "run three"), 0, needed="pair")
    again.release()


def test_two_runs_that_each_need_two_boards_of_three_never_deadlock(
    inventory: Inventory, tmp_path: Path
) -> None:
    # Each "run" claims two of the three boards, holds them a moment, gives them back, many
    # times over. A claim that waited while holding would soon hold one board each and wait
    # forever; this one gives back and tries again, so both runs get through every round.
    rounds = 25
    done: dict[str, int] = {}
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for _ in range(rounds):
                claim = claim_group(pair(inventory), lock_maker(tmp_path, name), 10.0, needed="pair")
                assert len({lock.path for lock in claim.locks.values()}) == 2
                threading.Event().wait(0.005)  # a short "test" on the two boards
                claim.release()
                done[name] = done.get(name, 0) + 1
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=run, args=(f"run {i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    assert done == {f"run {i}": rounds for i in range(3)}


# -- the broker's grants ---------------------------------------------------------------------------


def test_each_board_gets_its_own_account_prefix_and_client_id() -> None:
    request = read_marker((), {"a": "any", "b": "any"})
    naming = group_naming("r1", request, {"a": "x", "b": "y"})
    policy = group_policy(naming, ["x", "y"])
    x, y = policy.account(board_role("x")), policy.account(board_role("y"))
    assert (x.prefixes, x.client_id) == (("rig/x/r1",), "rig-x-r1")
    assert (y.prefixes, y.client_id) == (("rig/y/r1",), "rig-y-r1")
    assert not x.may_use("rig/y/r1/echo") and x.login.password != y.login.password
    assert policy.account(HOST).prefixes == ("rig/x/r1", "rig/y/r1")


def test_shared_topics_and_one_client_id_are_granted_exactly_as_asked() -> None:
    request = read_marker((), {"a": "any", "b": "any", "c": "any", "share_topics": ("a", "b")})
    naming = group_naming("r1", request, {"a": "x", "b": "y", "c": "z"})
    policy = group_policy(naming, ["x", "y", "z"])
    assert policy.account(board_role("x")).prefixes == ("rig/x/r1",)
    assert policy.account(board_role("y")).prefixes == ("rig/x/r1",)  # x's, and not its own
    assert policy.account(board_role("z")).prefixes == ("rig/z/r1",)  # c was not asked to share
    same = read_marker((), {"a": "any", "b": "any", "same_client_id": ("a", "b")})
    policy = group_policy(group_naming("r1", same, {"a": "x", "b": "y"}), ["x", "y"])
    assert (
        policy.account(board_role("x")).client_id == policy.account(board_role("y")).client_id == "rig-x-r1"
    )
    assert policy.account(board_role("y")).prefixes == ("rig/y/r1",)  # one id, still its own topics


# -- boards that cannot appear ---------------------------------------------------------------------

USB_AND_VIRTUAL = """\
boards:
  - name: virtual
    kind: virtual
  - name: bench-esp
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
    tags: [wifi]
"""


def test_a_board_not_plugged_in_and_the_runs_own_board_are_never_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    path.write_text(USB_AND_VIRTUAL)
    inventory = load_inventory(path, env={})
    lock_of = lock_maker(tmp_path, "this run's own board")
    own = lock_of(inventory.get("virtual"))
    own.acquire(0)
    try:
        left_out = unavailable(inventory.boards, lock_of, lister=lambda: [])
        assert left_out == {
            "bench-esp": "bench-esp not plugged in",
            "virtual": "virtual held by this run (this run's own board)",
        }
        # Neither counts: "any" roles get virtual boards made for the test, free at once.
        roles = candidates(read_marker((), {"a": "any", "b": "any"}), inventory, left_out)
        claim = claim_group(roles, lock_of, 0, needed="a=any, b=any", lister=lambda: [])
        assert sorted(spec.name for spec in claim.boards.values()) == ["virtual-a", "virtual-b"]
        claim.release()
        # A role only the absent board can play: no assignment, so the fixture skips at once.
        wifi = candidates(read_marker((), {"a": "tag:wifi", "b": "any"}), inventory, left_out)
        assert assign(wifi, {spec.name for _, specs in wifi for spec in specs}) is None
    finally:
        own.release()


LAB = """\
defaults:
  kind: labgrid
  labgrid: {coordinator: '127.0.0.1:20408'}
boards:
  - name: lab1
    labgrid: {place: lab1}
  - name: any-lab
    labgrid: {tags: [lab=loop]}
    tags: [lab]
"""


def test_a_labgrid_place_plays_a_role_by_its_name_or_tag_never_as_any(tmp_path: Path) -> None:
    """A reservation by tag may land on this run's own place or on another role's (two inventory
    names, one place): ``any`` takes virtual boards made for the test instead."""
    path = tmp_path / "boards.yaml"
    path.write_text(LAB)
    inventory = load_inventory(path, env={})
    made = candidates(read_marker((), {"a": "any", "b": "any"}), inventory)
    assert [[s.name for s in specs] for _, specs in made] == [["virtual-a", "virtual-b"]] * 2
    named = candidates(read_marker((), {"a": "lab1", "b": "tag:lab"}), inventory)
    assert [[s.name for s in specs] for _, specs in named] == [["lab1"], ["any-lab"]]
