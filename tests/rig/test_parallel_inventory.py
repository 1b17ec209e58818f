"""``count: N`` in boards.yaml: one entry, N virtual boards NAME-1..NAME-N, each with its own
flash directory and lock; mistakes named by file, line and key like every inventory error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rig.board_choice import board_lock, flash_dir
from rig.inventory import InventoryError, load_inventory


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problem(tmp_path: Path, text: str, line: int, key: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, env={})
    error = caught.value
    assert (error.path, error.line, error.key) == (path, line, key), str(error)
    assert str(error).startswith(f"{path}:{line}: {key}: ")
    return error.problem


def test_count_expands_into_numbered_boards_that_keep_the_entry_s_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        boards:
          - name: esp
            kind: esp32
            match: {serial_number: "0001"}
          - name: vb
            kind: virtual
            count: 3
            tags: [parallel]
            network: {broker_host: 127.0.0.1}
        """,
    )
    inventory = load_inventory(path, env={})
    assert inventory.names() == ["esp", "vb-1", "vb-2", "vb-3"]
    copies = [inventory.select(f"vb-{i}") for i in (1, 2, 3)]
    for board in copies:
        assert board.kind == "virtual"
        assert board.tags == {"parallel"}
        assert board.network.broker_host == "127.0.0.1"
        assert board.origin == f"{path}:5"  # the entry they came from
    assert [b.name for b in inventory.with_tags("parallel")] == ["vb-1", "vb-2", "vb-3"]
    # Everything that must differ between them is keyed by the name: flash, lock, network.
    workdir = tmp_path / "session"
    assert len({flash_dir(workdir, b) for b in copies}) == 3
    assert len({board_lock(b, workdir, "test", tmp_path / "locks").identity for b in copies}) == 3


def test_count_of_one_still_numbers_the_board(tmp_path: Path) -> None:
    path = write(tmp_path, "boards:\n  - {name: vb, kind: virtual, count: 1}\n")
    assert load_inventory(path, env={}).names() == ["vb-1"]


@pytest.mark.parametrize(
    ("value", "got"),
    [("0", "'0'"), ("65", "'65'"), ("four", "'four'"), ("2.5", "'2.5'"), ("[2]", "a list")],
)
def test_count_must_be_a_whole_number_within_bounds(tmp_path: Path, value: str, got: str) -> None:
    text = f"boards:\n  - name: vb\n    kind: virtual\n    count: {value}\n"
    message = problem(tmp_path, text, 4, "boards[0].count")
    assert message.startswith("expected a"), message
    assert message.endswith(f"got {got}"), message


def test_count_on_a_physical_board_is_refused(tmp_path: Path) -> None:
    text = """
    boards:
      - name: esp
        kind: esp32
        match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
        count: 2
    """
    message = problem(tmp_path, text, 5, "boards[0].count")
    assert "a esp32 board is one physical board" in message


def test_count_is_refused_in_defaults(tmp_path: Path) -> None:
    text = """
    defaults:
      count: 2
    boards:
      - {name: vb, kind: virtual}
    """
    assert "count makes copies of one board" in problem(tmp_path, text, 2, "defaults.count")


def test_a_copy_s_name_taken_by_another_entry_is_a_duplicate(tmp_path: Path) -> None:
    text = """
    boards:
      - name: vb
        kind: virtual
        count: 2
      - name: vb-2
        kind: virtual
    """
    message = problem(tmp_path, text, 5, "boards[1].name")
    assert "duplicate board name 'vb-2'" in message and ":2 (boards[0].name)" in message
