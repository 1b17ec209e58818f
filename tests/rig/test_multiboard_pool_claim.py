"""A run's own board in a test of several boards (rig.multiboard.claim.LentLock): lent, tried
last, never given back by the test, and never a virtual board in a namespace of its own.

Claims run in this process, locks standing for runs (rig.lock: two lock objects exclude each
other as two processes do); tests/rig/test_multiboard_pool.py runs the real thing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rig import netns
from rig.board_choice import board_lock
from rig.inventory import BoardSpec, Inventory, load_inventory
from rig.lock import BoardLock
from rig.multiboard.claim import NotEnoughBoards, claim_group, own_boards, unavailable
from rig.multiboard.roles import candidates, read_marker

POOL = """\
boards:
  - name: vb
    kind: virtual
    count: 3
    tags: [pair]
  - name: bench-esp
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
    tags: [pair]
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "boards.yaml"
    path.write_text(POOL)
    return load_inventory(path, env={})


def lock_maker(tmp_path: Path, purpose: str) -> Callable[[BoardSpec], BoardLock]:
    def lock_of(spec: BoardSpec) -> BoardLock:
        return board_lock(spec, tmp_path / "artifacts" / spec.name / "session", purpose, tmp_path / "locks")

    return lock_of


def test_the_own_board_plays_a_role_only_when_the_free_boards_cannot_and_stays_held(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "unavailable", lambda: "no namespaces here")  # as a USB board is
    lock_of = lock_maker(tmp_path, "this run's session")
    own = lock_of(inventory.get("vb-1"))
    own.acquire(0)
    other_run = lock_maker(tmp_path, "another run")(inventory.get("vb-2"))
    try:
        left_out = unavailable(inventory.boards, lock_of, lister=lambda: [])  # bench-esp: not plugged in
        lent, kept = own_boards(inventory.boards, lock_of)
        assert (lent, kept) == ({"vb-1"}, {})
        request = read_marker((), {"a": "tag:pair", "b": "tag:pair"})
        roles = candidates(request, inventory, left_out, lent)
        assert [[s.name for s in specs] for _, specs in roles] == [["vb-2", "vb-3", "vb-1"]] * 2
        # Two boards free: the own board keeps running for the session's next test.
        claim = claim_group(roles, lock_of, 0, needed="pair", lister=lambda: [], lent=lent)
        assert (sorted(s.name for s in claim.boards.values()), claim.lent) == (["vb-2", "vb-3"], frozenset())
        claim.release()
        # One free: the own board is lent, and giving the test's boards back keeps it the session's.
        other_run.acquire(0)
        claim = claim_group(roles, lock_of, 0, needed="pair", lister=lambda: [], lent=lent)
        assert (sorted(s.name for s in claim.boards.values()), claim.lent) == (
            ["vb-1", "vb-3"],
            frozenset({"vb-1"}),
        )
        claim.release()
        assert own.held and own.is_locked()
        assert not lock_of(inventory.get("vb-3")).is_locked()
        # None free but the own board: not enough, and the skip names the busy one.
        taken = lock_maker(tmp_path, "a third run")(inventory.get("vb-3"))
        taken.acquire(0)
        with pytest.raises(NotEnoughBoards) as caught:
            claim_group(roles, lock_of, 0.2, needed="pair", lister=lambda: [], lent=lent)
        taken.release()
        assert caught.value.summary.endswith("within 0.2s: vb-2 in use; vb-3 in use"), caught.value.summary
        assert own.held
    finally:
        other_run.release()
        own.release()


LAB_PLACE = """\
  - name: lab1
    kind: labgrid
    labgrid: {place: lab1, coordinator: '127.0.0.1:20408'}
"""


def test_a_namespaced_virtual_board_and_a_place_are_never_lent_a_usb_board_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped while lent, a virtual board's network is removed and its /30 may go to another
    run's board; a place goes back to the coordinator, where anyone may take it (rig.multiboard.claim)."""
    path = tmp_path / "boards.yaml"
    path.write_text(POOL + LAB_PLACE)
    inventory = load_inventory(path, env={})
    monkeypatch.setattr(netns, "unavailable", lambda: None)
    lock_of = lock_maker(tmp_path, "this run's session")
    held = [lock_of(inventory.get(name)) for name in ("vb-1", "bench-esp", "lab1")]
    for lock in held:
        lock.acquire(0)
    try:
        lent, kept = own_boards(inventory.boards, lock_of)
        assert lent == {"bench-esp"}
        assert kept == {
            "vb-1": "a virtual board in a network namespace of its own is never lent",
            "lab1": "a labgrid place is never lent",
        }
        # A claim that fails names the one that could play a role: the run holds it, not another.
        pair = read_marker((), {"a": "tag:pair", "b": "tag:pair"})
        lent, kept = own_boards([s for _, specs in candidates(pair, inventory) for s in specs], lock_of)
        assert kept == {"vb-1": "a virtual board in a network namespace of its own is never lent"}
        others = [lock_maker(tmp_path, "another run")(inventory.get(name)) for name in ("vb-2", "vb-3")]
        for lock in others:
            lock.acquire(0)
        held += others
        roles = candidates(pair, inventory, kept, lent)
        with pytest.raises(NotEnoughBoards) as caught:
            claim_group(roles, lock_of, 0, needed="pair", lister=lambda: [], lent=lent, kept=kept)
        assert caught.value.summary.endswith(
            "vb-2 in use; vb-3 in use; bench-esp not plugged in; vb-1 this run's own, not lent "
            "(a virtual board in a network namespace of its own is never lent)"
        ), caught.value.summary
    finally:
        for lock in held:
            lock.release()
