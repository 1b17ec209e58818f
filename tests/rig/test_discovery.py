"""Discovery on fabricated port records: matching, re-enumeration, --board auto, --scan, --write."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from serial.tools.list_ports_common import ListPortInfo

from rig.discovery import (
    BoardAmbiguous,
    BoardNotPresent,
    NoBoardPresent,
    SeveralBoardsPresent,
    find_port,
    lookup,
    merge_into_inventory,
    pick_auto,
    render_entries,
    scan,
    wait_for_port,
)
from rig.errors import ConfigError, InfrastructureError
from rig.inventory.spec import BoardKind, BoardSpec, UsbMatch


def port(
    device: str,
    vid: int | None = None,
    pid: int | None = None,
    serial: str | None = None,
    location: str | None = None,
    description: str = "n/a",
) -> ListPortInfo:
    record = ListPortInfo(device, skip_link_detection=True)
    record.vid, record.pid = vid, pid
    record.serial_number, record.location = serial, location
    record.description = description
    return record


def board(name: str, kind: BoardKind = "esp32", **match: Any) -> BoardSpec:
    return BoardSpec(name=name, kind=kind, match=UsbMatch(**match), origin=f"boards.yaml:{len(name)}")


CP210X = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1.2:1.0", "CP2102 USB to UART Bridge Controller")
CH340 = port("/dev/ttyUSB1", 0x1A86, 0x7523, None, "1-1.3:1.0", "USB Serial")
PICO = port("/dev/ttyACM0", 0x2E8A, 0x0005, "E6614103E7452D2F", "1-1.4:1.0", "Board in FS mode")
UART = port("/dev/ttyS0", description="ttyS0")


# --- matching ------------------------------------------------------------------------------


def test_cp210x_found_by_vid_pid() -> None:
    assert find_port(board("a", vid=0x10C4, pid=0xEA60), [UART, CP210X, CH340]) == "/dev/ttyUSB0"


def test_ch340_found_by_vid_pid() -> None:
    assert find_port(board("a", vid=0x1A86, pid=0x7523), [CP210X, CH340, PICO]) == "/dev/ttyUSB1"


def test_identical_boards_told_apart_by_serial_number_and_ambiguous_without() -> None:
    one = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "AAA1")
    two = port("/dev/ttyUSB1", 0x10C4, 0xEA60, "BBB2")
    assert find_port(board("b", vid=0x10C4, pid=0xEA60, serial_number="BBB2"), [one, two]) == "/dev/ttyUSB1"
    with pytest.raises(BoardAmbiguous) as err:
        find_port(board("any", vid=0x10C4, pid=0xEA60), [one, two])
    assert isinstance(err.value, ConfigError)
    assert err.value.candidates == ("/dev/ttyUSB0", "/dev/ttyUSB1")
    assert "serial_number or location" in str(err.value)
    assert "boards.yaml:3" in str(err.value)


def test_location_match() -> None:
    one = port("/dev/ttyUSB0", 0x1A86, 0x7523, None, "1-1.2:1.0")
    two = port("/dev/ttyUSB1", 0x1A86, 0x7523, None, "1-1.3:1.0")
    assert find_port(board("x", vid=0x1A86, pid=0x7523, location="1-1.3:1.0"), [one, two]) == "/dev/ttyUSB1"


def test_port_glob_and_exact_path() -> None:
    assert find_port(board("g", port="/dev/ttyACM*"), [CP210X, PICO]) == "/dev/ttyACM0"
    assert find_port(board("e", port="/dev/ttyUSB1"), [CP210X, CH340]) == "/dev/ttyUSB1"
    with pytest.raises(BoardAmbiguous):
        find_port(board("g", port="/dev/ttyUSB*"), [CP210X, CH340])


def test_url_is_returned_without_discovery() -> None:
    assert find_port(board("net", url="rfc2217://bench:4000"), []) == "rfc2217://bench:4000"


def test_virtual_board_is_not_for_discovery() -> None:
    with pytest.raises(ValueError):
        find_port(board("v", kind="virtual"), [CP210X])


def test_not_present_lists_every_port() -> None:
    spec = board("esp", vid=0x10C4, pid=0xEA60, serial_number="9999")
    with pytest.raises(BoardNotPresent) as err:
        find_port(spec, [UART, CP210X, CH340])
    e = err.value
    assert isinstance(e, InfrastructureError)
    first, *rest = str(e).splitlines()
    assert first == e.summary
    assert "esp" in first and "boards.yaml:3" in first and "10c4:ea60, serial_number 9999" in first
    assert e.searched == "vid:pid 10c4:ea60, serial_number 9999"
    assert len(e.seen) == 3
    text = "\n".join(rest)
    assert "/dev/ttyS0  ----:----  no serial number  no location  ttyS0" in text
    assert (
        "/dev/ttyUSB0  10c4:ea60  serial 0001  location 1-1.2:1.0  CP2102 USB to UART Bridge Controller"
        in text
    )
    assert "/dev/ttyUSB1  1a86:7523  no serial number  location 1-1.3:1.0  USB Serial" in text


def test_not_present_with_no_ports_at_all() -> None:
    with pytest.raises(BoardNotPresent) as err:
        find_port(board("esp", vid=0x10C4), [])
    assert err.value.seen == ("no serial ports at all",)
    assert "serial ports seen: none" in str(err.value)


def test_empty_match_takes_the_single_usb_port_but_not_a_builtin_uart() -> None:
    assert find_port(board("only"), [UART, CP210X]) == "/dev/ttyUSB0"
    with pytest.raises(BoardNotPresent):
        find_port(board("only"), [UART])


# --- re-enumeration ------------------------------------------------------------------------


def sequence_lister(*rounds: list[ListPortInfo]) -> Callable[[], list[ListPortInfo]]:
    """Returns each round in turn, then the last one forever."""
    calls = iter(rounds)
    last: list[list[ListPortInfo]] = [[]]

    def lister() -> list[ListPortInfo]:
        last[0] = next(calls, last[0])
        return last[0]

    return lister


def test_board_found_again_under_a_new_name_after_reset() -> None:
    spec = board("pico", "generic", vid=0x2E8A, pid=0x0005, serial_number=PICO.serial_number)
    again = port("/dev/ttyACM1", 0x2E8A, 0x0005, PICO.serial_number, "1-1.4:1.0")
    lister = sequence_lister([PICO, CP210X], [CP210X], [CP210X], [again, CP210X])
    assert find_port(spec, lister()) == "/dev/ttyACM0"
    assert wait_for_port(spec, lister, timeout=5.0, poll=0.01) == "/dev/ttyACM1"


def test_wait_for_port_times_out_with_what_it_saw_last() -> None:
    spec = board("pico", "generic", vid=0x2E8A, pid=0x0005, serial_number="GONE")
    lister = sequence_lister([PICO], [CP210X])
    with pytest.raises(BoardNotPresent) as err:
        wait_for_port(spec, lister, timeout=0.1, poll=0.02)
    assert "after waiting 0.1s" in err.value.summary
    assert err.value.seen == (
        "/dev/ttyUSB0  10c4:ea60  serial 0001  location 1-1.2:1.0  CP2102 USB to UART Bridge Controller",
    )


# --- --board auto --------------------------------------------------------------------------

INVENTORY = [
    board("virt", kind="virtual"),
    board("devkit", vid=0x10C4, pid=0xEA60, serial_number="0001"),
    board("pico", "generic", vid=0x2E8A, pid=0x0005),
    board("remote", url="socket://bench:5000"),
]


def test_pick_auto_one_present() -> None:
    assert pick_auto(INVENTORY, [UART, CH340, CP210X]).name == "devkit"


def test_pick_auto_none_present() -> None:
    with pytest.raises(NoBoardPresent) as err:
        pick_auto(INVENTORY, [CH340])
    text = str(err.value)
    assert isinstance(err.value, BoardNotPresent)
    assert "devkit (boards.yaml:6): vid:pid 10c4:ea60, serial_number 0001" in text
    assert "pico (boards.yaml:4): vid:pid 2e8a:0005" in text
    assert "remote" not in text and "virt" not in text
    assert "/dev/ttyUSB1  1a86:7523" in text


def test_pick_auto_several_present() -> None:
    with pytest.raises(SeveralBoardsPresent) as err:
        pick_auto(INVENTORY, [CP210X, PICO])
    assert err.value.boards == {"devkit": "/dev/ttyUSB0", "pico": "/dev/ttyACM0"}
    assert "devkit (/dev/ttyUSB0), pico (/dev/ttyACM0)" in str(err.value)


# --- --scan --------------------------------------------------------------------------------


def test_known_device_table() -> None:
    cp = lookup(0x10C4, 0xEA60)
    assert cp is not None and cp.kind == "esp32" and cp.role == "bridge"
    rp2 = lookup(0x2E8A, 0x0005)
    assert rp2 is not None and rp2.likely_micropython
    assert lookup(0x1234, 0x5678) is None
    assert lookup(None, 0x5678) is None


def test_scan_labels_and_entries() -> None:
    odd = port("/dev/ttyACM1", 0x1234, 0x5678, "X", None, "Gadget")
    entries = scan([UART, CP210X, CH340, PICO, odd], [INVENTORY[1]])
    assert [e.device for e in entries] == ["/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyACM0", "/dev/ttyACM1"]
    cp, ch, pico, unknown = entries

    assert cp.label == "Silicon Labs CP210x bridge" and not cp.likely_micropython
    assert cp.matched_board == "devkit"
    assert cp.comment() == (
        "/dev/ttyUSB0: Silicon Labs CP210x bridge (likely ESP32), serial 0001;"
        " already in the inventory as devkit"
    )
    assert cp.entry == {
        "name": "cp210x-0001",
        "kind": "esp32",
        "match": {"vid": "0x10c4", "pid": "0xea60", "serial_number": "0001"},
        "tags": ["wifi"],
    }
    # No serial number: the USB socket identifies it.
    assert ch.entry["match"] == {"vid": "0x1a86", "pid": "0x7523", "location": "1-1.3:1.0"}
    assert ch.entry["name"] == "ch340-1-1-3-1-0"
    assert ch.matched_board is None

    assert pico.likely_micropython and pico.entry["kind"] == "generic" and pico.entry["tags"] == []
    assert pico.entry["name"] == "rp2-e6614103e7452d2f"
    assert unknown.label == "unknown USB serial device 1234:5678 (Gadget)" and unknown.known is None
    assert unknown.entry["name"] == "usb-serial-x"


def test_scan_names_are_unique_and_shared_serials_fall_back_to_location() -> None:
    one = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1")
    two = port("/dev/ttyUSB1", 0x10C4, 0xEA60, "0001", "1-2")
    entries = scan([one, two], [board("cp210x-1-1", vid=1)])
    assert [e.entry["match"].get("location") for e in entries] == ["1-1", "1-2"]
    assert [e.entry["name"] for e in entries] == ["cp210x-1-1-2", "cp210x-1-2"]


def test_render_entries_parses_as_yaml() -> None:
    entries = scan([CP210X, CH340, PICO], [INVENTORY[1]])
    text = render_entries(entries)
    assert "  # /dev/ttyUSB0: Silicon Labs CP210x bridge (likely ESP32), serial 0001" in text
    parsed = yaml.safe_load(text)
    # The port the inventory already has is only mentioned in a comment.
    assert parsed == [entries[1].entry, entries[2].entry]
    assert yaml.safe_load(render_entries(entries, include_matched=True)) == [e.entry for e in entries]
    assert yaml.safe_load("boards:\n" + text) == {"boards": parsed}


# --- --scan --write ------------------------------------------------------------------------

EXISTING = """\
# Our bench. Keep this comment!
settings:
  broker: auto   # trailing comment

