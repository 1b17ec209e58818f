"""The lab's data, without a lab: the inventory's ``labgrid:`` key, the exporter configuration
and places written for this host's boards (on fabricated udev records), a place's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.board.kinds import kind_of
from rig.discovery import pick_auto
from rig.inventory import BoardSpec, InventoryError, UsbMatch, load_inventory
from rig.lab import export
from rig.lab.places import AcquiredPlace, PlaceResource, PlaceState, coordinator_of


def load(tmp_path: Path, text: str) -> list[BoardSpec]:
    path = tmp_path / "boards.yaml"
    path.write_text(text, encoding="utf-8")
    return list(load_inventory(path, env={}).boards)


def load_error(tmp_path: Path, text: str) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load(tmp_path, text)
    return caught.value


def test_a_board_can_be_a_place_by_name_or_by_tags(tmp_path: Path) -> None:
    a, b = load(
        tmp_path,
        "defaults:\n  labgrid: {coordinator: 'lab.example:20408'}\n"
        "boards:\n"
        "  - name: a\n    kind: labgrid\n    labgrid: {place: bench-a}\n"
        "  - name: b\n    kind: labgrid\n    labgrid: {tags: [kind=esp32, wifi=yes], coordinator: other:1}\n",
    )
    assert a.labgrid is not None and a.labgrid.place == "bench-a"
    assert a.labgrid.coordinator == "lab.example:20408"
    assert b.labgrid is not None and b.labgrid.tags == (("kind", "esp32"), ("wifi", "yes"))
    assert b.labgrid.coordinator == "other:1"
    assert a.identity != b.identity
    assert kind_of(a).found_by(a) == "labgrid place bench-a at lab.example:20408"
    # Never looked for among this machine's serial ports, even by --rig-board auto.
    assert a.match.url is not None and a.match.url.startswith("labgrid://")
    with pytest.raises(Exception, match="no USB board"):
        pick_auto([a, b], [])


@pytest.mark.parametrize(
    ("entry", "line", "key", "problem"),
    [
        ("    kind: labgrid\n", 2, "boards[0].labgrid", "either place: NAME or tags"),
        ("    kind: labgrid\n    labgrid: {place: p, tags: [ab=b]}\n", 4, "boards[0].labgrid", "not both"),
        ("    kind: labgrid\n    labgrid: {tags: [Board=x]}\n", 4, "boards[0].labgrid.tags[0]", "KEY=VALUE"),
        ("    kind: esp32\n    labgrid: {place: p}\n", 4, "boards[0].labgrid", "use kind: labgrid"),
        (
            "    kind: labgrid\n    labgrid: {place: p}\n    match: {port: /dev/ttyUSB0}\n",
            5,
            "boards[0].match",
            "found through its place",
        ),
    ],
)
def test_a_wrong_labgrid_entry_is_one_error_naming_line_and_key(
    tmp_path: Path, entry: str, line: int, key: str, problem: str
) -> None:
    error = load_error(tmp_path, "boards:\n  - name: x\n" + entry)
    assert (error.line, error.key) == (line, key), str(error)
    assert problem in str(error)


def test_a_place_in_defaults_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "defaults:\n  labgrid: {place: p}\nboards: []\n")
    assert "picks one board" in str(error)


def test_the_coordinator_is_the_inventorys_else_lg_coordinator(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, "boards:\n  - name: a\n    kind: labgrid\n    labgrid: {place: p}\n")
    assert spec.labgrid is not None
    assert coordinator_of(spec.labgrid, {"LG_COORDINATOR": "lab:1"}) == "lab:1"
    assert coordinator_of(spec.labgrid, {}) == "127.0.0.1:20408"


ESP = BoardSpec(
    name="bench-esp", kind="esp32", match=UsbMatch(serial_number="X1"), tags=frozenset({"wifi", "Big-Flash"})
)
BRIDGE = BoardSpec(name="bench-ch340", kind="generic", match=UsbMatch(location="1-1.2:1.0"), baudrate=9600)


def test_the_exporter_config_matches_on_the_serial_number_else_the_usb_path() -> None:
    config = export.exporter_config(
        [
            (ESP, {"ID_SERIAL_SHORT": "X1", "ID_PATH": "pci-0000:00:14.0-usb-0:1.1:1.0"}),
            (BRIDGE, {"ID_PATH": "pci-0000:00:14.0-usb-0:1.2:1.0"}),
        ]
    )
    assert config == {
        "bench-esp": {"USBSerialPort": {"match": {"ID_SERIAL_SHORT": "X1"}, "speed": 115200}},
        # The USB device (the socket), not its interface: '@' matches a parent in udev.
        "bench-ch340": {
            "USBSerialPort": {"match": {"@ID_PATH": "pci-0000:00:14.0-usb-0:1.2"}, "speed": 9600}
        },
    }
    with pytest.raises(Exception, match="neither ID_SERIAL_SHORT nor ID_PATH"):
        export.serial_match(BRIDGE, {})


def test_places_match_their_group_and_carry_tags_to_reserve_by() -> None:
    assert export.place_plan([ESP], "pi-3") == [
        {
            "name": "bench-esp",
            "matches": ["pi-3/bench-esp/*"],
            "tags": {"kind": "esp32", "wifi": "yes", "big_flash": "yes"},
        }
    ]


def test_a_place_says_who_holds_it_since_when() -> None:
    assert PlaceState("p", changed=0.0).describe().startswith("free since")
    held = PlaceState.parse({"name": "p", "acquired": "pi-3/alice", "changed": 1_700_000_000.0})
    assert held.describe().startswith("held by user alice on host pi-3 since 2023-11-1")


def test_a_place_without_power_cannot_be_hard_reset_and_says_so() -> None:
    serial = PlaceResource(
        "NetworkSerialPort", "NetworkSerialPort", "e/g/NetworkSerialPort/s", {"host": "h", "port": 4}
    )
    bare = AcquiredPlace(PlaceState("p"), (serial,))
    assert bare.serial_url() == "rfc2217://h:4?ign_set_control"
    assert "no power switch or reset output" in (bare.no_hard_reset() or "")
    power = PlaceResource("NetworkUSBPowerPort", "USBPowerPort", "e/g/NetworkUSBPowerPort/p", {})
    assert AcquiredPlace(PlaceState("p"), (serial, power)).no_hard_reset() is None
