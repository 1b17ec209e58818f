"""``rig scan --write`` edits boards.yaml round-trip (ruamel.yaml): more shapes of the file than
tests/rig/test_discovery.py covers, the guards that refuse to rewrite a file, and the result
read back by the inventory loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from rig.discovery import merge_into_inventory, scan
from rig.discovery.merge import _keeps
from rig.errors import ConfigError
from rig.inventory import load_inventory
from rig.inventory.spec import KIND_TRAITS, KindTraits


def port(device: str, vid: int, pid: int, serial: str | None, location: str) -> ListPortInfo:
    record = ListPortInfo(device, skip_link_detection=True)
    record.vid, record.pid, record.serial_number, record.location = vid, pid, serial, location
    return record


CP210X = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1.2:1.0")
CH340 = port("/dev/ttyUSB1", 0x1A86, 0x7523, None, "1-1.3:1.0")


def merged(tmp_path: Path, text: str, *ports: ListPortInfo) -> tuple[list[str], str]:
    path = tmp_path / "boards.yaml"
    path.write_text(text, encoding="utf-8")
    added = merge_into_inventory(path, scan(list(ports), []))
    return added, path.read_text(encoding="utf-8")


def test_a_boards_key_without_a_value_gets_the_items_before_the_next_key(tmp_path: Path) -> None:
    added, text = merged(tmp_path, "settings: 1\nboards:   # soon\nother:\n  x: 1\n", CH340)
    assert added == ["ch340-1-1-3-1-0"]
    assert text.startswith("settings: 1\nboards:   # soon\n  # /dev/ttyUSB1: WCH CH340 bridge")
    assert text.endswith("    tags: [wifi]\nother:\n  x: 1\n")


def test_a_file_of_comments_only_keeps_them_and_gets_a_boards_key(tmp_path: Path) -> None:
    added, text = merged(tmp_path, "# the bench\n# (nothing yet)", CP210X)
    assert added == ["cp210x-0001"]
    assert text.startswith("# the bench\n# (nothing yet)\nboards:\n  # /dev/ttyUSB0: ")


def test_the_result_loads_as_an_inventory(tmp_path: Path) -> None:
    existing = "boards:\n  - name: v  # the virtual board\n    kind: virtual\n"
    merged(tmp_path, existing, CP210X, CH340)
    inventory = load_inventory(tmp_path / "boards.yaml", env={})
    assert inventory.names() == ["v", "cp210x-0001", "ch340-1-1-3-1-0"]
    cp = inventory.get("cp210x-0001").match
    assert (cp.vid, cp.pid, cp.serial_number) == (0x10C4, 0xEA60, "0001")
    assert inventory.get("ch340-1-1-3-1-0").tags == frozenset({"wifi"})
    assert (tmp_path / "boards.yaml").read_text(encoding="utf-8").startswith(existing)


def test_a_layout_the_round_trip_would_change_is_refused_and_left_alone(tmp_path: Path) -> None:
    # Two mappings indented differently: written back, one of them would move.
    original = "a:\n  x: 1\nb:\n    y: 2\nboards:\n  - name: v\n    kind: virtual\n"
    path = tmp_path / "boards.yaml"
    path.write_text(original, encoding="utf-8")
    with pytest.raises(ConfigError, match="by hand from rig scan's output") as err:
        merge_into_inventory(path, scan([CP210X], []))
    assert str(path) in str(err.value)
    assert path.read_text(encoding="utf-8") == original
    assert [p.name for p in tmp_path.iterdir()] == ["boards.yaml"]


def test_every_existing_line_must_survive() -> None:
    old = ["a: 1", "boards: []  # x"]
    assert _keeps(old, ["a: 1", "boards:  # x", "  - name: n"], changed=1)
    assert not _keeps(old, ["a: 1", "boards:  # x", "  - name: n"], changed=None)
    assert not _keeps(["a: 1", "b: 2"], ["b: 2", "a: 1"], changed=None)  # order counts


def test_boards_of_the_wrong_type_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    path.write_text("# bench\nboards: {a: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        merge_into_inventory(path, scan([CP210X], []))
    assert str(err.value) == f"{path}:2: boards: expected a list, got a map"


def test_a_board_started_here_matches_no_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read from the kind's traits: a kind the rig starts itself is never found on a port, even
    with a (stray) match that would fit."""
    text = "boards:\n  - name: g\n    kind: generic\n    match: {port: /dev/ttyUSB0}\n"
    added, _ = merged(tmp_path, text, CP210X)
    assert added == []  # the generic board already has this port
    monkeypatch.setitem(KIND_TRAITS, "generic", KindTraits(started_here=True, networked=False))
    added, _ = merged(tmp_path, text, CP210X)
    assert added == ["cp210x-0001"]