boards:
  # the virtual one
  - name: virt
    kind: virtual

  - name: devkit     # on the left
    kind: esp32
    match: {vid: 0x10c4, pid: 0xea60, serial_number: "0001"}
# end of file
"""


def test_merge_appends_and_keeps_existing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    path.write_text(EXISTING)
    os.chmod(path, 0o640)
    entries = scan([CP210X, CH340, PICO], [])  # as if the inventory had not been loaded

    assert merge_into_inventory(path, entries) == ["ch340-1-1-3-1-0", "rp2-e6614103e7452d2f"]
    text = path.read_text()
    assert text.startswith(EXISTING)
    assert "  # /dev/ttyUSB1: WCH CH340 bridge (likely ESP32), no serial number, location 1-1.3:1.0\n" in text
    doc = yaml.safe_load(text)
    assert doc["settings"] == {"broker": "auto"}
    assert [b["name"] for b in doc["boards"]] == ["virt", "devkit", "ch340-1-1-3-1-0", "rp2-e6614103e7452d2f"]
    assert doc["boards"][2]["match"] == {"vid": "0x1a86", "pid": "0x7523", "location": "1-1.3:1.0"}
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["boards.yaml"]

    # Running again adds nothing: the new entries now match their ports.
    assert merge_into_inventory(path, scan([CP210X, CH340, PICO], [])) == []
    assert path.read_text() == text


def test_merge_inserts_before_a_following_top_level_key(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    head = "boards:\n- name: devkit\n  kind: esp32\n  match: {vid: 0x10c4, pid: 0xea60}\n"
    tail = "\n# network settings\nnetwork:\n  ssid: lab\n"
    path.write_text(head + tail)
    assert merge_into_inventory(path, scan([CH340], [])) == ["ch340-1-1-3-1-0"]
    text = path.read_text()
    assert text.startswith(head) and text.endswith(tail)
    assert "\n- name: ch340-1-1-3-1-0\n  kind: esp32\n" in text  # same indentation as the others
    assert yaml.safe_load(text)["network"] == {"ssid": "lab"}


def test_merge_creates_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "bench" / "boards.yaml"
    assert merge_into_inventory(path, scan([CP210X], [])) == ["cp210x-0001"]
    text = path.read_text()
    assert text.startswith("# ")
    assert yaml.safe_load(text) == {"boards": [scan([CP210X], [])[0].entry]}


def test_merge_rewrites_an_empty_flow_list(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    path.write_text("# empty bench\nboards: []  # nothing yet\n")
    assert merge_into_inventory(path, scan([PICO], [])) == ["rp2-e6614103e7452d2f"]
    text = path.read_text()
    assert text.startswith("# empty bench\nboards:  # nothing yet\n")
    assert yaml.safe_load(text)["boards"][0]["name"] == "rp2-e6614103e7452d2f"


def test_merge_avoids_name_collisions(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    existing = "boards:\n  - name: cp210x-0001\n    kind: esp32\n    match:\n      port: /dev/ttyUSB9\n"
    path.write_text(existing)
    other = port("/dev/ttyUSB3", 0x10C4, 0xEA60, "0001", "3-1")
    added = merge_into_inventory(path, scan([other], []))
    assert added == ["cp210x-0001-2"]
    assert path.read_text().startswith(existing)


def test_merge_refuses_a_layout_it_cannot_append_to(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    original = "boards: [{name: a, kind: virtual}]\n"
    path.write_text(original)
    with pytest.raises(ConfigError) as err:
        merge_into_inventory(path, scan([CP210X], []))
    assert str(path) in str(err.value)
    assert path.read_text() == original

    path.write_text("- name: a\n  kind: virtual\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        merge_into_inventory(path, scan([CP210X], []))


def test_merge_keeps_crlf_and_handles_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    original = b"boards:\r\n  - name: virt\r\n    kind: virtual"
    path.write_bytes(original)
    assert merge_into_inventory(path, scan([PICO], [])) == ["rp2-e6614103e7452d2f"]
    data = path.read_bytes()
    assert data.startswith(original + b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert [b["name"] for b in yaml.safe_load(data)["boards"]] == ["virt", "rp2-e6614103e7452d2f"]
