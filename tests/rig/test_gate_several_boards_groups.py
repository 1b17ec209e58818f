"""``rig.gate.groups``: which groups of boards the gate runs the tests of several boards on; the
inventory a group's run is given (``rig.gate.group_inventory``); a board run whose every test was
one of several boards (``rig.gate.classify``). Data in, data out."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.errors import ConfigError
from rig.evidence.run_audit import audit_folder
from rig.evidence.run_record import RunRecord
from rig.gate.boards_tests import FILE as BOARDS_TESTS_FILE
from rig.gate.boards_tests import write_tests
from rig.gate.classify import classify
from rig.gate.group_inventory import write_group_inventory
from rig.gate.groups import BoardsTest, GroupPlan, form_groups
from rig.gate.results import Attempt
from rig.inventory import Inventory, load_inventory
from rig.multiboard.roles import read_marker

BENCH = """\
boards:
  - name: vb
    kind: virtual
    count: 5
  - name: esp-wifi
    kind: esp32
    tags: [wifi]
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
    network: {wifi_ssid: lab, wifi_password: "${LAB_WIFI}"}
"""


@pytest.fixture
def bench(tmp_path: Path) -> Inventory:
    path = tmp_path / "boards.yaml"
    path.write_text(BENCH)
    return load_inventory(path, env={})


def boards_test(name: str, **roles: object) -> BoardsTest:
    return BoardsTest(f"t.py::{name}", f"/s/t.py::{name}", read_marker((), roles))


def groups(plan: GroupPlan) -> list[tuple[str, ...]]:
    return [group.boards for group in plan.groups]


@pytest.mark.parametrize(
    ("running", "expected"),
    [
        (2, [("vb-1", "vb-2")]),
        (3, [("vb-1", "vb-2"), ("vb-2", "vb-3")]),
        (4, [("vb-1", "vb-2"), ("vb-3", "vb-4")]),
        (5, [("vb-1", "vb-2"), ("vb-3", "vb-4"), ("vb-4", "vb-5")]),
    ],
)
def test_consecutive_boards_make_groups_and_the_last_is_filled_from_the_one_before(
    bench: Inventory, running: int, expected: list[tuple[str, ...]]
) -> None:
    boards = [f"vb-{i}" for i in range(1, running + 1)]
    plan = form_groups([boards_test("t", a="any", b="any")], bench, boards, {})
    assert groups(plan) == expected
    assert plan.unmet == ()
    assert {name for group in expected for name in group} == set(boards)  # every board in a group


def test_three_roles_over_four_boards_end_with_the_last_three(bench: Inventory) -> None:
    plan = form_groups(
        [boards_test("t", a="any", b="any", c="any")], bench, ["vb-1", "vb-2", "vb-3", "vb-4"], {}
    )
    assert groups(plan) == [("vb-1", "vb-2", "vb-3"), ("vb-2", "vb-3", "vb-4")]


def test_a_tagged_role_puts_its_one_board_in_every_group(bench: Inventory) -> None:
    running = ["vb-1", "vb-2", "esp-wifi"]
    plan = form_groups([boards_test("t", a="tag:wifi", b="any")], bench, running, {})
    # Every board the roles can take in, each group with the one board carrying the tag.
    assert groups(plan) == [("vb-1", "esp-wifi"), ("vb-2", "esp-wifi")]


def test_tests_of_one_group_run_together_in_collection_order(bench: Inventory) -> None:
    tests = [
        boards_test("x", a="any", b="any", permute=True),
        boards_test("y", p="any", q="any"),
        boards_test("z", a="any", b="any"),
    ]
    plan = form_groups(tests, bench, ["vb-1", "vb-2"], {})
    assert [(g.name, [t.nodeid for t in g.tests]) for g in plan.groups] == [
        ("boards-vb-1+vb-2", ["t.py::x", "t.py::y", "t.py::z"])
    ]


def test_skipped_boards_are_left_out_and_too_few_says_what_was_needed(bench: Inventory) -> None:
    left_out = {"vb-2": "(out of rotation: bad since 09:00)", "esp-wifi": "(not plugged in)"}
    plan = form_groups(
        [boards_test("t", a="any", b="any"), boards_test("u", a="any", b="any")], bench, ["vb-1"], left_out
    )
    assert plan.groups == ()
    (unmet,) = plan.unmet
    assert unmet.tests == ("t.py::t", "t.py::u")
    assert unmet.line() == (
        "needed boards a=any, b=any (2 boards) for 2 tests: no group of the gate's boards can play "
        "these roles; the gate runs 1: vb-1; left out: vb-2 (out of rotation: bad since 09:00); "
        "esp-wifi (not plugged in)"
    )


def test_a_tag_no_running_board_carries_is_unmet_naming_the_tag(bench: Inventory) -> None:
    plan = form_groups(
        [boards_test("t", a="tag:wifi", b="any")], bench, ["vb-1", "vb-2"], {"esp-wifi": "(absent)"}
    )
    assert plan.groups == ()
    assert "carries tag 'wifi'" in plan.unmet[0].why and "esp-wifi (absent)" in plan.unmet[0].why


def test_the_group_inventory_lists_the_groups_boards_alone_and_keeps_placeholders(
    bench: Inventory, tmp_path: Path
) -> None:
    target = write_group_inventory(bench.path, ["vb-3", "esp-wifi"], tmp_path / "group.yaml")
    text = target.read_text()
    assert "${LAB_WIFI}" in text  # the placeholder, never a value
    assert load_inventory(target, env={}).names() == ["vb-3", "esp-wifi"]


def test_a_group_inventory_that_cannot_list_the_group_is_refused(bench: Inventory, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected the group's boards"):
        write_group_inventory(bench.path, ["vb-9"], tmp_path / "group.yaml")


# -- a board run whose every test was one of several boards ---------------------------------------


@pytest.mark.parametrize(("listed", "category"), [(True, "pass"), (False, "config")])
def test_a_board_run_left_with_only_tests_of_several_boards_is_no_usage_error(
    tmp_path: Path, listed: bool, category: str
) -> None:
    """``rig gate -- -k several_boards``: every board run selects tests of several boards alone,
    leaves them all out for the groups, and pytest says "no tests collected" (exit 5). That is
    no misconfigured run when it listed them; a run that listed none still is."""
    entries = (
        [{"nodeid": "t.py::t", "arg": "/s/t.py::t", "marker": {"a": "any", "b": "any"}}] if listed else []
    )
    write_tests(tmp_path / BOARDS_TESTS_FILE, entries)
    RunRecord(rig_version="test", started=1.0, finished=2.0).save(tmp_path / "run.json")  # no test in it
    audit_folder(tmp_path, {})
    attempt = Attempt("vb-1", tmp_path, 0, returncode=5, duration=1.0)
    classify(attempt, 60.0)
    assert attempt.category == category, attempt
